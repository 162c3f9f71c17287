//! The secure-world side of the C ABI, driven as a TEE integrator drives it: platform services
//! as `extern "C"` callbacks (here written in Rust, over memory), requests through
//! `tee_cdm_sw_process`. The normal world's own EME client (`normal-world`) talks to it
//! through a transport that calls the C entry point, so whole EME flows run through the C ABI:
//! Clear Key decryption checked against the test kit's reference encryptor, persistent
//! licenses across a "reboot" through the storage callbacks, rollback detection through the
//! counter callbacks, `HW_SECURE_DECODE` output through the render callback. Then the error
//! paths of the boundary.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use cdm_core::abi::{parse_response, GetCapabilities, Operation, Status};
use cdm_testkit::{cenc, clearkey};
use normal_world::transport::{Transport, TransportError};
use normal_world::{
    request_media_key_system_access_with, DecryptedSample, EncryptionScheme, KeyStatus,
    KeySystemOptions, MediaKeySessionEvent, MediaKeySystemConfiguration,
    MediaKeySystemMediaCapability, MediaKeys, OutputWish, Robustness, SampleDescription,
    SessionType,
};
use tee_cdm::*;

mod common;
use common::{last_error, ok};

const KID: [u8; 16] = [0x31; 16];
const KEY: [u8; 16] = [0x42; 16];

/// What a device supplies from its TEE; here memory, shared by the worlds of one test.
#[derive(Default)]
struct Device {
    rng: AtomicU64,
    store: Mutex<BTreeMap<String, Vec<u8>>>,
    counter: Mutex<u64>,
    root_key_fails: AtomicBool,
    /// Frames the render callback received.
    rendered: Mutex<Vec<Vec<u8>>>,
}

impl Device {
    fn ctx(&self) -> *mut c_void {
        std::ptr::from_ref(self).cast_mut().cast()
    }
}

/// # Safety
///
/// `ctx` must come from [`Device::ctx`] of a live device.
unsafe fn device<'a>(ctx: *mut c_void) -> &'a Device {
    // SAFETY: the caller's contract; only shared access is made through it.
    unsafe { &*ctx.cast::<Device>() }
}

/// # Safety
///
/// `name` must be a NUL-terminated string.
unsafe fn name(name: *const c_char) -> String {
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(name) }
        .to_str()
        .unwrap()
        .to_string()
}

unsafe extern "C" fn dev_random(ctx: *mut c_void, out: *mut u8, len: usize) -> i32 {
    // SAFETY: the library passes its device's ctx and `len` writable bytes at `out`.
    let (dev, out) = unsafe { (device(ctx), std::slice::from_raw_parts_mut(out, len)) };
    for b in out {
        // A counter stream is enough for unique handles in a test (never for a device).
        let x = dev.rng.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        *b = (x.rotate_left(17) ^ x >> 29).to_le_bytes()[0];
    }
    0
}

unsafe extern "C" fn dev_now_ms(_ctx: *mut c_void, now_ms: *mut i64) -> i32 {
    // SAFETY: the library passes a writable i64.
    unsafe { now_ms.write(1_767_225_600_000) };
    0
}

unsafe extern "C" fn dev_render(
    ctx: *mut c_void,
    frame: *const u8,
    len: usize,
    digest: *mut u8,
) -> i32 {
    // SAFETY: the library passes a readable frame of `len` bytes and 32 writable digest bytes.
    let (dev, frame, digest) = unsafe {
        (
            device(ctx),
            std::slice::from_raw_parts(frame, len),
            std::slice::from_raw_parts_mut(digest, TEE_CDM_SW_DIGEST_LEN),
        )
    };
    // The secure video path's own digest; a recognisable stand-in for SHA-256 here.
    digest.fill(0xd1);
    digest[..8].copy_from_slice(&(len as u64).to_le_bytes());
    dev.rendered.lock().unwrap().push(frame.to_vec());
    TeeCdmSwResult::Ok as i32
}

