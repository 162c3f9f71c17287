//! The protected key system's test environment: the servers (`protected_license::server`'s
//! root, provisioning service and license server), a device (one `SecureWorld` on a virtual
//! clock and an emulated output, driven only through ABI messages) and the flows between
//! them. Shared by `tests/protected.rs` and `tests/protected_zeroize.rs`.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use cdm_core::abi::{
    AddInBandKeys, DecryptOutput, DecryptRequest, Done, GetStatusForPolicy, Loaded, Message,
    OutputKind, RenderSecureBuffer, Rendered, Renew, SessionState, SetServerCertificate, Status,
    Subsamples,
};
use cdm_core::{
    EncryptionScheme, HdcpVersion, InitDataType, KeyStatus, KeySystem, MessageType, Robustness,
    SessionType,
};
use cdm_testkit::rng::TestRng;
use cdm_testkit::temp::TempDir;
use hal::platform::{
    Clock, DigestSink, EmulatedOutputProtection, Hdcp, HostPersistence, Platform, SystemRandom,
};
use protected_license::cert::{Hdcp as PlHdcp, Robustness as PlRobustness};
use protected_license::crypto::{ContentKey, EntitlementKey, KemKey, PublicKey, SigningKey};
use protected_license::messages::{
    peek_type, KeyKind, License, MessageType as PlMessage, SessionId,
};
use protected_license::server::{
    rotation_record, KeyGrant, LicenseServer, ProvisioningService, RootAuthority,
    VerifiedLicenseRequest,
};
use protected_license::Policy;
use rand_core::{CryptoRng, RngCore};
use secure_world::{Config, SecureWorld};

use crate::common::{encrypt_cbcs, encrypt_cenc, plaintext, pssh_v1, sha256, Harness};

// ---------------------------------------------------------------------------------------
// Time, keys and content
// ---------------------------------------------------------------------------------------

/// 2026-01-01T00:00:00Z, where every virtual clock starts.
pub const T0: u64 = 1_767_225_600;
pub const YEAR: u64 = 365 * 24 * 3600;

/// A key ID and its key.
pub type Key = ([u8; 16], [u8; 16]);

/// Content key, `SW_SECURE_CRYPTO`, no HDCP.
pub const KID_A: [u8; 16] = [0xa1; 16];
pub const KEY_A: [u8; 16] = *b"\x3a\x9c\x11\xe7\x52\x0b\xd4\x68\xf1\x27\x8e\x45\xbc\x03\x96\x7d";
pub const A: Key = (KID_A, KEY_A);
/// Content key, `HW_SECURE_DECODE`.
pub const KID_B: [u8; 16] = [0xb2; 16];
pub const KEY_B: [u8; 16] = *b"\x68\x2f\x90\xc1\x0e\x5b\xa7\x34\xd9\x71\x1c\xe8\x46\xb3\x2a\x05";
pub const B: Key = (KID_B, KEY_B);
/// Content key, `SW_SECURE_CRYPTO`, minimum HDCP 2.2.
pub const KID_H: [u8; 16] = [0xc3; 16];
pub const KEY_H: [u8; 16] = [0x5c; 16];
pub const H: Key = (KID_H, KEY_H);
/// Entitlement key (`SW_SECURE_CRYPTO`, minimum HDCP 2.2).
pub const KID_E: [u8; 16] = [0xee; 16];
pub const KEY_E: [u8; 16] = [0xe7; 16];
pub const E: Key = (KID_E, KEY_E);
/// Content keys delivered in band under the entitlement key.
pub const KID_R1: [u8; 16] = [0x31; 16];
pub const KEY_R1: [u8; 16] = [0x71; 16];
pub const R1: Key = (KID_R1, KEY_R1);
pub const KID_R2: [u8; 16] = [0x32; 16];
pub const KEY_R2: [u8; 16] = [0x72; 16];
pub const R2: Key = (KID_R2, KEY_R2);

pub const SW: Robustness = Robustness::SwSecureCrypto;
pub const HW: Robustness = Robustness::HwSecureDecode;
pub const TEMP: SessionType = SessionType::Temporary;
pub const PERSIST: SessionType = SessionType::PersistentLicense;

