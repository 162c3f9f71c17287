//! The decrypt paths through the ABI and the EME API, and the session loop.
//!
//! Every path decrypts the same `cenc` whole-sample description (key [`KEY`], 8-byte IV
//! [`CTR_IV`], no subsample map), so their costs differ only by what each layer adds:
//!
//! - [`RawEngine`]: `hal::cenc::decrypt_sample` with the secure world's AES engine — the floor;
//! - [`DirectWorld`]: a `SecureWorld` called directly, `process` on an encoded `Decrypt`
//!   request (encoded again on every call into a reused buffer, as a host does) with the
//!   sample as the shared buffer, and the response parsed;
//! - [`EmePath`]: `MediaKeys::decrypt` through normal-world — in process
//!   ([`EmePath::in_process`], the secure world linked in, zero copy) or out of process
//!   ([`EmePath::out_of_process`], a `secure-world-host` process over a Unix socket), or over
//!   any ready transport ([`EmePath::with_transport`]);
//! - [`SessionLoop`]: one whole Clear Key license exchange per iteration — `createSession`,
//!   `generateRequest("cenc", pssh)`, the license-request message to a license server in this
//!   process, `update` with its JWK Set, `close` (EME §6.6, §9.1.3, §9.1.4).
//!
//! Decrypting the same buffer in place again and again alternates it between ciphertext and
//! plaintext (CTR is its own inverse); the cost is the same. Correctness is checked once,
//! before timing, by [`crate::check_path`]: a known ciphertext (made with the test kit's
//! reference encryptor) must decrypt to its plaintext.
//!
//! The `pssh` comes from the shared test kit (`cdm_testkit::cenc::pssh_v1`); the license
//! server ([`license_server()`]) is checked against the test kit's.

use std::path::Path;

use cdm_core::abi::{
    parse_response, DecryptOutput, DecryptRequest, GenerateRequest, Message, OpenSession,
    Operation, OutputKind, Subsamples, Update,
};
use cdm_core::clearkey::{build_license, parse_license_request};
use cdm_core::{ContentKey, EncryptionScheme, InitDataType, KeyId, KeySystem, Robustness};
use hal::aes::{Aes128, Engine};
use hal::platform::{DigestSink, StdPlatform, SystemClock, SystemRandom};
use normal_world::transport::{SocketTransport, Transport};
use normal_world::{
    request_media_key_system_access, DecryptedSample, MediaKeySession, MediaKeySessionEvent,
    MediaKeySystemAccess, MediaKeySystemConfiguration, MediaKeySystemMediaCapability, MediaKeys,
    MessageType, OutputWish, SampleDescription, SessionType,
};
use secure_world::{Config, SecureWorld};

use crate::protected::ProtectedServers;
use crate::{BenchError, BenchSample, BenchScheme, CTR_IV, KEY};

/// The key ID of the bench key in every license.
pub const KEY_ID: [u8; 16] = [
    0xbe, 0x4c, 0x4d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];

type World = SecureWorld<SystemRandom, SystemClock, DigestSink>;

/// The `pssh` box (`cenc` init data, ISO/IEC 23001-7 §8.1) naming [`KEY_ID`], from the test
/// kit's builder (`cdm_testkit::cenc::pssh_v1`).
pub fn pssh() -> Vec<u8> {
    cdm_testkit::cenc::pssh_v1(&[&KEY_ID])
}

/// The Clear Key license server: answers a license request (EME §9.1.3) with a JWK Set
/// (§9.1.4) holding [`KEY`] for [`KEY_ID`] if it was asked for.
///
/// It runs inside the timed session loop, so it is built like a real server, on cdm-core's
/// parser and builder, not on the test kit's `cdm_testkit::clearkey::answer` (byte-identical
/// answers, checked by a test, but about twice the cost: the sessions/s figure would drop).
pub fn license_server(request: &[u8]) -> Result<Vec<u8>, BenchError> {
    let req = parse_license_request(request)?;
    let key = ContentKey::new(KEY);
    let entries: Vec<(KeyId, &ContentKey)> = req
        .kids
        .iter()
        .filter(|kid| kid.as_bytes() == KEY_ID)
        .map(|kid| (kid.clone(), &key))
        .collect();
    Ok(build_license(&entries, req.session_type)?.to_vec())
}