unsafe extern "C" fn dev_get(
    ctx: *mut c_void,
    blob_name: *const c_char,
    sink: *mut TeeCdmSwSink,
    append: TeeCdmSwAppendFn,
) -> i32 {
    // SAFETY: the library's ctx and a NUL-terminated name.
    let (dev, n) = unsafe { (device(ctx), name(blob_name)) };
    let store = dev.store.lock().unwrap();
    let Some(blob) = store.get(&n) else {
        return TeeCdmSwResult::NotFound as i32;
    };
    // In two chunks, as a store reading blocks would.
    let (a, b) = blob.split_at(blob.len() / 2);
    for chunk in [a, b] {
        // SAFETY: `sink` is the live sink of this call; `chunk` is readable.
        let r = unsafe { append(sink, chunk.as_ptr(), chunk.len()) };
        if r != TeeCdmSwResult::Ok as i32 {
            return r;
        }
    }
    TeeCdmSwResult::Ok as i32
}

unsafe extern "C" fn dev_put(
    ctx: *mut c_void,
    blob_name: *const c_char,
    blob: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: the library's ctx, a NUL-terminated name and `len` readable bytes.
    let (dev, n, blob) = unsafe {
        (
            device(ctx),
            name(blob_name),
            std::slice::from_raw_parts(blob, len),
        )
    };
    dev.store.lock().unwrap().insert(n, blob.to_vec());
    TeeCdmSwResult::Ok as i32
}

unsafe extern "C" fn dev_delete(ctx: *mut c_void, blob_name: *const c_char) -> i32 {
    // SAFETY: the library's ctx and a NUL-terminated name.
    let (dev, n) = unsafe { (device(ctx), name(blob_name)) };
    match dev.store.lock().unwrap().remove(&n) {
        Some(_) => TeeCdmSwResult::Ok as i32,
        None => TeeCdmSwResult::NotFound as i32,
    }
}

unsafe extern "C" fn dev_list(
    ctx: *mut c_void,
    sink: *mut TeeCdmSwSink,
    append: TeeCdmSwAppendFn,
) -> i32 {
    // SAFETY: the library's ctx.
    let dev = unsafe { device(ctx) };
    // Reverse order and a foreign entry: the library sorts and skips.
    let mut names: Vec<String> = dev.store.lock().unwrap().keys().rev().cloned().collect();
    names.push("NOT A BLOB NAME".into());
    for n in names {
        // SAFETY: `sink` is the live sink of this call; `n` is readable.
        let r = unsafe { append(sink, n.as_ptr(), n.len()) };
        if r != TeeCdmSwResult::Ok as i32 && r != TeeCdmSwResult::InvalidName as i32 {
            return r;
        }
    }
    TeeCdmSwResult::Ok as i32
}

unsafe extern "C" fn dev_counter_read(ctx: *mut c_void, value: *mut u64) -> i32 {
    // SAFETY: the library's ctx and a writable u64.
    unsafe { value.write(*device(ctx).counter.lock().unwrap()) };
    TeeCdmSwResult::Ok as i32
}

unsafe extern "C" fn dev_counter_increment(ctx: *mut c_void, value: *mut u64) -> i32 {
    // SAFETY: the library's ctx.
    let mut c = unsafe { device(ctx) }.counter.lock().unwrap();
    *c += 1;
    // SAFETY: a writable u64.
    unsafe { value.write(*c) };
    TeeCdmSwResult::Ok as i32
}

unsafe extern "C" fn dev_root_key(ctx: *mut c_void, key: *mut u8) -> i32 {
    // SAFETY: the library's ctx.
    if unsafe { device(ctx) }
        .root_key_fails
        .load(Ordering::Relaxed)
    {
        return -1;
    }
    // SAFETY: 32 writable bytes.
    unsafe { std::slice::from_raw_parts_mut(key, TEE_CDM_SW_ROOT_KEY_LEN) }.fill(0x5a);
    0
}

fn platform(dev: &Device) -> TeeCdmSwPlatform {
    TeeCdmSwPlatform {
        ctx: dev.ctx(),
        random: Some(dev_random),
        now_ms: Some(dev_now_ms),
        render: Some(dev_render),
    }
}