pub fn grant(kind: KeyKind, (kid, key): Key, rob: PlRobustness, hdcp: PlHdcp) -> KeyGrant {
    KeyGrant {
        kind,
        key_id: kid,
        robustness: rob,
        min_hdcp: hdcp,
        key: ContentKey::new(key),
    }
}

pub fn content(key: Key) -> KeyGrant {
    grant(
        KeyKind::Content,
        key,
        PlRobustness::SW_SECURE_CRYPTO,
        PlHdcp::NONE,
    )
}

pub fn hw_content(key: Key) -> KeyGrant {
    grant(
        KeyKind::Content,
        key,
        PlRobustness::HW_SECURE_DECODE,
        PlHdcp::NONE,
    )
}

pub fn hdcp_content(key: Key) -> KeyGrant {
    grant(
        KeyKind::Content,
        key,
        PlRobustness::SW_SECURE_CRYPTO,
        PlHdcp::V2_2,
    )
}

pub fn entitlement(key: Key) -> KeyGrant {
    grant(
        KeyKind::Entitlement,
        key,
        PlRobustness::SW_SECURE_CRYPTO,
        PlHdcp::V2_2,
    )
}

/// An entitlement key whose in-band keys are `HW_SECURE_DECODE` (no HDCP minimum).
pub fn hw_entitlement(key: Key) -> KeyGrant {
    grant(
        KeyKind::Entitlement,
        key,
        PlRobustness::HW_SECURE_DECODE,
        PlHdcp::NONE,
    )
}

/// The key IDs of the content keys among `grants` (what a license request asks for).
pub fn content_kids(grants: &[KeyGrant]) -> Vec<[u8; 16]> {
    grants
        .iter()
        .filter(|g| g.kind == KeyKind::Content)
        .map(|g| g.key_id)
        .collect()
}

/// No limits, no renewal, not persistable.
pub fn unlimited() -> Policy {
    Policy::default()
}

pub fn persistable() -> Policy {
    unlimited().can_persist(true)
}

/// One-line policies, field by field: `unlimited().license_duration(100).renewal_interval(60)`.
pub trait PolicyExt {
    fn license_duration(self, secs: u32) -> Self;
    fn playback_duration(self, secs: u32) -> Self;
    fn renewal_interval(self, secs: u32) -> Self;
    fn can_persist(self, can: bool) -> Self;
}

impl PolicyExt for Policy {
    fn license_duration(mut self, secs: u32) -> Self {
        self.license_duration = secs;
        self
    }
    fn playback_duration(mut self, secs: u32) -> Self {
        self.playback_duration = secs;
        self
    }
    fn renewal_interval(mut self, secs: u32) -> Self {
        self.renewal_interval = secs;
        self
    }
    fn can_persist(mut self, can: bool) -> Self {
        self.can_persist = can;
        self
    }
}

// ---------------------------------------------------------------------------------------
// Test doubles that are real: a clock the test sets, a seeded RNG for the servers
// ---------------------------------------------------------------------------------------

/// The secure world's trusted time, set by the test (ms since the epoch, shared).
#[derive(Clone, Debug)]
pub struct VirtualClock(pub Arc<AtomicI64>);

impl Clock for VirtualClock {
    fn now_ms(&self) -> Option<i64> {
        Some(self.0.load(Ordering::SeqCst))
    }
}

/// The servers' randomness: seeded, so a failing run can be replayed (test only).
pub struct SeededRng(pub TestRng);

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl CryptoRng for SeededRng {}

// ---------------------------------------------------------------------------------------
// The servers
// ---------------------------------------------------------------------------------------

/// The root, the provisioning service and a license server, as `protected_license::server`
/// builds them.
pub struct Pki {
    pub rng: SeededRng,
    pub root: RootAuthority,
    pub provisioning: ProvisioningService,
    pub server: LicenseServer,
    /// The license server's signing key (to re-sign tampered licenses: a server that signs
    /// what it should not).
    pub server_signing: SigningKey,
}

/// A license the server issued, and what the server records about it.
pub struct Issued {
    pub license: Vec<u8>,
    pub session_id: SessionId,
    /// The signing key of the device the license was issued to.
    pub device_key: PublicKey,
    pub request: VerifiedLicenseRequest,
}

