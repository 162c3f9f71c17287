//! Clear Key message formats, exactly as EME §9.1 defines them.
//!
//! - License request (§9.1.3): `{"kids":["<base64url>",...],"type":"<session type>"}`.
//! - License (§9.1.4): a JSON Web Key Set (RFC 7517) of symmetric keys,
//!   `{"keys":[{"kty":"oct","k":"<base64url>","kid":"<base64url>"}],"type":"<session type>"}`,
//!   `type` optional (default `"temporary"`).
//! - Record of license destruction (§9.1.5) and its acknowledgement (§9.1.6):
//!   `{"kids":[...]}`.
//!
//! All base64url is strict and unpadded (§9.1.7, see [`crate::base64url`]). Content keys are
//! 16 bytes (AES-128, the only key size of ISO/IEC 23001-7). Unknown JSON members are ignored,
//! as RFC 7517 §4 requires for JWKs; duplicate members are rejected.
//!
//! ## Key material and memory
//!
//! [`parse_license`] decodes each `k` directly from the input buffer into a zeroizing
//! [`ContentKey`]: serde borrows the `k` string from the input, so no heap copy of the key
//! text is made. Remaining limitations, which callers should know about:
//! - if a `k` string contains JSON escapes (`\u0041`…), serde_json must unescape it into its
//!   own scratch buffer (not zeroized) and an owned `String` (zeroized here on drop);
//! - the license bytes themselves hold the keys in clear: the caller owns them and should wipe
//!   them after parsing (the secure world copies the license in and zeroizes its copy);
//! - [`build_license`] returns its output in a [`Zeroizing`] buffer sized up front so it never
//!   reallocates.
//!
//! Parsing allocates fallibly (arrays and key IDs with `try_reserve`), so memory exhaustion is
//! [`ClearKeyError::OutOfMemory`], not an abort. What stays infallible is inside `serde_json`:
//! the scratch buffer and owned strings it makes for JSON strings with escapes, bounded by the
//! 64 KiB input limit.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::base64url::{self, Base64UrlError};
use crate::eme::SessionType;
use crate::key_id::{KeyId, KeyIdError};

pub use crate::abi::limits::MAX_LICENSE_LEN;

/// Length of a Clear Key content key (AES-128).
pub const CONTENT_KEY_LEN: usize = 16;

/// Why a Clear Key message was rejected. Errors never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClearKeyError {
    /// Zero-length message.
    #[error("message is empty")]
    Empty,
    /// Longer than [`MAX_LICENSE_LEN`].
    #[error("message is {len} bytes (at most {MAX_LICENSE_LEN})")]
    TooLarge {
        /// Length found.
        len: usize,
    },
    /// Not JSON, or not the expected shape (missing or mistyped member, duplicate member).
    #[error("message is not valid JSON of the expected shape")]
    InvalidJson,
    /// A license with an empty `keys` array.
    #[error("license contains no keys")]
    NoKeys,
    /// A request or release with an empty `kids` array.
    #[error("message contains no key IDs")]
    NoKeyIds,
    /// A JWK whose `kty` is not `"oct"`.
    #[error("key #{index}: kty is not \"oct\"")]
    UnsupportedKeyType {
        /// Index in `keys`.
        index: usize,
    },
    /// A `k` that is not strict base64url.
    #[error("key #{index}: {source}")]
    InvalidKeyEncoding {
        /// Index in `keys`.
        index: usize,
        /// What is wrong with the encoding.
        source: Base64UrlError,
    },
    /// A `k` that does not decode to exactly 16 bytes.
    #[error("key #{index}: key is not {CONTENT_KEY_LEN} bytes")]
    InvalidKeyLength {
        /// Index in `keys` .
        index: usize,
    },
    /// A malformed key ID (`kid` in a license, an element of `kids` elsewhere).
    #[error("key ID #{index}: {source}")]
    InvalidKeyId {
        /// Index in `keys` or `kids`.
        index: usize,
        /// What is wrong with it.
        source: KeyIdError,
    },
    /// The same key ID appears twice in a `kids` list.
    #[error("key ID #{index} is a duplicate")]
    DuplicateKeyId {
        /// Index of the second occurrence.
        index: usize,
    },
    /// A `type` that is not a supported `MediaKeySessionType`.
    #[error("unknown session type")]
    UnknownSessionType,
    /// A message to build would exceed [`MAX_LICENSE_LEN`].
    #[error("message would exceed {MAX_LICENSE_LEN} bytes")]
    MessageTooLarge,
    /// Memory could not be allocated.
    #[error("out of memory")]
    OutOfMemory,
}