fn persistence(dev: &Device) -> TeeCdmSwPersistence {
    TeeCdmSwPersistence {
        ctx: dev.ctx(),
        storage_get: Some(dev_get),
        storage_put: Some(dev_put),
        storage_delete: Some(dev_delete),
        storage_list: Some(dev_list),
        counter_read: Some(dev_counter_read),
        counter_increment: Some(dev_counter_increment),
        root_key: Some(dev_root_key),
    }
}

fn create(
    dev: &Device,
    config: Option<&TeeCdmSwConfig>,
    persistent: bool,
) -> Result<*mut TeeCdmSecureWorld, TeeCdmStatus> {
    let p = platform(dev);
    let s = persistence(dev);
    let mut world = null_mut();
    // SAFETY: live structs and out-parameter.
    let st = unsafe {
        tee_cdm_sw_create(
            &p,
            config.map_or(null(), std::ptr::from_ref),
            if persistent { &s } else { null() },
            &mut world,
        )
    };
    if st == TeeCdmStatus::Ok {
        Ok(world)
    } else {
        assert!(world.is_null());
        Err(st)
    }
}

/// The normal world's transport to a secure world behind the C entry point.
struct FfiTransport(usize);

impl Transport for FfiTransport {
    fn call(
        &mut self,
        request: &[u8],
        sample: &mut [u8],
        response: &mut Vec<u8>,
    ) -> Result<(), TransportError> {
        response.clear();
        response.resize(TEE_CDM_SW_MAX_RESPONSE_LEN, 0);
        let mut len = 0;
        // SAFETY: live, non-overlapping buffers of the lengths given.
        let st = unsafe {
            tee_cdm_sw_process(
                std::ptr::without_provenance_mut(self.0),
                request.as_ptr(),
                request.len(),
                sample.as_mut_ptr(),
                sample.len(),
                response.as_mut_ptr(),
                response.len(),
                &mut len,
            )
        };
        if st != TeeCdmStatus::Ok {
            return Err(TransportError::Disconnected(format!(
                "{st:?}: {}",
                last_error()
            )));
        }
        response.truncate(len);
        Ok(())
    }
}

fn media_keys(world: *mut TeeCdmSecureWorld, persistent: bool) -> MediaKeys {
    let config = MediaKeySystemConfiguration {
        init_data_types: vec!["cenc".into()],
        video_capabilities: vec![MediaKeySystemMediaCapability::new(
            "video/mp4; codecs=\"avc1.64001f\"",
        )],
        session_types: persistent.then(|| vec!["persistent-license".into()]),
        ..Default::default()
    };
    // The storage directory only unlocks negotiation here: the FFI world has its own storage.
    let options = KeySystemOptions {
        storage_dir: persistent.then(|| "unused".into()),
        ..KeySystemOptions::default()
    };
    request_media_key_system_access_with("org.w3.clearkey", &[config], &options)
        .unwrap()
        .create_media_keys_with_transport(Box::new(FfiTransport(world.addr())))
        .unwrap()
}

fn licensed_session(
    keys: &MediaKeys,
    ty: SessionType,
    robustness: Robustness,
) -> normal_world::MediaKeySession {
    let s = keys.create_session_with_robustness(ty, robustness).unwrap();
    s.generate_request("cenc", &cenc::pssh_v1(&[&KID])).unwrap();
    let Some(MediaKeySessionEvent::Message { message, .. }) = s.next_event() else {
        panic!("a license request");
    };
    s.update(&clearkey::answer(&message, &[(&KID, &KEY)]).unwrap())
        .unwrap();
    assert_eq!(s.key_statuses().get(&KID), Some(KeyStatus::Usable));
    s
}

fn cbcs_sample(len: usize) -> (Vec<u8>, Vec<u8>) {
    let clear = cenc::plaintext(len);
    let mut sample = clear.clone();
    cenc::encrypt_cbcs(
        &KEY,
        &[9; 16],
        &mut sample,
        &[(16, u32::try_from(len - 16).unwrap())],
        (1, 9),
    );
    (clear, sample)
}

