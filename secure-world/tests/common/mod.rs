//! Test harness: drives a `SecureWorld` only through ABI-encoded requests, and builds test
//! content with independent implementations (RustCrypto `aes`/`ctr`, a local base64url).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use cdm_core::abi::{
    DecryptRequest, Header, Opcode, OutputKind, Request, Response, Status, Subsamples,
};
use cdm_core::{EncryptionScheme, InitDataType, KeyStatus, KeySystem, Robustness, SessionType};
use hal::platform::{DigestSink, StdPlatform, SystemClock, SystemRandom};
use secure_world::{Config, SecureWorld};

pub type World = SecureWorld<SystemRandom, SystemClock, DigestSink>;

pub const KID1: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
pub const KID1_B64: &str = "AQIDBAUGBwgJCgsMDQ4PEA";
pub const KID2: [u8; 16] = [0xff; 16];
pub const KID2_B64: &str = "_____________________w";
pub const KEY1: [u8; 16] = *b"\x3a\x9c\x11\xe7\x52\x0b\xd4\x68\xf1\x27\x8e\x45\xbc\x03\x96\x7d";
pub const KEY2: [u8; 16] = *b"\x68\x2f\x90\xc1\x0e\x5b\xa7\x34\xd9\x71\x1c\xe8\x46\xb3\x2a\x05";

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
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A Clear Key JWK Set (EME §9.1.4).
pub fn license(keys: &[(&[u8], [u8; 16])]) -> Vec<u8> {
    let entries: Vec<String> = keys
        .iter()
        .map(|(kid, key)| {
            format!(
                r#"{{"kty":"oct","k":"{}","kid":"{}"}}"#,
                b64url(key),
                b64url(kid)
            )
        })
        .collect();
    format!(r#"{{"keys":[{}],"type":"temporary"}}"#, entries.join(",")).into_bytes()
}

/// A version 1 `pssh` box of the common system ID listing `kids` (ISO/IEC 23001-7 §8.1,
/// "cenc" init data format §4.1), written byte by byte.
pub fn pssh_v1(kids: &[[u8; 16]]) -> Vec<u8> {
    let size = 32 + 16 * kids.len() + 4;
    let mut b = Vec::new();
    b.extend_from_slice(&(size as u32).to_be_bytes());
    b.extend_from_slice(b"pssh");
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.extend_from_slice(&[
        0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb,
        0x4b,
    ]);
    b.extend_from_slice(&(kids.len() as u32).to_be_bytes());
    for k in kids {
        b.extend_from_slice(k);
    }
    b.extend_from_slice(&0u32.to_be_bytes());
    b
}

/// Encrypts the protected ranges with AES-128-CTR (`cenc`, ISO/IEC 23001-7 §10.1): one
/// keystream running across all protected ranges, 64-bit big-endian block counter.
pub fn cenc_encrypt(key: &[u8; 16], iv8: &[u8; 8], map: &[(u32, u32)], data: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(iv8);
    let mut c = ctr::Ctr64BE::<aes::Aes128>::new(key.into(), &iv.into());
    let mut protected = Vec::new();
    for r in ranges(map, data.len()) {
        protected.extend_from_slice(&data[r]);
    }
    c.apply_keystream(&mut protected);
    let mut off = 0;
    for r in ranges(map, data.len()) {
        let n = r.len();
        data[r].copy_from_slice(&protected[off..off + n]);
        off += n;
    }
}

/// Encrypts with `cbcs` (ISO/IEC 23001-7 §10.4): in each protected range, CBC from the
/// constant IV over the first `crypt` of every `crypt + skip` blocks; partial block clear.
pub fn cbcs_encrypt(
    key: &[u8; 16],
    iv: &[u8; 16],
    crypt: usize,
    skip: usize,
    map: &[(u32, u32)],
    data: &mut [u8],
) {
    let aes = aes::Aes128::new(key.into());
    for r in ranges(map, data.len()) {
        let range = &mut data[r];
        let mut chain = *iv;
        let blocks = range.len() / 16;
        for b in 0..blocks {
            if b % (crypt + skip) >= crypt {
                continue;
            }
            let block = &mut range[b * 16..b * 16 + 16];
            for (x, c) in block.iter_mut().zip(chain.iter()) {
                *x ^= c;
            }
            let mut ga = aes::Block::clone_from_slice(block);
            aes.encrypt_block(&mut ga);
            block.copy_from_slice(&ga);
            chain.copy_from_slice(&ga);
        }
    }
}

fn ranges(map: &[(u32, u32)], len: usize) -> Vec<core::ops::Range<usize>> {
    if map.is_empty() {
        return core::iter::once(0..len).collect();
    }
    let mut out = Vec::new();
    let mut off = 0usize;
    for &(c, p) in map {
        off += c as usize;
        out.push(off..off + p as usize);
        off += p as usize;
    }
    out
}

/// Known plaintext: bytes that are not all equal.
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .try_into()
        .unwrap()
}