/// `requestMediaKeySystemAccess("org.w3.clearkey", …)` for `cenc` audio, temporary sessions.
pub fn access() -> Result<MediaKeySystemAccess, BenchError> {
    let config = MediaKeySystemConfiguration {
        label: "bench".into(),
        init_data_types: vec!["cenc".into()],
        audio_capabilities: vec![MediaKeySystemMediaCapability::new(
            "audio/mp4; codecs=\"mp4a.40.2\"",
        )
        .with_scheme("cenc")],
        session_types: Some(vec!["temporary".into()]),
        ..Default::default()
    };
    Ok(request_media_key_system_access(
        "org.w3.clearkey",
        &[config],
    )?)
}

/// `createMediaKeys()` with the in-process secure world.
fn in_process_media_keys() -> Result<MediaKeys, BenchError> {
    Ok(access()?.create_media_keys()?)
}

/// `MediaKeys` over `transport`, already connected to a secure world.
fn media_keys_over(transport: Box<dyn Transport>) -> Result<MediaKeys, BenchError> {
    Ok(access()?.create_media_keys_with_transport(transport)?)
}

/// `MediaKeys` over a [`SocketTransport`] to a `secure-world-host` spawned from `host`.
fn out_of_process_media_keys(host: &Path) -> Result<MediaKeys, BenchError> {
    let transport = SocketTransport::spawn(host).map_err(|source| BenchError::Spawn {
        host: host.to_owned(),
        source,
    })?;
    media_keys_over(Box::new(transport))
}

/// `MediaKeys` over a [`SocketTransport`] with shared memory to a `secure-world-host`
/// spawned from `host`.
fn shared_memory_media_keys(host: &Path) -> Result<MediaKeys, BenchError> {
    let spawn_error = |source| BenchError::Spawn {
        host: host.to_owned(),
        source,
    };
    let transport = SocketTransport::spawn(host)
        .and_then(SocketTransport::with_shared_memory)
        .map_err(spawn_error)?;
    media_keys_over(Box::new(transport))
}

/// The raw engine path: `hal::cenc::decrypt_sample` (`cenc`, whole sample) with the engine
/// the secure world picks (`Engine::detect`), key schedule made once.
pub struct RawEngine {
    key: Aes128,
    sample: BenchSample,
}

impl RawEngine {
    /// The path for samples of `len` bytes.
    pub fn new(len: usize) -> Result<RawEngine, BenchError> {
        Ok(RawEngine {
            key: Engine::detect().key(&KEY),
            sample: BenchSample::new(BenchScheme::Cenc, len)?,
        })
    }

    /// The engine's name.
    pub fn engine(&self) -> &'static str {
        self.key.engine().name()
    }

    /// Decrypts `data` in place.
    pub fn decrypt(&self, data: &mut [u8]) -> Result<(), BenchError> {
        self.sample.decrypt(&self.key, data)
    }
}