impl Pki {
    pub fn new(seed: u64) -> Self {
        let mut rng = SeededRng(TestRng::new(seed));
        let root = RootAuthority::generate(&mut rng);
        let prov_key = SigningKey::generate(&mut rng);
        let prov_cert = root
            .certify_provisioning([1; 16], &prov_key.public_key(), T0 - YEAR, T0 + 10 * YEAR)
            .unwrap();
        let provisioning = ProvisioningService::new(prov_key, prov_cert, 5 * YEAR);
        let (server, server_signing) = Self::make_server(&mut rng, &root, T0 - YEAR, T0 + 2 * YEAR);
        Pki {
            rng,
            root,
            provisioning,
            server,
            server_signing,
        }
    }

    /// A license server certified by `root` for `[not_before, not_after]`.
    pub fn make_server(
        rng: &mut SeededRng,
        root: &RootAuthority,
        not_before: u64,
        not_after: u64,
    ) -> (LicenseServer, SigningKey) {
        let signing = SigningKey::generate(rng);
        let copy = SigningKey::from_bytes(&signing.to_bytes()).unwrap();
        let kem = KemKey::generate(rng).unwrap();
        let cert = root
            .certify_license_server(
                [2; 16],
                &signing.public_key(),
                &kem.public_key(),
                not_before,
                not_after,
            )
            .unwrap();
        (
            LicenseServer::new(signing, kem, cert, root.public_key()),
            copy,
        )
    }

    /// Another license server of the same root (a different validity).
    pub fn other_server(&mut self, not_before: u64, not_after: u64) -> LicenseServer {
        Self::make_server(&mut self.rng, &self.root, not_before, not_after).0
    }

    pub fn root_key(&self) -> [u8; 65] {
        *self.root.public_key().as_bytes()
    }

    pub fn config(&self) -> Config {
        Config {
            protected_root: Some(self.root_key()),
            ..Config::default()
        }
    }

    pub fn provision(&self, request: &[u8], now: u64) -> Vec<u8> {
        assert_eq!(peek_type(request).unwrap(), PlMessage::ProvisioningRequest);
        self.provisioning.provision(request, now).unwrap()
    }

    /// Verifies `request` and issues a license for it from `server` (default: the PKI's).
    pub fn issue_from(
        &mut self,
        server: Option<&LicenseServer>,
        request: &[u8],
        now: u64,
        policy: Policy,
        grants: &[KeyGrant],
    ) -> Issued {
        let server = server.unwrap_or(&self.server);
        let verified = server.verify_license_request(request, now).unwrap();
        let mut session_id = [0u8; 16];
        self.rng.fill_bytes(&mut session_id);
        let license = server
            .issue_license(&mut self.rng, &verified, session_id, now, policy, grants)
            .unwrap();
        assert_eq!(peek_type(&license).unwrap(), PlMessage::License);
        Issued {
            license,
            session_id,
            device_key: verified.device.device.signing_key,
            request: verified,
        }
    }

    pub fn issue(
        &mut self,
        request: &[u8],
        now: u64,
        policy: Policy,
        grants: &[KeyGrant],
    ) -> Issued {
        self.issue_from(None, request, now, policy, grants)
    }

    /// Answers a renewal request of the session `issued` names with `policy`.
    pub fn renew(&self, issued: &Issued, message: &[u8], now: u64, policy: Policy) -> Vec<u8> {
        let req = self
            .server
            .verify_session_request(message, PlMessage::RenewalRequest, &issued.device_key)
            .unwrap();
        assert_eq!(req.session_id, issued.session_id);
        self.server.renewal_response(&req, now, policy).unwrap()
    }

    /// Acknowledges a release request of the session `issued` names.
    pub fn release(&self, issued: &Issued, message: &[u8]) -> Vec<u8> {
        let req = self
            .server
            .verify_session_request(message, PlMessage::ReleaseRequest, &issued.device_key)
            .unwrap();
        assert_eq!(req.session_id, issued.session_id);
        self.server.release_ack(&req).unwrap()
    }