impl From<KeyIdError> for ClearKeyError {
    fn from(_: KeyIdError) -> ClearKeyError {
        ClearKeyError::OutOfMemory
    }
}

/// A 16-byte content key. Zeroized on drop; never printed; compared only in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ContentKey([u8; CONTENT_KEY_LEN]);

impl ContentKey {
    /// Wraps key bytes. The caller's copy of `bytes` is not wiped: prefer [`Self::from_slice`]
    /// on a buffer the caller zeroizes, or [`Self::from_base64url`].
    pub fn new(bytes: [u8; CONTENT_KEY_LEN]) -> Self {
        ContentKey(bytes)
    }

    /// Copies a 16-byte key out of `bytes`; `None` if the length is not 16.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = ContentKey([0; CONTENT_KEY_LEN]);
        if bytes.len() != CONTENT_KEY_LEN {
            return None;
        }
        key.0.copy_from_slice(bytes);
        Some(key)
    }

    /// Decodes strict unpadded base64url directly into a new key (no intermediate copy).
    pub fn from_base64url(s: &str) -> Result<Self, Base64UrlError> {
        let mut key = ContentKey([0; CONTENT_KEY_LEN]);
        // On error `key` is dropped, wiping any partially decoded bytes.
        base64url::decode_to_slice(s, &mut key.0)?;
        Ok(key)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; CONTENT_KEY_LEN] {
        &self.0
    }

    /// Constant-time equality (`subtle`): the time taken does not depend on where the keys
    /// differ.
    pub fn ct_eq(&self, other: &ContentKey) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey { .. }")
    }
}

/// A parsed Clear Key license (EME §9.1.4).
pub struct License {
    /// The keys, in license order; key IDs are unique.
    pub keys: Vec<(KeyId, ContentKey)>,
    /// The `type` member if present. EME: absent means `"temporary"`; `update()` compares it
    /// with the session's type.
    pub session_type: Option<SessionType>,
}

impl License {
    /// The session type the license is for, applying EME's default of `"temporary"`.
    pub fn effective_session_type(&self) -> SessionType {
        self.session_type.unwrap_or(SessionType::Temporary)
    }
}

impl fmt::Debug for License {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("License")
            .field("kids", &KidsOnly(&self.keys))
            .field("session_type", &self.session_type)
            .finish()
    }
}

struct KidsOnly<'a>(&'a [(KeyId, ContentKey)]);

impl fmt::Debug for KidsOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(kid, _)| kid))
            .finish()
    }
}

/// A parsed Clear Key license request (EME §9.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRequest {
    /// Requested key IDs, unique, in request order.
    pub kids: Vec<KeyId>,
    /// Requested session type.
    pub session_type: SessionType,
}

/// A JSON string holding key material: borrowed from the input when it has no escapes,
/// otherwise owned and wiped on drop.
struct SecretStr<'a>(Cow<'a, str>);

impl Drop for SecretStr<'_> {
    fn drop(&mut self) {
        if let Cow::Owned(s) = &mut self.0 {
            s.zeroize();
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for SecretStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = SecretStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(SecretStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SecretStr(Cow::Owned(String::from(v))))
            }
        }
        d.deserialize_str(V(core::marker::PhantomData))
    }
}

/// A JSON array deserialized with fallible allocation.
pub(crate) struct TryVec<T>(pub(crate) Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TryVec<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(core::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = TryVec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    out.try_reserve(1)
                        .map_err(|_| de::Error::custom("out of memory"))?;
                    out.push(item);
                }
                Ok(TryVec(out))
            }
        }
        d.deserialize_seq(V(core::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct JwkJson<'a> {
    #[serde(borrow)]
    kty: Cow<'a, str>,
    #[serde(borrow)]
    k: SecretStr<'a>,
    #[serde(borrow)]
    kid: Cow<'a, str>,
}

#[derive(Deserialize)]
struct JwkSetJson<'a> {
    #[serde(borrow)]
    keys: TryVec<JwkJson<'a>>,
    #[serde(borrow, default, rename = "type")]
    session_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RequestJson<'a> {
    #[serde(borrow)]
    kids: TryVec<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    session_type: Cow<'a, str>,
}

#[derive(Deserialize)]
struct KidsJson<'a> {
    #[serde(borrow)]
    kids: TryVec<Cow<'a, str>>,
}

fn check_len(msg: &[u8]) -> Result<(), ClearKeyError> {
    if msg.is_empty() {
        Err(ClearKeyError::Empty)
    } else if msg.len() > MAX_LICENSE_LEN {
        Err(ClearKeyError::TooLarge { len: msg.len() })
    } else {
        Ok(())
    }
}