/// A `SecureWorld` called directly: one `SW_SECURE_CRYPTO` session with [`KEY`] loaded,
/// licensed by Clear Key ([`DirectWorld::new`]) or by the protected key system
/// ([`DirectWorld::protected`]).
pub struct DirectWorld {
    world: World,
    session: u64,
    next_id: u32,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl DirectWorld {
    /// A secure world (`StdPlatform::host()`, `Config::default()`) with a Clear Key session
    /// that went through `GenerateRequest` (the `pssh`) and `Update` (the license server's
    /// answer).
    pub fn new() -> Result<DirectWorld, BenchError> {
        let mut w = DirectWorld::open(Config::default(), KeySystem::ClearKey)?;
        let message = w.generate_request()?;
        w.update(&license_server(&message.message)?)?;
        Ok(w)
    }

    /// The same with an `org.teecdm.protected` session: the secure world pins the root of
    /// fresh [`ProtectedServers`], provisions its device identity, and accepts a signed
    /// license (no time limit, no HDCP), whose policy every decrypt then checks.
    pub fn protected() -> Result<DirectWorld, BenchError> {
        let servers = ProtectedServers::new()?;
        let config = Config {
            protected_root: Some(servers.root_key()),
            ..Config::default()
        };
        let mut w = DirectWorld::open(config, KeySystem::Protected)?;
        let mut message = w.generate_request()?;
        if message.message_type == MessageType::IndividualizationRequest {
            w.update(&servers.provision(&message.message)?)?;
            message = w.generate_request()?;
        }
        if message.message_type != MessageType::LicenseRequest {
            return Err(BenchError::Unexpected(format!(
                "protected session: {:?}, not a license request",
                message.message_type
            )));
        }
        w.update(&servers.license(&message.message)?)?;
        Ok(w)
    }

    /// A secure world with `config` and one open temporary session of `key_system`.
    fn open(config: Config, key_system: KeySystem) -> Result<DirectWorld, BenchError> {
        let mut w = DirectWorld {
            world: SecureWorld::new(StdPlatform::host(), config)?,
            session: 0,
            next_id: 1,
            request: Vec::new(),
            response: Vec::new(),
        };
        let (handle, _) = w.call(
            &OpenSession {
                key_system,
                robustness: Robustness::SwSecureCrypto,
                session_type: SessionType::Temporary,
            },
            &mut [],
        )?;
        if handle == 0 {
            return Err(BenchError::Unexpected("open session: handle 0".into()));
        }
        w.session = handle;
        Ok(w)
    }

    /// `GenerateRequest` with the bench `pssh`: the session's message.
    fn generate_request(&mut self) -> Result<Message, BenchError> {
        let init_data = pssh();
        let request = GenerateRequest {
            init_data_type: InitDataType::Cenc,
            init_data: &init_data,
        };
        Ok(self.call(&request, &mut [])?.1)
    }

    /// `Update` with a server's answer.
    fn update(&mut self, response: &[u8]) -> Result<(), BenchError> {
        self.call(&Update { response }, &mut [])?;
        Ok(())
    }

    /// One exchange of operation `O`: answers the header's session and the typed response.
    fn call<'a, O: Operation<'a>>(
        &mut self,
        op: &O,
        sample: &mut [u8],
    ) -> Result<(u64, O::Response), BenchError> {
        let id = self.next_id;
        self.next_id = id.wrapping_add(1);
        op.encode_message(self.session, id, &mut self.request)?;
        self.world
            .process(&self.request, sample, &mut self.response);
        let (header, answer) = parse_response::<O>(&self.response)?;
        let response = answer.map_err(|status| BenchError::Refused {
            opcode: O::OPCODE,
            status,
        })?;
        if header.request_id != id {
            return Err(BenchError::Unexpected("response does not correlate".into()));
        }
        Ok((header.session, response))
    }

    /// Decrypts `sample` in place: encode the `Decrypt` request, `process`, parse the
    /// response — what a host does per sample, without the EME layer.
    pub fn decrypt(&mut self, sample: &mut [u8]) -> Result<(), BenchError> {
        let sample_len =
            u32::try_from(sample.len()).map_err(|_| BenchError::SampleTooLong(sample.len()))?;
        let req = DecryptRequest {
            key_id: &KEY_ID,
            scheme: EncryptionScheme::Cenc,
            pattern: (0, 0),
            output: OutputKind::InPlace,
            iv: &CTR_IV,
            sample_len,
            subsamples: Subsamples::Pairs(&[]),
        };
        match self.call(&req, sample)? {
            (_, DecryptOutput::InPlace) => Ok(()),
            (_, other) => Err(BenchError::Unexpected(format!("decrypt: {other:?}"))),
        }
    }
}

/// The sample description every EME decrypt uses.
fn description() -> SampleDescription<'static> {
    SampleDescription {
        key_id: &KEY_ID,
        scheme: EncryptionScheme::Cenc,
        iv: &CTR_IV,
        pattern: (0, 0),
        subsamples: &[],
        output: OutputWish::InPlace,
    }
}