    /// `license` with its signature recomputed by the license server's key after `edit`.
    pub fn resign(&self, license: &[u8], edit: impl FnOnce(&mut License)) -> Vec<u8> {
        let mut parsed = License::parse(license).unwrap();
        edit(&mut parsed);
        parsed.encode(&self.server_signing).unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// The device: one secure world, driven only through ABI messages
// ---------------------------------------------------------------------------------------

pub type World = SecureWorld<SystemRandom, VirtualClock, DigestSink>;

pub struct Dev {
    /// The secure world, driven through ABI messages.
    pub abi: Harness<VirtualClock>,
    pub clock: Arc<AtomicI64>,
    pub output: EmulatedOutputProtection,
}

pub fn new_clock() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(T0 as i64 * 1000))
}

/// `setup(seed)`: the servers of `Pki::new(seed)` and a device without storage.
pub fn setup(seed: u64) -> (Pki, Dev) {
    let pki = Pki::new(seed);
    let dev = Dev::new(&pki);
    (pki, dev)
}

/// `setup_stored(seed, label)`: the servers of `Pki::new(seed)` and a device keeping its
/// identity and persistent licenses in a new temporary directory named after `label`.
pub fn setup_stored(seed: u64, label: &str) -> (Pki, TempDir, Dev) {
    let pki = Pki::new(seed);
    let dir = TempDir::new(label);
    let dev = Dev::with_storage(&pki, dir.path(), new_clock());
    (pki, dir, dev)
}

/// The `expiration_ms` of a license that ends at `secs` (seconds since the epoch).
pub fn expiring_at(secs: u64) -> Option<i64> {
    Some(secs as i64 * 1000)
}

impl Dev {
    /// A device without storage, its output at HDCP 2.3.
    pub fn new(pki: &Pki) -> Self {
        Self::with_config(pki.config())
    }

    /// A device without storage configured by `config`.
    pub fn with_config(config: Config) -> Self {
        Self::build(new_clock(), |platform| {
            SecureWorld::new(platform, config).unwrap()
        })
    }

    /// A device keeping its identity and persistent licenses in `dir`, on `clock`.
    pub fn with_storage(pki: &Pki, dir: &Path, clock: Arc<AtomicI64>) -> Self {
        let p = HostPersistence::open(dir).unwrap();
        Self::build(clock, |platform| {
            SecureWorld::with_storage(platform, pki.config(), p.storage, p.counter, &p.root_key)
                .unwrap()
        })
    }

    /// This device restarted: a new secure world on its storage in `dir` and its clock.
    pub fn restart(self, pki: &Pki, dir: &Path) -> Self {
        let clock = Arc::clone(&self.clock);
        drop(self);
        Self::with_storage(pki, dir, clock)
    }

    /// A device on `clock` whose output is at HDCP 2.3, its secure world made by `make`.
    fn build(
        clock: Arc<AtomicI64>,
        make: impl FnOnce(Platform<SystemRandom, VirtualClock, DigestSink>) -> World,
    ) -> Self {
        let output = EmulatedOutputProtection::new(Hdcp::V2_3);
        let platform = Platform::new(
            SystemRandom::new(),
            VirtualClock(clock.clone()),
            DigestSink::new(),
            hal::aes::Engine::detect(),
        )
        .with_output_protection(output.clone());
        Dev {
            abi: Harness::driving(make(platform)),
            clock,
            output,
        }
    }

    /// The device's time in seconds.
    pub fn now(&self) -> u64 {
        (self.clock.load(Ordering::SeqCst) / 1000) as u64
    }

    pub fn advance(&self, secs: u64) {
        self.clock.fetch_add(secs as i64 * 1000, Ordering::SeqCst);
    }

    pub fn set_hdcp(&self, level: Hdcp) {
        self.output.set(level);
    }

    pub fn try_open(&mut self, ty: SessionType, rob: Robustness) -> Result<(u64, String), Status> {
        self.abi.try_open_in(KeySystem::Protected, ty, rob)
    }

    pub fn try_open_in(
        &mut self,
        key_system: KeySystem,
        ty: SessionType,
        rob: Robustness,
    ) -> Result<(u64, String), Status> {
        self.abi.try_open_in(key_system, ty, rob)
    }

