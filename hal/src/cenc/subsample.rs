//! Subsample maps (ISO/IEC 23001-7 §9.5, `senc` subsample entries): validation and the walk
//! over a sample's protected ranges.

use super::{CencError, Subsample};

/// Checks that `subsamples` covers exactly `len` bytes.
///
/// The sum of every `clear` and `protected` field is taken in `u64` with checked additions, so
/// entries that would wrap a 32-bit (or, on small targets, a `usize`) sum cannot make a short
/// map look complete. An empty map means the whole sample is protected (§9.5: samples without
/// subsample entries are encrypted in full) and always matches.
pub(super) fn validate(subsamples: &[Subsample], len: usize) -> Result<(), CencError> {
    if subsamples.is_empty() {
        return Ok(());
    }
    let covered = subsamples.iter().try_fold(0u64, |acc, s| {
        acc.checked_add(u64::from(s.clear))?
            .checked_add(u64::from(s.protected))
    });
    match (covered, u64::try_from(len)) {
        (Some(c), Ok(l)) if c == l => Ok(()),
        _ => Err(CencError::SubsampleMismatch { covered, len }),
    }
}

/// Calls `f` on every non-empty protected range of `data`, in order.
///
/// The map must have passed [`validate`] for `data.len()`; the walk still uses only checked
/// splits, so a map that does not fit ends the walk early instead of panicking.
pub(super) fn for_each_protected(
    subsamples: &[Subsample],
    data: &mut [u8],
    mut f: impl FnMut(&mut [u8]),
) {
    if subsamples.is_empty() {
        if !data.is_empty() {
            f(data);
        }
        return;
    }
    let mut rest = data;
    for s in subsamples {
        let (Ok(clear), Ok(protected)) = (usize::try_from(s.clear), usize::try_from(s.protected))
        else {
            return;
        };
        let Some((_, after_clear)) = rest.split_at_mut_checked(clear) else {
            return;
        };
        let Some((range, after)) = after_clear.split_at_mut_checked(protected) else {
            return;
        };
        if !range.is_empty() {
            f(range);
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ss(clear: u32, protected: u32) -> Subsample {
        Subsample { clear, protected }
    }

    #[test]
    fn exact_cover_is_accepted() {
        assert_eq!(validate(&[ss(3, 16), ss(0, 5)], 24), Ok(()));
        assert_eq!(validate(&[], 7), Ok(()));
        assert_eq!(validate(&[ss(0, 0)], 0), Ok(()));
    }

    #[test]
    fn short_long_and_wrapping_maps_are_refused() {
        assert_eq!(
            validate(&[ss(3, 16)], 20),
            Err(CencError::SubsampleMismatch {
                covered: Some(19),
                len: 20
            })
        );
        assert_eq!(
            validate(&[ss(3, 16)], 18),
            Err(CencError::SubsampleMismatch {
                covered: Some(19),
                len: 18
            })
        );
        // u32::MAX + 17 wraps to 16 in 32-bit arithmetic; the u64 sum does not.
        assert_eq!(
            validate(&[ss(u32::MAX, 17)], 16),
            Err(CencError::SubsampleMismatch {
                covered: Some(u64::from(u32::MAX) + 17),
                len: 16
            })
        );
    }

    #[test]
    fn walk_visits_protected_ranges_only() {
        let mut data = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut seen = [0usize; 3];
        let mut n = 0;
        for_each_protected(&[ss(1, 2), ss(3, 0), ss(0, 4)], &mut data, |r| {
            if let Some(slot) = seen.get_mut(n) {
                *slot = usize::from(r.first().copied().unwrap_or(0xff)) * 100 + r.len();
            }
            n += 1;
        });
        assert_eq!(n, 2);
        assert_eq!(seen[..2], [102, 604]);
    }
}