fn cbcs_desc<'a>(subsamples: &'a [(u32, u32)], output: OutputWish) -> SampleDescription<'a> {
    SampleDescription {
        key_id: &KID,
        scheme: EncryptionScheme::Cbcs,
        iv: &[9; 16],
        pattern: (1, 9),
        subsamples,
        output,
    }
}

#[test]
fn eme_flow_through_the_c_entry_point_decrypts_reference_samples() {
    let dev = Device::default();
    let world = create(&dev, None, false).unwrap();
    let keys = media_keys(world, false);
    assert_eq!(keys.capabilities().max_sessions, 32);
    let s = licensed_session(&keys, SessionType::Temporary, Robustness::Empty);
    let (clear, mut sample) = cbcs_sample(5000);
    let subs = [(16, 4984)];
    assert_eq!(
        keys.decrypt(&mut sample, &cbcs_desc(&subs, OutputWish::Auto))
            .unwrap(),
        DecryptedSample::InPlace
    );
    assert_eq!(sample, clear);
    s.close().unwrap();
    drop((s, keys));
    ok(tee_cdm_sw_destroy(world));
}

#[test]
fn hw_secure_decode_output_goes_to_the_render_callback_only() {
    let dev = Device::default();
    let world = create(&dev, None, false).unwrap();
    let keys = media_keys(world, false);
    let s = licensed_session(&keys, SessionType::Temporary, Robustness::HwSecureDecode);
    let (clear, mut sample) = cbcs_sample(1000);
    let encrypted = sample.clone();
    let subs = [(16, 984)];
    let DecryptedSample::SecureBuffer(handle) = keys
        .decrypt(&mut sample, &cbcs_desc(&subs, OutputWish::Auto))
        .unwrap()
    else {
        panic!("HW_SECURE_DECODE decrypts into a secure buffer");
    };
    assert_eq!(
        sample, encrypted,
        "no clear bytes in the normal world's buffer"
    );
    let rendered = keys.render_secure_buffer(handle).unwrap();
    assert_eq!(rendered.len, 1000);
    let mut expected_digest = [0xd1u8; 32];
    expected_digest[..8].copy_from_slice(&1000u64.to_le_bytes());
    assert_eq!(
        rendered.digest, expected_digest,
        "the callback's digest is passed through"
    );
    assert_eq!(
        *dev.rendered.lock().unwrap(),
        vec![clear],
        "the sink got the clear sample"
    );
    drop((s, keys));
    ok(tee_cdm_sw_destroy(world));

    // Without a render callback, secure output is unavailable and refused.
    let mut p = platform(&dev);
    p.render = None;
    let mut world = null_mut();
    // SAFETY: live structs.
    ok(unsafe { tee_cdm_sw_create(&p, null(), null(), &mut world) });
    let keys = media_keys(world, false);
    let s = licensed_session(&keys, SessionType::Temporary, Robustness::HwSecureDecode);
    let (_, mut sample) = cbcs_sample(1000);
    let DecryptedSample::SecureBuffer(handle) = keys
        .decrypt(&mut sample, &cbcs_desc(&subs, OutputWish::Auto))
        .unwrap()
    else {
        panic!("a secure buffer");
    };
    assert!(keys.render_secure_buffer(handle).is_err());
    drop((s, keys));
    ok(tee_cdm_sw_destroy(world));
}