pub struct Harness {
    pub sw: World,
    pub resp: Vec<u8>,
    next_id: u32,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Harness {
            sw: SecureWorld::new(StdPlatform::host(), config).unwrap(),
            resp: Vec::new(),
            next_id: 1,
        }
    }

    /// Sends raw request bytes; answers the response header and decoded response.
    pub fn raw(
        &mut self,
        opcode: Opcode,
        msg: &[u8],
        sample: &mut [u8],
    ) -> (Header, Result<Response, Status>) {
        self.sw.process(msg, sample, &mut self.resp);
        Response::parse(opcode, &self.resp).unwrap()
    }

    pub fn call_with(
        &mut self,
        session: u64,
        req: &Request<'_>,
        sample: &mut [u8],
    ) -> Result<Response, Status> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = Vec::new();
        req.encode(session, id, &mut msg).unwrap();
        let (h, r) = self.raw(req.opcode(), &msg, sample);
        assert_eq!(h.request_id, id);
        r
    }

    pub fn call(&mut self, session: u64, req: &Request<'_>) -> Result<Response, Status> {
        self.call_with(session, req, &mut [])
    }

    pub fn try_open(&mut self, robustness: Robustness) -> Result<(u64, String), Status> {
        let req = Request::OpenSession(cdm_core::abi::OpenSession {
            key_system: KeySystem::ClearKey,
            robustness,
            session_type: SessionType::Temporary,
        });
        let mut msg = Vec::new();
        req.encode(0, 77, &mut msg).unwrap();
        let (h, r) = self.raw(Opcode::OpenSession, &msg, &mut []);
        match r? {
            Response::OpenSession(cdm_core::abi::SessionOpened { session_id }) => {
                Ok((h.session, session_id))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn open(&mut self, robustness: Robustness) -> u64 {
        self.try_open(robustness).unwrap().0
    }

    pub fn generate(&mut self, s: u64, ty: InitDataType, data: &[u8]) -> Result<Vec<u8>, Status> {
        match self.call(
            s,
            &Request::GenerateRequest(cdm_core::abi::GenerateRequest {
                init_data_type: ty,
                init_data: data,
            }),
        )? {
            Response::GenerateRequest(cdm_core::abi::Message { message, .. }) => Ok(message),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn update(&mut self, s: u64, license: &[u8]) -> Result<Response, Status> {
        self.call(
            s,
            &Request::Update(cdm_core::abi::Update { response: license }),
        )
    }

    pub fn statuses(&mut self, s: u64) -> Result<Vec<(Vec<u8>, KeyStatus)>, Status> {
        match self.call(s, &Request::GetKeyStatuses(cdm_core::abi::GetKeyStatuses))? {
            Response::GetKeyStatuses(st) => Ok(st
                .key_statuses
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect()),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A session with a license request sent and `keys` loaded.
    pub fn session_with_keys(&mut self, robustness: Robustness, keys: &[(&[u8], [u8; 16])]) -> u64 {
        let s = self.open(robustness);
        self.generate(s, InitDataType::Webm, keys[0].0).unwrap();
        self.update(s, &license(keys)).unwrap();
        s
    }

    pub fn decrypt(
        &mut self,
        s: u64,
        d: DecryptRequest<'_>,
        sample: &mut [u8],
    ) -> Result<Response, Status> {
        self.call_with(s, &Request::Decrypt(d), sample)
    }
}

/// A `cenc` description of a whole sample.
pub fn cenc_req<'a>(
    kid: &'a [u8],
    iv: &'a [u8],
    len: usize,
    map: &'a [(u32, u32)],
    output: OutputKind,
) -> DecryptRequest<'a> {
    DecryptRequest {
        key_id: kid,
        scheme: EncryptionScheme::Cenc,
        pattern: (0, 0),
        output,
        iv,
        sample_len: len as u32,
        subsamples: Subsamples::Pairs(map),
    }
}