fn parse_session_type(s: &str) -> Result<SessionType, ClearKeyError> {
    s.parse().map_err(|_| ClearKeyError::UnknownSessionType)
}

/// Decodes a `kids` array: at least one, each strict base64url of 1..=512 bytes, no duplicates.
fn parse_kids(kids: &[Cow<'_, str>]) -> Result<Vec<KeyId>, ClearKeyError> {
    if kids.is_empty() {
        return Err(ClearKeyError::NoKeyIds);
    }
    let mut out: Vec<KeyId> = Vec::new();
    out.try_reserve_exact(kids.len())
        .map_err(|_| ClearKeyError::OutOfMemory)?;
    for (index, s) in kids.iter().enumerate() {
        let kid = KeyId::from_base64url(s)
            .map_err(|source| ClearKeyError::InvalidKeyId { index, source })?;
        if out.contains(&kid) {
            return Err(ClearKeyError::DuplicateKeyId { index });
        }
        out.push(kid);
    }
    Ok(out)
}

/// Parses a Clear Key license (EME §9.1.4).
///
/// Strict: at most [`MAX_LICENSE_LEN`] bytes, at least one key, every `kty` `"oct"`, every `k`
/// strict base64url of exactly 16 bytes, every `kid` strict base64url of 1..=512 bytes, `type`
/// (if present) a supported session type. Other members (e.g. the `"alg":"A128KW"` of early
/// drafts) are ignored. A key ID listed twice is a valid set (RFC 7517 §4.5 only says kids
/// SHOULD be unique): the last of its keys wins, in the place of the first. All-or-nothing: on
/// error no key is returned.
pub fn parse_license(license: &[u8]) -> Result<License, ClearKeyError> {
    check_len(license)?;
    let json: JwkSetJson<'_> =
        serde_json::from_slice(license).map_err(|_| ClearKeyError::InvalidJson)?;
    let jwks = json.keys.0;
    if jwks.is_empty() {
        return Err(ClearKeyError::NoKeys);
    }
    let session_type = json
        .session_type
        .as_deref()
        .map(parse_session_type)
        .transpose()?;
    let mut keys: Vec<(KeyId, ContentKey)> = Vec::new();
    keys.try_reserve_exact(jwks.len())
        .map_err(|_| ClearKeyError::OutOfMemory)?;
    for (index, jwk) in jwks.iter().enumerate() {
        if jwk.kty != "oct" {
            return Err(ClearKeyError::UnsupportedKeyType { index });
        }
        let kid = KeyId::from_base64url(&jwk.kid)
            .map_err(|source| ClearKeyError::InvalidKeyId { index, source })?;
        if base64url::decoded_len(jwk.k.0.len()) != Some(CONTENT_KEY_LEN) {
            return Err(ClearKeyError::InvalidKeyLength { index });
        }
        let key = ContentKey::from_base64url(&jwk.k.0)
            .map_err(|source| ClearKeyError::InvalidKeyEncoding { index, source })?;
        match keys.iter_mut().find(|(k, _)| *k == kid) {
            // The replaced key is wiped when it drops.
            Some((_, earlier)) => *earlier = key,
            None => keys.push((kid, key)),
        }
    }
    Ok(License { keys, session_type })
}

/// Builds a Clear Key license `{"keys":[{"kty":"oct","k":"…","kid":"…"},…],"type":"…"}` (for
/// tests, demos and reference servers). The result holds the keys in clear and is zeroized on
/// drop. Fails with [`ClearKeyError::MessageTooLarge`] past [`MAX_LICENSE_LEN`].
pub fn build_license(
    keys: &[(KeyId, &ContentKey)],
    session_type: SessionType,
) -> Result<Zeroizing<Vec<u8>>, ClearKeyError> {
    const KEY_OPEN: &str = "{\"kty\":\"oct\",\"k\":\"";
    const KID_OPEN: &str = "\",\"kid\":\"";
    const KEY_CLOSE: &str = "\"}";
    const FRAME: &str = "{\"keys\":[],\"type\":\"\"}";
    // Per key, besides its encoded key ID: the fixed text, the encoded key and a comma
    // (evaluated at compile time).
    const PER_KEY: usize = KEY_OPEN.len()
        + base64url::encoded_len(CONTENT_KEY_LEN)
        + KID_OPEN.len()
        + KEY_CLOSE.len()
        + 1;
    let mut cap = FRAME.len().saturating_add(session_type.as_str().len());
    for (kid, _) in keys {
        cap = cap.saturating_add(PER_KEY.saturating_add(base64url::encoded_len(kid.len())));
    }
    if cap > MAX_LICENSE_LEN {
        return Err(ClearKeyError::MessageTooLarge);
    }
    // Sized up front: a reallocation would leave a copy of the keys in freed memory.
    let mut s = Zeroizing::new(String::new());
    s.try_reserve_exact(cap)
        .map_err(|_| ClearKeyError::OutOfMemory)?;
    s.push_str("{\"keys\":[");
    for (i, (kid, key)) in keys.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(KEY_OPEN);
        base64url::encode_to(key.as_bytes(), &mut s);
        s.push_str(KID_OPEN);
        base64url::encode_to(kid.as_bytes(), &mut s);
        s.push_str(KEY_CLOSE);
    }
    s.push_str("],\"type\":\"");
    s.push_str(session_type.as_str());
    s.push_str("\"}");
    // `String` → `Vec<u8>` reuses the allocation; the emptied `String` owns nothing.
    Ok(Zeroizing::new(core::mem::take(&mut *s).into_bytes()))
}