/// One license exchange on `session`: `generateRequest("cenc", pssh)`, the license-request
/// message to [`license_server`], `update` with its answer.
fn license_exchange(session: &MediaKeySession, pssh: &[u8]) -> Result<(), BenchError> {
    session.generate_request("cenc", pssh)?;
    let request = session
        .drain_events()
        .into_iter()
        .find_map(|e| match e {
            MediaKeySessionEvent::Message {
                message_type: MessageType::LicenseRequest,
                message,
            } => Some(message),
            _ => None,
        })
        .ok_or_else(|| BenchError::Unexpected("no license-request message".into()))?;
    session.update(&license_server(&request)?)?;
    Ok(())
}

/// `MediaKeys::decrypt` with a session holding [`KEY`] (default robustness: in place).
pub struct EmePath {
    // Declared before `media_keys`; kept alive so the key stays loaded.
    _session: MediaKeySession,
    media_keys: MediaKeys,
}

impl EmePath {
    /// `createMediaKeys()` with the in-process secure world.
    pub fn in_process() -> Result<EmePath, BenchError> {
        EmePath::with_media_keys(in_process_media_keys()?)
    }

    /// `MediaKeys` over a [`SocketTransport`] to a `secure-world-host` spawned from `host`.
    pub fn out_of_process(host: &Path) -> Result<EmePath, BenchError> {
        EmePath::with_media_keys(out_of_process_media_keys(host)?)
    }

    /// `MediaKeys` over a [`SocketTransport`] with shared memory to a `secure-world-host`
    /// spawned from `host`.
    pub fn shared_memory(host: &Path) -> Result<EmePath, BenchError> {
        EmePath::with_media_keys(shared_memory_media_keys(host)?)
    }

    /// `MediaKeys` over `transport`, already connected to a secure world (for example a
    /// [`SocketTransport::connect`]ed host).
    pub fn with_transport(transport: Box<dyn Transport>) -> Result<EmePath, BenchError> {
        EmePath::with_media_keys(media_keys_over(transport)?)
    }

    fn with_media_keys(media_keys: MediaKeys) -> Result<EmePath, BenchError> {
        let session = media_keys.create_session(SessionType::Temporary)?;
        license_exchange(&session, &pssh())?;
        Ok(EmePath {
            _session: session,
            media_keys,
        })
    }

    /// Decrypts `sample` through `MediaKeys::sample_buffer`: copied into the buffer,
    /// decrypted there, copied back (to check the zero-copy path on a known sample).
    pub fn decrypt_via_buffer(&self, sample: &mut [u8]) -> Result<(), BenchError> {
        let mut buffer = self.media_keys.sample_buffer(sample.len())?;
        buffer.bytes_mut().copy_from_slice(sample);
        match buffer.decrypt(&description())? {
            DecryptedSample::InPlace => {
                sample.copy_from_slice(buffer.bytes());
                Ok(())
            }
            other => Err(BenchError::Unexpected(format!(
                "decrypt answered {other:?}, not in place"
            ))),
        }
    }