#[test]
fn persistent_license_survives_a_new_world_through_the_storage_callbacks() {
    let dev = Device::default();
    let world = create(&dev, None, true).unwrap();
    let mut fault = u32::MAX;
    // SAFETY: live local.
    ok(unsafe { tee_cdm_sw_storage_fault(world, &mut fault) });
    assert_eq!(fault, 0, "storage usable");
    let keys = media_keys(world, true);
    let s = licensed_session(&keys, SessionType::PersistentLicense, Robustness::Empty);
    let id = s.session_id();
    s.close().unwrap();
    drop((s, keys));
    ok(tee_cdm_sw_destroy(world));
    assert!(
        !dev.store.lock().unwrap().is_empty(),
        "sealed records went through storage_put"
    );
    assert!(*dev.counter.lock().unwrap() > 0, "the counter was advanced");
    // Sealed: neither the key nor the key ID appears in what the store was given.
    for blob in dev.store.lock().unwrap().values() {
        assert!(!blob.windows(16).any(|w| w == KEY || w == KID));
    }

    // "Reboot": a new world on the same device loads the license.
    let world = create(&dev, None, true).unwrap();
    let keys = media_keys(world, true);
    let s = keys.create_session(SessionType::PersistentLicense).unwrap();
    assert!(s.load(&id).unwrap());
    assert_eq!(s.key_statuses().get(&KID), Some(KeyStatus::Usable));
    let (clear, mut sample) = cbcs_sample(3000);
    let subs = [(16, 2984)];
    keys.decrypt(&mut sample, &cbcs_desc(&subs, OutputWish::Auto))
        .unwrap();
    assert_eq!(sample, clear);
    drop((s, keys));
    ok(tee_cdm_sw_destroy(world));
}

#[test]
fn a_rolled_back_store_is_detected_through_the_counter_callbacks() {
    let dev = Device::default();
    let world = create(&dev, None, true).unwrap();
    let keys = media_keys(world, true);
    let first = licensed_session(&keys, SessionType::PersistentLicense, Robustness::Empty);
    let snapshot = dev.store.lock().unwrap().clone();
    let second = licensed_session(&keys, SessionType::PersistentLicense, Robustness::Empty);
    drop((first, second, keys));
    ok(tee_cdm_sw_destroy(world));

    // The normal world restores the older store; the counter (in "RPMB") stays ahead.
    *dev.store.lock().unwrap() = snapshot;
    let world = create(&dev, None, true).unwrap();
    let mut fault = 0;
    // SAFETY: live local.
    ok(unsafe { tee_cdm_sw_storage_fault(world, &mut fault) });
    assert_eq!(fault, Status::StorageRollback.to_wire());
    ok(tee_cdm_sw_destroy(world));

    // Without persistence there is no storage: NotSupported.
    let world = create(&dev, None, false).unwrap();
    // SAFETY: live local.
    ok(unsafe { tee_cdm_sw_storage_fault(world, &mut fault) });
    assert_eq!(fault, Status::NotSupported.to_wire());
    ok(tee_cdm_sw_destroy(world));
}

#[test]
fn create_checks_its_arguments() {
    let dev = Device::default();
    let p = platform(&dev);
    let mut world = null_mut();
    // SAFETY: in all calls below, live structs; NULLs and bad values are the point.
    unsafe {
        assert_eq!(
            tee_cdm_sw_create(null(), null(), null(), &mut world),
            TeeCdmStatus::NullPointer
        );
        assert_eq!(
            tee_cdm_sw_create(&p, null(), null(), null_mut()),
            TeeCdmStatus::NullPointer
        );
        let no_rng = TeeCdmSwPlatform { random: None, ..p };
        assert_eq!(
            tee_cdm_sw_create(&no_rng, null(), null(), &mut world),
            TeeCdmStatus::NullPointer
        );
        assert!(
            last_error().contains("platform->random"),
            "{}",
            last_error()
        );
        let mut s = persistence(&dev);
        s.counter_increment = None;
        assert_eq!(
            tee_cdm_sw_create(&p, null(), &s, &mut world),
            TeeCdmStatus::NullPointer
        );
        assert!(
            last_error().contains("counter_increment"),
            "{}",
            last_error()
        );
        assert!(world.is_null());
    }
    for bad in [
        TeeCdmSwConfig {
            max_sessions: 33,
            ..Default::default()
        },
        TeeCdmSwConfig {
            max_keys_per_session: 1000,
            ..Default::default()
        },
        TeeCdmSwConfig {
            max_persistent_licenses: 1025,
            ..Default::default()
        },
        TeeCdmSwConfig {
            robustness: 4,
            ..Default::default()
        },
    ] {
        assert_eq!(
            create(&dev, Some(&bad), false),
            Err(TeeCdmStatus::InvalidArgument),
            "{bad:?}"
        );
    }
    dev.root_key_fails.store(true, Ordering::Relaxed);
    assert_eq!(create(&dev, None, true), Err(TeeCdmStatus::PlatformError));
    dev.root_key_fails.store(false, Ordering::Relaxed);

    // A small TEE: the limits reach the secure world.
    let small = TeeCdmSwConfig {
        max_sessions: 2,
        robustness: TEE_CDM_SW_ROBUSTNESS_SW_SECURE_CRYPTO,
        ..Default::default()
    };
    let world = create(&dev, Some(&small), false).unwrap();
    let keys = media_keys(world, false);
    assert_eq!(keys.capabilities().max_sessions, 2);
    let robustness = &keys.capabilities().robustness;
    assert!(robustness.contains(&Robustness::SwSecureCrypto));
    assert!(!robustness.contains(&Robustness::HwSecureDecode));
    drop(keys);
    ok(tee_cdm_sw_destroy(world));
}

