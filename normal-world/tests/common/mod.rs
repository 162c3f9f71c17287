//! Shared fixtures of the end-to-end tests: transports, keys, and an independent encryptor
//! (RustCrypto `aes`/`ctr`) that produces the protected samples the CDM must decrypt.
#![allow(dead_code, unreachable_pub, missing_docs)]

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use cdm_core::clearkey::{build_license, ContentKey};
use cdm_core::key_id::KeyId;
use normal_world::transport::{HostProcess, SocketTransport};
use normal_world::{
    request_media_key_system_access, MediaKeySession, MediaKeySessionEvent,
    MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeys, SessionType,
};

/// Which transport a test runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    InProcess,
    Socket,
}

/// Key IDs and keys of the tests, with their base64url (computed independently, Python's
/// `base64.urlsafe_b64encode` without padding).
pub const KID1: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
pub const KID1_B64: &str = "AAECAwQFBgcICQoLDA0ODw";
pub const KID2: [u8; 16] = [
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
];
pub const KID2_B64: &str = "EBESExQVFhcYGRobHB0eHw";
pub const KEY1: [u8; 16] = *b"sixteen byte key";
pub const KEY2: [u8; 16] = [0xab; 16];

pub fn config() -> MediaKeySystemConfiguration {
    MediaKeySystemConfiguration {
        init_data_types: vec!["cenc".into(), "keyids".into(), "webm".into()],
        video_capabilities: vec![MediaKeySystemMediaCapability::new(
            "video/mp4; codecs=\"avc1.64001f\"",
        )],
        ..Default::default()
    }
}

/// The `secure-world-host` binary, when these fixtures are compiled into that crate's tests
/// (where cargo builds it); `None` in normal-world's own tests.
pub fn host_binary() -> Option<&'static str> {
    option_env!("CARGO_BIN_EXE_secure-world-host")
}

/// A `MediaKeys` over `kind`, with the host process when the socket transport runs one.
/// Without the host binary, the socket transport talks to the host's server loop
/// (`secure_world_host::serve_unix_socket`) on a thread of this process.
pub fn media_keys(kind: Kind) -> (MediaKeys, Option<HostProcess>) {
    let access = request_media_key_system_access("org.w3.clearkey", &[config()]).unwrap();
    match (kind, host_binary()) {
        (Kind::InProcess, _) => (access.create_media_keys().unwrap(), None),
        (Kind::Socket, Some(bin)) => {
            let t = SocketTransport::spawn(bin).unwrap();
            let host = t.host();
            (
                access
                    .create_media_keys_with_transport(Box::new(t))
                    .unwrap(),
                host,
            )
        }
        (Kind::Socket, None) => {
            static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("tee-cdm-test-{}-{n}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let listening = path.clone();
            std::thread::spawn(move || {
                secure_world_host::serve_unix_socket(
                    &listening,
                    true,
                    secure_world_host::host_world,
                )
            });
            let t = loop {
                match SocketTransport::connect(&path) {
                    Ok(t) => break t,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
            };
            (
                access
                    .create_media_keys_with_transport(Box::new(t))
                    .unwrap(),
                None,
            )
        }
    }
}

pub fn kid(bytes: &[u8]) -> KeyId {
    KeyId::new(bytes).unwrap()
}

/// A JWK Set license for `keys` (built by cdm-core's builder; its format is tested there
/// against the EME examples).
pub fn license(keys: &[(&[u8; 16], &[u8; 16])]) -> Vec<u8> {
    let owned: Vec<(KeyId, ContentKey)> = keys
        .iter()
        .map(|(k, v)| (kid(*k), ContentKey::new(**v)))
        .collect();
    let refs: Vec<(KeyId, &ContentKey)> = owned.iter().map(|(k, v)| (k.clone(), v)).collect();
    build_license(&refs, SessionType::Temporary)
        .unwrap()
        .to_vec()
}

/// A version 1 `pssh` box of the Common SystemID, written out byte by byte from
/// ISO/IEC 23001-7 §8.1.1 (not with the crate's builder).
pub fn pssh_v1(kids: &[&[u8; 16]]) -> Vec<u8> {
    let size = 32 + 16 * kids.len() + 4;
    let mut b = Vec::new();
    b.extend_from_slice(&u32::try_from(size).unwrap().to_be_bytes());
    b.extend_from_slice(b"pssh");
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.extend_from_slice(&hex::decode("1077efecc0b24d02ace33c1e52e2fb4b").unwrap());
    b.extend_from_slice(&u32::try_from(kids.len()).unwrap().to_be_bytes());
    for k in kids {
        b.extend_from_slice(*k);
    }
    b.extend_from_slice(&0u32.to_be_bytes());
    b
}

/// Generates a request and answers it with a license for `keys`; drains the events.
pub fn load_keys(session: &MediaKeySession, keys: &[(&[u8; 16], &[u8; 16])]) {
    let kids: Vec<&[u8; 16]> = keys.iter().map(|(k, _)| *k).collect();
    session.generate_request("cenc", &pssh_v1(&kids)).unwrap();
    session.update(&license(keys)).unwrap();
    session.drain_events();
}

/// A test sample: `len` bytes of a fixed pattern.
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 7 + 3) % 251).unwrap())
        .collect()
}