    pub fn open(&mut self, ty: SessionType, rob: Robustness) -> (u64, String) {
        self.try_open(ty, rob).unwrap()
    }

    pub fn generate(&mut self, s: u64, ty: InitDataType, data: &[u8]) -> Result<Message, Status> {
        self.abi.generate_message(s, ty, data)
    }

    pub fn update(&mut self, s: u64, bytes: &[u8]) -> Result<SessionState, Status> {
        self.abi.update(s, bytes)
    }

    pub fn state(&mut self, s: u64) -> Result<SessionState, Status> {
        self.abi.state(s)
    }

    pub fn statuses(&mut self, s: u64) -> Vec<([u8; 16], KeyStatus)> {
        statuses_of(&self.state(s).unwrap())
    }

    /// The `expiration_ms` of session `s`.
    pub fn expiration(&mut self, s: u64) -> Option<i64> {
        self.state(s).unwrap().expiration_ms
    }

    pub fn renew(&mut self, s: u64) -> Result<Message, Status> {
        self.abi.op(s, Renew)
    }

    pub fn remove(&mut self, s: u64) -> Result<Message, Status> {
        self.abi.remove(s)
    }

    pub fn add_in_band(&mut self, s: u64, record: &[u8]) -> Result<SessionState, Status> {
        self.abi.op(s, AddInBandKeys { record })
    }

    pub fn set_server_certificate(&mut self, certificate: &[u8]) -> Result<(), Status> {
        self.abi
            .op(0, SetServerCertificate { certificate })
            .map(|Done| ())
    }

    pub fn status_for_policy(&mut self, min_hdcp: Option<HdcpVersion>) -> KeyStatus {
        let policy = GetStatusForPolicy { min_hdcp };
        self.abi.op(0, policy).unwrap().status
    }

    pub fn load(
        &mut self,
        ks: KeySystem,
        rob: Robustness,
        id: &str,
    ) -> Result<(u64, Loaded), Status> {
        self.abi.load_in(ks, rob, id)
    }

    pub fn close(&mut self, s: u64) {
        self.abi.close(s).unwrap();
    }

    /// Decrypts a `cenc` sample (8-byte IV, subsamples) encrypted by the reference
    /// encryptor with `key`, in place. On success the exact clear sample must come back; on
    /// failure the sample must be untouched.
    pub fn decrypt_cenc(&mut self, s: u64, (kid, key): Key) -> Result<(), Status> {
        let map = [(5u32, 37u32), (11, 300), (0, 3)];
        let iv = [0xa0, 1, 2, 3, 4, 5, 6, 7];
        let req = decrypt_request(&kid, EncryptionScheme::Cenc, &iv, &map, OutputKind::InPlace);
        self.decrypt_in_place(s, req, |sample| encrypt_cenc(&key, &iv, sample, &map))
    }

    /// Decrypts a `cbcs` 1:9 sample (16-byte constant IV, subsamples, partial blocks) in
    /// place, like [`Dev::decrypt_cenc`].
    pub fn decrypt_cbcs(&mut self, s: u64, (kid, key): Key) -> Result<(), Status> {
        let map = [(16u32, 16 * 25 + 5), (3, 200)];
        let iv = [0x5a; 16];
        let req = decrypt_request(&kid, EncryptionScheme::Cbcs, &iv, &map, OutputKind::InPlace);
        self.decrypt_in_place(s, req, |sample| {
            encrypt_cbcs(&key, &iv, sample, &map, (1, 9));
        })
    }

    /// Decrypts a `cenc` sample into a secure buffer and renders it: the sink's digest must
    /// be SHA-256 of the clear sample, and the shared buffer must still hold the encrypted
    /// sample.
    pub fn decrypt_secure(&mut self, s: u64, (kid, key): Key) -> Result<(), Status> {
        let iv = [7u8; 8];
        // No subsample map: the whole 4000-byte sample is protected.
        let req = DecryptRequest {
            sample_len: 4000,
            ..decrypt_request(
                &kid,
                EncryptionScheme::Cenc,
                &iv,
                &[],
                OutputKind::SecureBuffer,
            )
        };
        let (r, sample) = self.send_sample(s, req, |sample| encrypt_cenc(&key, &iv, sample, &[]));
        assert_eq!(
            sample.buffer, sample.encrypted,
            "secure-buffer output touched the shared buffer"
        );
        let DecryptOutput::SecureBuffer(buffer) = r? else {
            panic!("not a secure buffer")
        };
        let Rendered { len, digest } = self.abi.op(s, RenderSecureBuffer { buffer }).unwrap();
        assert_eq!(len, 4000);
        assert_eq!(
            digest,
            sha256(&sample.clear),
            "the sink did not get the clear sample"
        );
        Ok(())
    }