fn capabilities_request(id: u32) -> Vec<u8> {
    let mut request = Vec::new();
    GetCapabilities.encode_message(0, id, &mut request).unwrap();
    request
}

/// The buffer arguments of one `tee_cdm_sw_process` call.
#[derive(Clone, Copy)]
struct Buffers {
    request: *const u8,
    request_len: usize,
    sample: *mut u8,
    sample_len: usize,
    response: *mut u8,
    capacity: usize,
}

#[test]
fn process_checks_its_buffers() {
    let dev = Device::default();
    let world = create(&dev, None, false).unwrap();
    let request = capabilities_request(5);
    let mut response = vec![0u8; TEE_CDM_SW_MAX_RESPONSE_LEN];
    let mut len = 0;
    // A capabilities request, no sample, a full-size response buffer; each call below changes
    // what it tests.
    let good = Buffers {
        request: request.as_ptr(),
        request_len: request.len(),
        sample: null_mut(),
        sample_len: 0,
        response: response.as_mut_ptr(),
        capacity: response.len(),
    };
    let process = |b: Buffers, len: *mut usize| {
        // SAFETY: every call below passes live buffers of the lengths given, or NULL with 0,
        // or a NULL the function must refuse.
        unsafe {
            tee_cdm_sw_process(
                world,
                b.request,
                b.request_len,
                b.sample,
                b.sample_len,
                b.response,
                b.capacity,
                len,
            )
        }
    };

    // The happy path first: one message in, one out.
    ok(process(good, &mut len));
    let (header, caps) = parse_response::<GetCapabilities>(&response[..len]).unwrap();
    assert_eq!(header.request_id, 5);
    assert_eq!(caps.unwrap().abi_version, 1);

    // An undersized response buffer: the size needed, and the request is not processed.
    len = 0;
    let st = process(
        Buffers {
            capacity: 100,
            ..good
        },
        &mut len,
    );
    assert_eq!(
        (st, len),
        (TeeCdmStatus::BufferTooSmall, TEE_CDM_SW_MAX_RESPONSE_LEN)
    );
    assert_eq!(process(good, null_mut()), TeeCdmStatus::NullPointer);
    let no_response = Buffers {
        response: null_mut(),
        capacity: TEE_CDM_SW_MAX_RESPONSE_LEN,
        ..good
    };
    assert_eq!(process(no_response, &mut len), TeeCdmStatus::NullPointer);
    assert_eq!(len, 0);
    let no_request = Buffers {
        request: null(),
        request_len: 32,
        ..good
    };
    assert_eq!(process(no_request, &mut len), TeeCdmStatus::NullPointer);
    let mut sample = [0u8; 16];
    let no_sample = Buffers {
        sample_len: 16,
        ..good
    };
    assert_eq!(process(no_sample, &mut len), TeeCdmStatus::NullPointer);
    // A request longer than any message: refused at the boundary.
    let huge = vec![0u8; TEE_CDM_SW_MAX_REQUEST_LEN + 1];
    let too_long = Buffers {
        request: huge.as_ptr(),
        request_len: huge.len(),
        ..good
    };
    assert_eq!(process(too_long, &mut len), TeeCdmStatus::InvalidArgument);
    // The sample may not overlap the request or the response.
    let in_response = Buffers {
        sample: good.response.wrapping_add(100),
        sample_len: 16,
        ..good
    };
    assert_eq!(
        process(in_response, &mut len),
        TeeCdmStatus::InvalidArgument
    );
    assert!(last_error().contains("overlaps"), "{}", last_error());
    let mut shared = vec![0u8; TEE_CDM_SW_MAX_RESPONSE_LEN + 64];
    shared[..request.len()].copy_from_slice(&request);
    let base = shared.as_mut_ptr();
    let in_request = Buffers {
        request: base,
        sample: base.wrapping_add(8),
        sample_len: 16,
        ..good
    };
    assert_eq!(process(in_request, &mut len), TeeCdmStatus::InvalidArgument);
    // The request and the response may share one in/out buffer.
    let in_out = Buffers {
        request: base,
        sample: sample.as_mut_ptr(),
        response: base,
        capacity: TEE_CDM_SW_MAX_RESPONSE_LEN,
        ..good
    };
    ok(process(in_out, &mut len));
    let (header, caps) = parse_response::<GetCapabilities>(&shared[..len]).unwrap();
    assert_eq!((header.request_id, caps.is_ok()), (5, true));

    // Problems of the message itself are encoded responses, not boundary errors.
    let status = |response: &[u8]| {
        Status::from_wire(u32::from_le_bytes(response[24..28].try_into().unwrap()))
    };
    let empty = Buffers {
        request: null(),
        request_len: 0,
        ..good
    };
    ok(process(empty, &mut len));
    assert_eq!(status(&response), Some(Status::Truncated));
    let mut bad = request.clone();
    bad[4] = 9; // version 9
    let version_9 = Buffers {
        request: bad.as_ptr(),
        request_len: bad.len(),
        ..good
    };
    ok(process(version_9, &mut len));
    assert_eq!(status(&response), Some(Status::UnsupportedVersion));

    // A destroyed world is a bad handle; so is a second destroy.
    ok(tee_cdm_sw_destroy(world));
    assert_eq!(process(good, &mut len), TeeCdmStatus::BadHandle);
    assert_eq!(tee_cdm_sw_destroy(world), TeeCdmStatus::BadHandle);
    ok(tee_cdm_sw_destroy(null_mut()));
    let mut fault = 0;
    // SAFETY: live local.
    let st = unsafe { tee_cdm_sw_storage_fault(world, &mut fault) };
    assert_eq!(st, TeeCdmStatus::BadHandle);
}

