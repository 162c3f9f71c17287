//! Output protection: the HDCP version in force on the device's video outputs, which keys
//! with a minimum HDCP version are checked against (EME key status `output-restricted`).

use core::fmt;

/// An HDCP version as two BCD digits (`0x22` is HDCP 2.2); [`Hdcp::NONE`] when an output
/// has no HDCP. Versions order as numbers: 1.4 < 2.0 < 2.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Hdcp(u8);

impl Hdcp {
    /// No HDCP on the output (or no protected output at all).
    pub const NONE: Self = Hdcp(0);
    /// HDCP 1.4.
    pub const V1_4: Self = Hdcp(0x14);
    /// HDCP 2.2.
    pub const V2_2: Self = Hdcp(0x22);
    /// HDCP 2.3.
    pub const V2_3: Self = Hdcp(0x23);

    /// The version of two BCD digits `bcd` (`0x10..=0x14`, `0x20..=0x23`, or `0` for none).
    pub const fn from_bcd(bcd: u8) -> Option<Self> {
        match bcd {
            0x00 | 0x10..=0x14 | 0x20..=0x23 => Some(Hdcp(bcd)),
            _ => None,
        }
    }

    /// The two BCD digits.
    pub const fn bcd(self) -> u8 {
        self.0
    }
}

/// Reports the output protection in force now. A device implements it with its display
/// pipeline's link status (the weakest output, if there are several); it must not be
/// something the normal world can set.
pub trait OutputProtection: fmt::Debug + Send + Sync {
    /// The HDCP version every output currently has.
    fn hdcp(&self) -> Hdcp;
}

/// A device without protected outputs: always [`Hdcp::NONE`], so every key that needs HDCP
/// is `output-restricted`. The default of [`super::Platform::new`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOutputProtection;

impl OutputProtection for NoOutputProtection {
    fn hdcp(&self) -> Hdcp {
        Hdcp::NONE
    }
}

/// A host emulation with a settable level, shared between clones (a test or a host tool keeps
/// one clone to change the level while the secure world holds another). It protects nothing:
/// on a device the level comes from the display hardware.
#[cfg(feature = "std")]
#[derive(Clone, Debug, Default)]
pub struct EmulatedOutputProtection {
    level: alloc::sync::Arc<core::sync::atomic::AtomicU8>,
}

#[cfg(feature = "std")]
impl EmulatedOutputProtection {
    /// An emulated output at `level`.
    pub fn new(level: Hdcp) -> Self {
        let e = EmulatedOutputProtection::default();
        e.set(level);
        e
    }

    /// Changes the level every clone reports.
    pub fn set(&self, level: Hdcp) {
        self.level
            .store(level.bcd(), core::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(feature = "std")]
impl OutputProtection for EmulatedOutputProtection {
    fn hdcp(&self) -> Hdcp {
        Hdcp::from_bcd(self.level.load(core::sync::atomic::Ordering::SeqCst)).unwrap_or(Hdcp::NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_versions_order_and_validate() {
        assert!(Hdcp::V1_4 < Hdcp::V2_2 && Hdcp::V2_2 < Hdcp::V2_3 && Hdcp::NONE < Hdcp::V1_4);
        assert_eq!(Hdcp::from_bcd(0x15), None);
        assert_eq!(Hdcp::from_bcd(0x24), None);
        assert_eq!(Hdcp::from_bcd(0x20), Some(Hdcp(0x20)));
    }

    #[cfg(feature = "std")]
    #[test]
    fn emulated_level_is_shared_between_clones() {
        let a = EmulatedOutputProtection::new(Hdcp::V1_4);
        let b = a.clone();
        assert_eq!(b.hdcp(), Hdcp::V1_4);
        a.set(Hdcp::V2_3);
        assert_eq!(b.hdcp(), Hdcp::V2_3);
        assert_eq!(NoOutputProtection.hdcp(), Hdcp::NONE);
    }
}