    /// Sends `req` with `req.sample_len` bytes of clear sample protected by `encrypt` (the
    /// reference encryptor) in the shared buffer.
    fn send_sample(
        &mut self,
        s: u64,
        req: DecryptRequest<'_>,
        encrypt: impl FnOnce(&mut [u8]),
    ) -> (Result<DecryptOutput, Status>, Sample) {
        let clear = plaintext(req.sample_len as usize);
        let mut buffer = clear.clone();
        encrypt(&mut buffer);
        assert_ne!(
            buffer, clear,
            "the reference encryptor left the sample clear"
        );
        let encrypted = buffer.clone();
        let r = self.abi.send(s, req, &mut buffer).1;
        let sample = Sample {
            clear,
            encrypted,
            buffer,
        };
        (r, sample)
    }

    /// [`Dev::send_sample`] for in-place output: on success the buffer must hold the exact
    /// clear sample; on failure it must be untouched.
    fn decrypt_in_place(
        &mut self,
        s: u64,
        req: DecryptRequest<'_>,
        encrypt: impl FnOnce(&mut [u8]),
    ) -> Result<(), Status> {
        let scheme = req.scheme;
        let (r, sample) = self.send_sample(s, req, encrypt);
        match r {
            Ok(r) => {
                assert_eq!(r, DecryptOutput::InPlace);
                assert_eq!(
                    sample.buffer, sample.clear,
                    "{scheme:?} decrypt gave the wrong clear sample"
                );
                Ok(())
            }
            Err(e) => {
                assert_eq!(
                    sample.buffer, sample.encrypted,
                    "a refused decrypt touched the sample"
                );
                Err(e)
            }
        }
    }

    /// `op` on session `s` is refused with `status`, and the state of `s` is what it was.
    pub fn refuses(
        &mut self,
        s: u64,
        status: Status,
        op: impl FnOnce(&mut Self) -> Result<SessionState, Status>,
    ) {
        let before = self.state(s).unwrap();
        assert_eq!(op(self), Err(status));
        assert_eq!(self.state(s).unwrap(), before);
    }

    /// `Update(bad)` on session `s` is refused with `status` and `s` did not change.
    pub fn refuse_update(&mut self, s: u64, bad: &[u8], status: Status) {
        self.refuses(s, status, |dev| dev.update(s, bad));
    }

    /// `AddInBandKeys(record)` on session `s` is refused with `status` and `s` did not change.
    pub fn refuse_in_band(&mut self, s: u64, record: &[u8], status: Status) {
        self.refuses(s, status, |dev| dev.add_in_band(s, record));
    }
}

/// The shared buffer of a decrypt: the clear sample, the encrypted sample sent, and what the
/// buffer held afterwards.
struct Sample {
    clear: Vec<u8>,
    encrypted: Vec<u8>,
    buffer: Vec<u8>,
}

/// A `Decrypt` by `kid` of a sample as long as its subsample `map` (pattern 1:9 for `cbcs`,
/// none for `cenc`).
fn decrypt_request<'a>(
    kid: &'a [u8; 16],
    scheme: EncryptionScheme,
    iv: &'a [u8],
    map: &'a [(u32, u32)],
    output: OutputKind,
) -> DecryptRequest<'a> {
    let pattern = if scheme == EncryptionScheme::Cbcs {
        (1, 9)
    } else {
        (0, 0)
    };
    DecryptRequest {
        key_id: kid,
        scheme,
        pattern,
        output,
        iv,
        sample_len: map.iter().map(|(c, p)| c + p).sum(),
        subsamples: Subsamples::Pairs(map),
    }
}