/// Builds `{"kids":["<base64url>",...]}`, or `{"kids":[...],"type":"<type>"}` when
/// `session_type` is given: the one builder of the `kids` formats (a Clear Key license request
/// (EME §9.1.3), a record of license destruction (§9.1.5) and `keyids` init data). The exact
/// length is computed first and reserved fallibly, so building either succeeds or fails with
/// [`ClearKeyError::OutOfMemory`] / [`ClearKeyError::MessageTooLarge`] (past
/// [`MAX_LICENSE_LEN`]); it never reallocates. Key IDs are base64url without padding (EME
/// §9.1.7), which needs no JSON escaping.
pub fn kids_json<'k, I>(
    kids: I,
    session_type: Option<SessionType>,
) -> Result<Vec<u8>, ClearKeyError>
where
    I: IntoIterator<Item = &'k [u8]>,
    I::IntoIter: Clone,
{
    const OPEN: &str = "{\"kids\":[";
    const TYPE: &str = "],\"type\":\"";
    let kids = kids.into_iter();
    let mut len = Some(OPEN.len());
    for (i, kid) in kids.clone().enumerate() {
        // Two quotes, and a comma before every key ID but the first.
        let sep = if i == 0 { 2 } else { 3 };
        len = len
            .and_then(|l| l.checked_add(base64url::encoded_len(kid.len())))
            .and_then(|l| l.checked_add(sep));
    }
    let tail = match session_type {
        Some(t) => TYPE
            .len()
            .saturating_add(t.as_str().len())
            .saturating_add(2),
        None => 2,
    };
    let len = len
        .and_then(|l| l.checked_add(tail))
        .filter(|&l| l <= MAX_LICENSE_LEN)
        .ok_or(ClearKeyError::MessageTooLarge)?;
    let mut s = String::new();
    s.try_reserve_exact(len)
        .map_err(|_| ClearKeyError::OutOfMemory)?;
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

/// Builds a Clear Key license request `{"kids":[…],"type":"…"}` (EME §9.1.3), the `message`
/// of a `license-request` event.
pub fn license_request_json(
    kids: &[KeyId],
    session_type: SessionType,
) -> Result<Vec<u8>, ClearKeyError> {
    kids_json(kids.iter().map(KeyId::as_bytes), Some(session_type))
}

/// Parses a Clear Key license request (EME §9.1.3), as a license server does: at least one
/// key ID, no duplicates, `type` required and supported.
pub fn parse_license_request(msg: &[u8]) -> Result<LicenseRequest, ClearKeyError> {
    check_len(msg)?;
    let json: RequestJson<'_> =
        serde_json::from_slice(msg).map_err(|_| ClearKeyError::InvalidJson)?;
    let kids = parse_kids(&json.kids.0)?;
    let session_type = parse_session_type(&json.session_type)?;
    Ok(LicenseRequest { kids, session_type })
}

/// Builds a record of license destruction `{"kids":[…]}` (EME §9.1.5, the `message` of a
/// `license-release` event of a `persistent-license` session). The license release
/// acknowledgement (§9.1.6) has the same format.
pub fn license_release_json(kids: &[KeyId]) -> Result<Vec<u8>, ClearKeyError> {
    kids_json(kids.iter().map(KeyId::as_bytes), None)
}

/// Parses a record of license destruction (EME §9.1.5) or a license release acknowledgement
/// (§9.1.6): `{"kids":[…]}`, at least one key ID, no duplicates.
pub fn parse_license_release(msg: &[u8]) -> Result<Vec<KeyId>, ClearKeyError> {
    check_len(msg)?;
    let json: KidsJson<'_> = serde_json::from_slice(msg).map_err(|_| ClearKeyError::InvalidJson)?;
    parse_kids(&json.kids.0)
}