    /// Decrypts the `len` bytes that lie in `MediaKeys::sample_buffer` where they lie: with
    /// the shared-memory transport, no copy at all (the buffer alternates between ciphertext
    /// and plaintext, which costs the same in CTR).
    pub fn decrypt_in_buffer(&self, len: usize) -> Result<(), BenchError> {
        let mut buffer = self.media_keys.sample_buffer(len)?;
        if !buffer.is_shared() {
            return Err(BenchError::Unexpected(
                "the sample buffer is not shared".into(),
            ));
        }
        match buffer.decrypt(&description())? {
            DecryptedSample::InPlace => Ok(()),
            other => Err(BenchError::Unexpected(format!(
                "decrypt answered {other:?}, not in place"
            ))),
        }
    }

    /// Decrypts `sample` in place through `MediaKeys::decrypt`.
    pub fn decrypt(&self, sample: &mut [u8]) -> Result<(), BenchError> {
        match self.media_keys.decrypt(sample, &description())? {
            DecryptedSample::InPlace => Ok(()),
            other => Err(BenchError::Unexpected(format!(
                "decrypt answered {other:?}, not in place"
            ))),
        }
    }
}

/// Whole sessions: each [`SessionLoop::run_once`] creates a temporary session, runs the
/// license exchange and closes it.
pub struct SessionLoop {
    media_keys: MediaKeys,
    pssh: Vec<u8>,
}

impl SessionLoop {
    /// Sessions on an in-process secure world.
    pub fn in_process() -> Result<SessionLoop, BenchError> {
        Ok(SessionLoop::with_media_keys(in_process_media_keys()?))
    }

    /// Sessions on a `secure-world-host` spawned from `host`.
    pub fn out_of_process(host: &Path) -> Result<SessionLoop, BenchError> {
        Ok(SessionLoop::with_media_keys(out_of_process_media_keys(
            host,
        )?))
    }

    /// Sessions on a `secure-world-host` spawned from `host`, over shared memory.
    pub fn shared_memory(host: &Path) -> Result<SessionLoop, BenchError> {
        Ok(SessionLoop::with_media_keys(shared_memory_media_keys(
            host,
        )?))
    }

    /// Sessions on the secure world behind `transport`, already connected.
    pub fn with_transport(transport: Box<dyn Transport>) -> Result<SessionLoop, BenchError> {
        Ok(SessionLoop::with_media_keys(media_keys_over(transport)?))
    }

    fn with_media_keys(media_keys: MediaKeys) -> SessionLoop {
        SessionLoop {
            media_keys,
            pssh: pssh(),
        }
    }

    /// create → generateRequest → license server → update → close; fails unless the key
    /// became usable.
    pub fn run_once(&self) -> Result<(), BenchError> {
        let session = self.media_keys.create_session(SessionType::Temporary)?;
        license_exchange(&session, &self.pssh)?;
        if session.key_statuses().get(&KEY_ID) != Some(normal_world::KeyStatus::Usable) {
            return Err(BenchError::Unexpected("key not usable after update".into()));
        }
        session.close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check_path, KIB};
    use std::path::PathBuf;

    /// `decrypt` turns known ciphertexts of 1 KiB and 64 KiB into their plaintexts.
    fn decrypts_known_samples(
        what: &str,
        mut decrypt: impl FnMut(&mut [u8]) -> Result<(), BenchError>,
    ) {
        for len in [KIB, 64 * KIB] {
            check_path(len, what, &mut decrypt).unwrap();
        }
    }

    /// More sessions than the secure world has slots (32): `close` must free them.
    fn runs_sessions_repeatedly(sessions: &SessionLoop) {
        for _ in 0..40 {
            sessions.run_once().unwrap();
        }
    }

    #[test]
    fn raw_engine_decrypts() {
        for len in [KIB, 64 * KIB] {
            let raw = RawEngine::new(len).unwrap();
            check_path(len, "raw", |b| raw.decrypt(b)).unwrap();
        }
    }

    #[test]
    fn direct_world_decrypts() {
        let mut w = DirectWorld::new().unwrap();
        decrypts_known_samples("secure world", |b| w.decrypt(b));
    }

    #[test]
    fn protected_direct_world_provisions_and_decrypts() {
        let mut w = DirectWorld::protected().unwrap();
        decrypts_known_samples("protected secure world", |b| w.decrypt(b));
    }

