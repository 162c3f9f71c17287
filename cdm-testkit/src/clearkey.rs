//! Clear Key messages for tests, built independently of cdm-core's builders: a local
//! base64url and `format!`, so a test of cdm-core's (or the secure world's) parsing is not
//! checked against the code under test.

/// RFC 4648 §5 base64url without padding, written here independently of cdm-core.
pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A Clear Key license, the JWK Set of EME §9.1.4, for `keys` (`(key ID, key)`) and
/// `session_type` (`"temporary"`, `"persistent-license"`).
pub fn license(keys: &[(&[u8], &[u8; 16])], session_type: &str) -> Vec<u8> {
    let entries: Vec<String> = keys
        .iter()
        .map(|(kid, key)| {
            format!(
                r#"{{"kty":"oct","k":"{}","kid":"{}"}}"#,
                b64url(&key[..]),
                b64url(kid)
            )
        })
        .collect();
    format!(
        r#"{{"keys":[{}],"type":"{session_type}"}}"#,
        entries.join(",")
    )
    .into_bytes()
}

/// A minimal Clear Key license server: answers a license request (EME §9.1.3, parsed with
/// cdm-core as a server would) with the keys of `keys` it asks for, in the request's session
/// type. Errors say what was wrong with the request.
pub fn answer(request: &[u8], keys: &[(&[u8], &[u8; 16])]) -> Result<Vec<u8>, String> {
    let req = cdm_core::clearkey::parse_license_request(request)
        .map_err(|e| format!("license request: {e}"))?;
    let found: Vec<(&[u8], &[u8; 16])> = keys
        .iter()
        .filter(|(kid, _)| req.kids.iter().any(|k| k.as_bytes() == *kid))
        .copied()
        .collect();
    if found.is_empty() {
        return Err("the license server knows none of the requested keys".into());
    }
    Ok(license(&found, req.session_type.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64url_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
        ] {
            assert_eq!(b64url(plain.as_bytes()), enc);
        }
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn license_is_the_eme_jwk_set() {
        let l = license(&[(&[1, 2, 3], &[0xff; 16])], "temporary");
        assert_eq!(
            String::from_utf8(l).unwrap(),
            r#"{"keys":[{"kty":"oct","k":"_____________________w","kid":"AQID"}],"type":"temporary"}"#
        );
    }

    #[test]
    fn server_answers_only_known_requested_keys() {
        let req = br#"{"kids":["AQID","BAUG"],"type":"temporary"}"#;
        let l = answer(req, &[(&[4, 5, 6], &[0; 16]), (&[7], &[1; 16])]).unwrap();
        assert!(String::from_utf8(l).unwrap().contains(r#""kid":"BAUG""#));
        assert!(answer(req, &[(&[7], &[1; 16])]).is_err());
        assert!(answer(b"{}", &[]).is_err());
    }
}