#[test]
fn a_foreign_sink_pointer_is_refused_by_append() {
    // A store that answers with a sink of its own making instead of the one it was given.
    unsafe extern "C" fn bad_get(
        _ctx: *mut c_void,
        _name: *const c_char,
        _sink: *mut TeeCdmSwSink,
        append: TeeCdmSwAppendFn,
    ) -> i32 {
        let mut not_a_sink = [0u64; 8];
        // SAFETY: a live, aligned buffer; append must refuse it (wrong tag), and NULL.
        unsafe {
            assert_eq!(
                append(not_a_sink.as_mut_ptr().cast(), b"x".as_ptr(), 1),
                TeeCdmSwResult::Unavailable as i32
            );
            assert_eq!(
                append(null_mut(), b"x".as_ptr(), 1),
                TeeCdmSwResult::Unavailable as i32
            );
        }
        TeeCdmSwResult::Unavailable as i32
    }
    let dev = Device::default();
    let p = platform(&dev);
    let s = TeeCdmSwPersistence {
        storage_get: Some(bad_get),
        ..persistence(&dev)
    };
    let mut world = null_mut();
    // SAFETY: live structs. The store is unusable, the world is still made.
    ok(unsafe { tee_cdm_sw_create(&p, null(), &s, &mut world) });
    let mut fault = 0;
    // SAFETY: live local.
    ok(unsafe { tee_cdm_sw_storage_fault(world, &mut fault) });
    assert_eq!(fault, Status::StorageUnavailable.to_wire());
    ok(tee_cdm_sw_destroy(world));
}