    #[test]
    fn eme_in_process_decrypts() {
        let p = EmePath::in_process().unwrap();
        decrypts_known_samples("eme", |b| p.decrypt(b));
    }

    #[test]
    fn session_loop_runs_repeatedly() {
        runs_sessions_repeatedly(&SessionLoop::in_process().unwrap());
    }

    /// The test kit's `pssh` is the box cdm-core builds: the swap changed no byte the secure
    /// world parses.
    #[test]
    fn pssh_is_the_common_v1_box_for_the_bench_key() {
        let ours = cdm_core::init_data::build_common_pssh_v1(&[KeyId::from(KEY_ID)]).unwrap();
        assert_eq!(pssh(), ours);
    }

    /// The bench's server answers exactly what the test kit's independent server answers
    /// (same JWK Set, byte for byte), with only the bench key.
    #[test]
    fn license_server_answers_like_the_testkit_with_only_the_bench_key() {
        let req = cdm_core::clearkey::license_request_json(
            &[KeyId::from(KEY_ID), KeyId::from([7u8; 16])],
            SessionType::Temporary,
        )
        .unwrap();
        let answer = license_server(&req).unwrap();
        let reference = cdm_testkit::clearkey::answer(&req, &[(&KEY_ID, &KEY)]).unwrap();
        assert_eq!(answer, reference);
        let license = cdm_core::clearkey::parse_license(&answer).unwrap();
        assert_eq!(license.keys.len(), 1);
        assert!(matches!(
            license_server(b"{}"),
            Err(BenchError::ClearKey(_))
        ));
    }

    /// A host served by a thread of this process: `serve_unix_socket` (the code the
    /// `secure-world-host` binary runs) in one-shot mode on a socket in a fresh temporary
    /// directory, each connection backed by an in-process secure world. Answers the connected
    /// client transport, the serving thread and the directory (removed by the caller).
    fn host_thread() -> (
        SocketTransport,
        std::thread::JoinHandle<std::io::Result<()>>,
        PathBuf,
    ) {
        use secure_world_host::{host_world, serve_unix_socket};
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::time::{Duration, Instant};

        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tee-cdm-benches-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        // A leftover from an earlier process with the same pid would make `bind` fail.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("host.sock");
        let server_path = path.clone();
        let server = std::thread::spawn(move || serve_unix_socket(&server_path, true, host_world));
        // The thread binds asynchronously: retry until it listens, it ends, or time is up.
        let deadline = Instant::now() + Duration::from_secs(10);
        let transport = loop {
            match SocketTransport::connect(&path) {
                Ok(t) => break t,
                Err(e) => {
                    assert!(!server.is_finished(), "host thread ended before listening");
                    assert!(Instant::now() < deadline, "host thread never listened: {e}");
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        };
        (transport, server, dir)
    }

    /// The out-of-process path, tested for real: `MediaKeys` talks over a Unix socket to the
    /// host code running in a thread (no binary needed), decrypts known ciphertexts through
    /// `EmePath` and runs whole sessions through `SessionLoop`; each host serves its one
    /// client and ends cleanly when the client hangs up.
    #[test]
    fn eme_over_socket_decrypts_and_runs_sessions() {
        let (transport, server, dir) = host_thread();
        let p = EmePath::with_transport(Box::new(transport)).unwrap();
        decrypts_known_samples("eme over socket", |b| p.decrypt(b));
        drop(p);
        server.join().unwrap().unwrap();
        // One-shot: the host removed its socket once the client connected.
        assert!(!dir.join("host.sock").exists());
        std::fs::remove_dir(&dir).unwrap();

        let (transport, server, dir) = host_thread();
        let s = SessionLoop::with_transport(Box::new(transport)).unwrap();
        runs_sessions_repeatedly(&s);
        drop(s);
        server.join().unwrap().unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }
}
