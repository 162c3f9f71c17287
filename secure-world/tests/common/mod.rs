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
    parse_response, CloseSession, DecryptOutput, DecryptRequest, Done, GenerateRequest,
    GetKeyStatuses, Header, Load, Loaded, Message, Opcode, OpenSession, Operation, OutputKind,
    Remove, Request, Response, SessionState, Status, Subsamples, Update,
};
use cdm_core::{EncryptionScheme, InitDataType, KeyStatus, KeySystem, Robustness, SessionType};
use hal::platform::{Clock, DigestSink, StdPlatform, SystemClock, SystemRandom};
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

/// A secure world driven only through ABI messages, each with a fresh request id that its
/// answer must carry. `C` is the secure world's clock (the protected tests' `Dev` uses a
/// virtual one).
pub struct Harness<C: Clock = SystemClock> {
    pub sw: SecureWorld<SystemRandom, C, DigestSink>,
    pub resp: Vec<u8>,
    next_id: u32,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Harness::driving(SecureWorld::new(StdPlatform::host(), config).unwrap())
    }

    /// A secure world keeping persistent licenses in `dir` (hal's host emulations).
    pub fn with_storage(dir: &std::path::Path, config: Config) -> Self {
        let p = hal::platform::HostPersistence::open(dir).unwrap();
        Harness::driving(
            SecureWorld::with_storage(
                StdPlatform::host(),
                config,
                p.storage,
                p.counter,
                &p.root_key,
            )
            .unwrap(),
        )
    }

    pub fn try_open(&mut self, robustness: Robustness) -> Result<(u64, String), Status> {
        self.try_open_typed(robustness, SessionType::Temporary)
    }

    pub fn try_open_typed(
        &mut self,
        robustness: Robustness,
        session_type: SessionType,
    ) -> Result<(u64, String), Status> {
        self.try_open_in(KeySystem::ClearKey, session_type, robustness)
    }

    /// Sends a Clear Key `Load`; answers the new handle (0 when nothing was found) and the
    /// answer.
    pub fn load(
        &mut self,
        robustness: Robustness,
        session_id: &str,
    ) -> Result<(u64, Loaded), Status> {
        self.load_in(KeySystem::ClearKey, robustness, session_id)
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

    /// The message of a `GenerateRequest`.
    pub fn generate(&mut self, s: u64, ty: InitDataType, data: &[u8]) -> Result<Vec<u8>, Status> {
        Ok(self.generate_message(s, ty, data)?.message)
    }

    pub fn statuses(&mut self, s: u64) -> Result<Vec<(Vec<u8>, KeyStatus)>, Status> {
        Ok(self
            .state(s)?
            .key_statuses
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect())
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
    ) -> Result<DecryptOutput, Status> {
        self.send(s, d, sample).1
    }
}

impl<C: Clock> Harness<C> {
    /// A harness sending its requests to `sw`.
    pub fn driving(sw: SecureWorld<SystemRandom, C, DigestSink>) -> Self {
        Harness {
            sw,
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

    /// The next request id.
    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn call_with(
        &mut self,
        session: u64,
        req: &Request<'_>,
        sample: &mut [u8],
    ) -> Result<Response, Status> {
        let id = self.take_id();
        let mut msg = Vec::new();
        req.encode(session, id, &mut msg).unwrap();
        let (h, r) = self.raw(req.opcode(), &msg, sample);
        assert_eq!(h.request_id, id);
        r
    }

    pub fn call(&mut self, session: u64, req: &Request<'_>) -> Result<Response, Status> {
        self.call_with(session, req, &mut [])
    }

    /// Sends operation `op` on `session` with `sample` as the shared sample buffer; answers
    /// the response header and the answer, decoded as `op`'s response.
    pub fn send<'a, O: Operation<'a>>(
        &mut self,
        session: u64,
        op: O,
        sample: &mut [u8],
    ) -> (Header, Result<O::Response, Status>) {
        let id = self.take_id();
        let mut msg = Vec::new();
        op.encode_message(session, id, &mut msg).unwrap();
        self.sw.process(&msg, sample, &mut self.resp);
        let (h, r) = parse_response::<O>(&self.resp).unwrap();
        assert_eq!(h.request_id, id);
        (h, r)
    }

    /// [`Harness::send`] without a sample, answering only the answer.
    pub fn op<'a, O: Operation<'a>>(&mut self, session: u64, op: O) -> Result<O::Response, Status> {
        self.send(session, op, &mut []).1
    }

    /// Opens a session of `key_system`; answers its handle and EME session id.
    pub fn try_open_in(
        &mut self,
        key_system: KeySystem,
        session_type: SessionType,
        robustness: Robustness,
    ) -> Result<(u64, String), Status> {
        let open = OpenSession {
            key_system,
            robustness,
            session_type,
        };
        let (h, r) = self.send(0, open, &mut []);
        Ok((h.session, r?.session_id))
    }

    /// Sends `Load`; answers the new handle (0 when nothing was found) and the answer.
    pub fn load_in(
        &mut self,
        key_system: KeySystem,
        robustness: Robustness,
        session_id: &str,
    ) -> Result<(u64, Loaded), Status> {
        let load = Load {
            key_system,
            robustness,
            session_id: session_id.as_bytes(),
        };
        let (h, r) = self.send(0, load, &mut []);
        Ok((h.session, r?))
    }

    pub fn generate_message(
        &mut self,
        s: u64,
        init_data_type: InitDataType,
        init_data: &[u8],
    ) -> Result<Message, Status> {
        self.op(
            s,
            GenerateRequest {
                init_data_type,
                init_data,
            },
        )
    }

    pub fn update(&mut self, s: u64, response: &[u8]) -> Result<SessionState, Status> {
        self.op(s, Update { response })
    }

    /// The answer of `GetKeyStatuses`.
    pub fn state(&mut self, s: u64) -> Result<SessionState, Status> {
        self.op(s, GetKeyStatuses)
    }

    /// The answer of `Remove` (the `license-release` message).
    pub fn remove(&mut self, s: u64) -> Result<Message, Status> {
        self.op(s, Remove)
    }

    pub fn close(&mut self, s: u64) -> Result<Done, Status> {
        self.op(s, CloseSession)
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
