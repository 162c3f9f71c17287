//! Test harness: drives a `SecureWorld` only through ABI-encoded requests; test content comes
//! from the test kit's independent encryptor and license builder.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

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

pub use cdm_testkit::cenc::{encrypt_cbcs, encrypt_cenc};
pub use cdm_testkit::clearkey::b64url;

/// A Clear Key JWK Set (EME §9.1.4) of a temporary session (the test kit's builder).
pub fn license(keys: &[(&[u8], [u8; 16])]) -> Vec<u8> {
    let refs: Vec<(&[u8], &[u8; 16])> = keys.iter().map(|(kid, key)| (*kid, key)).collect();
    cdm_testkit::clearkey::license(&refs, "temporary")
}

/// A Clear Key JWK Set of a `persistent-license` session.
pub fn persistent_license(keys: &[(&[u8], [u8; 16])]) -> Vec<u8> {
    let refs: Vec<(&[u8], &[u8; 16])> = keys.iter().map(|(kid, key)| (*kid, key)).collect();
    cdm_testkit::clearkey::license(&refs, "persistent-license")
}

/// A version 1 `pssh` box of the common system ID listing `kids` (the test kit's builder).
pub fn pssh_v1(kids: &[[u8; 16]]) -> Vec<u8> {
    cdm_testkit::cenc::pssh_v1(&kids.iter().collect::<Vec<_>>())
}

pub use cdm_testkit::cenc::plaintext;

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

    /// A secure world keeping persistent licenses in `dir` (hal's host emulations).
    pub fn with_storage(dir: &std::path::Path, config: Config) -> Self {
        let p = hal::platform::HostPersistence::open(dir).unwrap();
        Harness {
            sw: SecureWorld::with_storage(
                StdPlatform::host(),
                config,
                p.storage,
                p.counter,
                &p.root_key,
            )
            .unwrap(),
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
        self.try_open_typed(robustness, SessionType::Temporary)
    }

    pub fn try_open_typed(
        &mut self,
        robustness: Robustness,
        session_type: SessionType,
    ) -> Result<(u64, String), Status> {
        let req = Request::OpenSession(cdm_core::abi::OpenSession {
            key_system: KeySystem::ClearKey,
            robustness,
            session_type,
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

    /// Sends `Load`; answers the new handle (0 when nothing was found) and the answer.
    pub fn load(
        &mut self,
        robustness: Robustness,
        session_id: &str,
    ) -> Result<(u64, cdm_core::abi::Loaded), Status> {
        let req = Request::Load(cdm_core::abi::Load {
            key_system: KeySystem::ClearKey,
            robustness,
            session_id: session_id.as_bytes(),
        });
        let mut msg = Vec::new();
        req.encode(0, 78, &mut msg).unwrap();
        let (h, r) = self.raw(Opcode::Load, &msg, &mut []);
        match r? {
            Response::Load(loaded) => Ok((h.session, loaded)),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A persistent-license session with `keys` stored; answers the handle and session id.
    pub fn persistent_session(
        &mut self,
        robustness: Robustness,
        keys: &[(&[u8], [u8; 16])],
    ) -> Result<(u64, String), Status> {
        let (s, id) = self.try_open_typed(robustness, SessionType::PersistentLicense)?;
        self.generate(s, InitDataType::Webm, keys[0].0)?;
        self.update(s, &persistent_license(keys))?;
        Ok((s, id))
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