/// Protected byte ranges of a sample under a subsample map (the whole sample if empty).
fn protected_ranges(len: usize, subsamples: &[(u32, u32)]) -> Vec<(usize, usize)> {
    if subsamples.is_empty() {
        return vec![(0, len)];
    }
    let mut pos = 0usize;
    let mut out = Vec::new();
    for &(clear, prot) in subsamples {
        pos += clear as usize;
        out.push((pos, pos + prot as usize));
        pos += prot as usize;
    }
    assert_eq!(pos, len);
    out
}

/// ISO/IEC 23001-7 §10.1 `cenc`: AES-128-CTR, 8-byte IV as the high half of the counter
/// block, one keystream running across the protected ranges. RustCrypto's `Ctr64BE` wraps
/// the low 64 bits without carrying, as the scheme requires.
pub fn encrypt_cenc(key: &[u8; 16], iv8: &[u8; 8], data: &mut [u8], subsamples: &[(u32, u32)]) {
    let mut block = [0u8; 16];
    block[..8].copy_from_slice(iv8);
    let mut cipher = ctr::Ctr64BE::<aes::Aes128>::new(key.into(), &block.into());
    for (a, b) in protected_ranges(data.len(), subsamples) {
        cipher.apply_keystream(&mut data[a..b]);
    }
}

/// ISO/IEC 23001-7 §10.4 `cbcs`: AES-128-CBC over the `crypt` blocks of each
/// `crypt + skip` group, constant IV restarted for every subsample, partial blocks clear.
pub fn encrypt_cbcs(
    key: &[u8; 16],
    iv: &[u8; 16],
    data: &mut [u8],
    subsamples: &[(u32, u32)],
    (crypt, skip): (usize, usize),
) {
    let aes = aes::Aes128::new(key.into());
    for (a, b) in protected_ranges(data.len(), subsamples) {
        let mut chain = *iv;
        let blocks = (b - a) / 16;
        let (crypt, skip) = if crypt == 0 && skip == 0 {
            (1, 0)
        } else {
            (crypt, skip)
        };
        let mut i = 0;
        while i < blocks {
            for j in i..(i + crypt).min(blocks) {
                let blk = &mut data[a + 16 * j..a + 16 * j + 16];
                for (x, c) in blk.iter_mut().zip(chain.iter()) {
                    *x ^= c;
                }
                let mut ga = aes::Block::clone_from_slice(blk);
                aes.encrypt_block(&mut ga);
                blk.copy_from_slice(&ga);
                chain.copy_from_slice(blk);
            }
            i += crypt + skip;
        }
    }
}

/// Whether `events` contains a `keystatuseschange`.
pub fn has_key_change(events: &[MediaKeySessionEvent]) -> bool {
    events.contains(&MediaKeySessionEvent::KeyStatusesChange)
}

/// Declares a test for each transport: `NAME_in_process` and `socket_NAME` (CI's QEMU job
/// skips `socket_` tests).
#[macro_export]
macro_rules! both_transports {
    ($name:ident, $body:path) => {
        mod $name {
            #[test]
            fn in_process() {
                $body($crate::common::Kind::InProcess);
            }
            #[test]
            fn socket_transport() {
                $body($crate::common::Kind::Socket);
            }
        }
    };
}