pub fn statuses_of(st: &SessionState) -> Vec<([u8; 16], KeyStatus)> {
    st.key_statuses
        .iter()
        .map(|(k, v)| (k.as_bytes().try_into().unwrap(), *v))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Flows
// ---------------------------------------------------------------------------------------

impl Dev {
    /// `GenerateRequest` with cenc init data listing `kids`; provisions the device first if
    /// it asks to (and checks that it asks only once). Answers the license request.
    pub fn license_request(&mut self, pki: &Pki, s: u64, kids: &[[u8; 16]]) -> Vec<u8> {
        let init = pssh_v1(kids);
        let m = self.generate(s, InitDataType::Cenc, &init).unwrap();
        let m = if m.message_type == MessageType::IndividualizationRequest {
            let resp = pki.provision(&m.message, self.now());
            let st = self.update(s, &resp).unwrap();
            assert!(st.key_statuses.is_empty());
            assert_eq!(st.closed, None);
            self.generate(s, InitDataType::Cenc, &init).unwrap()
        } else {
            m
        };
        assert_eq!(m.message_type, MessageType::LicenseRequest);
        assert!(m.state.key_statuses.is_empty());
        m.message
    }

    /// A new session of `ty` (`SW_SECURE_CRYPTO`) that asked for a license for `kids`: its
    /// handle, its session ID and the license request.
    pub fn awaiting_license(
        &mut self,
        pki: &Pki,
        ty: SessionType,
        kids: &[[u8; 16]],
    ) -> (u64, String, Vec<u8>) {
        let (s, id) = self.open(ty, SW);
        let request = self.license_request(pki, s, kids);
        (s, id, request)
    }

    /// A session of `ty` and `rob` holding a license of `grants` under `policy`.
    pub fn licensed(
        &mut self,
        pki: &mut Pki,
        ty: SessionType,
        rob: Robustness,
        policy: Policy,
        grants: &[KeyGrant],
    ) -> (u64, String, Issued) {
        let (s, id) = self.open(ty, rob);
        let request = self.license_request(pki, s, &content_kids(grants));
        let issued = pki.issue(&request, self.now(), policy, grants);
        self.update(s, &issued.license).unwrap();
        (s, id, issued)
    }

    /// A temporary session whose `KID_A` key decrypts (the device provisioned if it was
    /// not): the witness that a rejection elsewhere broke nothing.
    pub fn witness(&mut self, pki: &mut Pki) -> u64 {
        let (s, _, _) = self.licensed(pki, TEMP, SW, unlimited(), &[content(A)]);
        self.decrypt_cenc(s, A).unwrap();
        s
    }

    /// Update(`bad`) on session `s` is refused with `status`, and neither `s` nor the
    /// witness session `w` changed: same state before and after, and `w` still decrypts.
    pub fn refused_changes_nothing(&mut self, s: u64, w: u64, bad: &[u8], status: Status) {
        let before_w = self.state(w).unwrap();
        self.refuse_update(s, bad, status);
        assert_eq!(self.state(w).unwrap(), before_w);
        self.decrypt_cenc(w, A).unwrap();
    }

    /// A renewal request of session `s` answered by `pki` under `policy` and accepted: the
    /// session's state after it.
    pub fn renewed(&mut self, pki: &Pki, s: u64, issued: &Issued, policy: Policy) -> SessionState {
        let m = self.renew(s).unwrap();
        assert_eq!(peek_type(&m.message).unwrap(), PlMessage::RenewalRequest);
        let response = pki.renew(issued, &m.message, self.now(), policy);
        self.update(s, &response).unwrap()
    }
}

pub fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 0x01;
    v
}

/// Offset of `needle` in `hay` (which must hold it exactly once).
pub fn find(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1);
    hits[0]
}

/// A rotation record: `keys` wrapped under the entitlement key `(ekid, ekey)`.
pub fn rotation((ekid, ekey): Key, keys: &[Key]) -> Vec<u8> {
    let keys: Vec<_> = keys
        .iter()
        .map(|(k, v)| (*k, ContentKey::new(*v)))
        .collect();
    rotation_record(&ekid, &EntitlementKey::new(ekey), &keys).unwrap()
}
