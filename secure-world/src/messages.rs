//! Clear Key messages the secure world produces (EME §9.1.3, §9.1.5), built with fallible
//! allocation.
//!
//! `cdm_core::clearkey` has builders for the same formats, but they allocate infallibly (an
//! allocation failure would abort the TEE); these compute the exact length first and reserve
//! it with `try_reserve_exact`, so building either succeeds or reports `OutOfMemory`.

use alloc::string::String;
use alloc::vec::Vec;

use cdm_core::abi::limits::MAX_MESSAGE_LEN;
use cdm_core::base64url;
use cdm_core::SessionType;

use crate::error::Error;

/// `{"kids":["<base64url>",...]` followed by `,"type":"<type>"` when `session_type` is
/// given, then `}`. Key IDs are base64url without padding (EME §9.1.7), which needs no JSON
/// escaping.
pub(crate) fn kids_json<'a, I>(kids: I, session_type: Option<SessionType>) -> Result<Vec<u8>, Error>
where
    I: Iterator<Item = &'a [u8]> + Clone,
{
    const OPEN: &str = "{\"kids\":[";
    const TYPE: &str = "],\"type\":\"";
    let mut len = Some(OPEN.len());
    for (i, kid) in kids.clone().enumerate() {
        let sep = if i == 0 { 2 } else { 3 };
        len = len
            .and_then(|l| l.checked_add(base64url::encoded_len(kid.len())))
            .and_then(|l| l.checked_add(sep));
    }
    len = match session_type {
        Some(t) => len
            .and_then(|l| l.checked_add(TYPE.len()))
            .and_then(|l| l.checked_add(t.as_str().len()))
            .and_then(|l| l.checked_add(2)),
        None => len.and_then(|l| l.checked_add(2)),
    };
    let len = len.ok_or(Error::Internal("message length"))?;
    if len > MAX_MESSAGE_LEN {
        return Err(Error::Internal("message too long"));
    }
    let mut s = String::new();
    s.try_reserve_exact(len)?;
    s.push_str(OPEN);
    for (i, kid) in kids.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        base64url::encode_to(kid, &mut s);
        s.push('"');
    }
    match session_type {
        Some(t) => {
            s.push_str(TYPE);
            s.push_str(t.as_str());
            s.push_str("\"}");
        }
        None => s.push_str("]}"),
    }
    Ok(s.into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_eme_examples() {
        // EME §9.1.3 example key IDs.
        let a = hex_kid("0102030405060708090a0b0c0d0e0f10");
        let b = [0xffu8; 3];
        let req = kids_json(
            [a.as_slice(), &b[..]].into_iter(),
            Some(SessionType::Temporary),
        )
        .unwrap();
        assert_eq!(
            core::str::from_utf8(&req).unwrap(),
            r#"{"kids":["AQIDBAUGBwgJCgsMDQ4PEA","____"],"type":"temporary"}"#
        );
        assert_eq!(req.capacity(), req.len());
        let rel = kids_json([a.as_slice()].into_iter(), None).unwrap();
        assert_eq!(
            core::str::from_utf8(&rel).unwrap(),
            r#"{"kids":["AQIDBAUGBwgJCgsMDQ4PEA"]}"#
        );
        let empty = kids_json(core::iter::empty(), None).unwrap();
        assert_eq!(empty, b"{\"kids\":[]}");
    }

    fn hex_kid(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }
}
