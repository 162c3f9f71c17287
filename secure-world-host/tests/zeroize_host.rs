//! Proof that the host side leaves no key text behind: after a Clear Key session closed and
//! the client left, no heap block released by the normal world (the ABI client link), the
//! socket transport or the host's server loop holds the content key or its base64url text,
//! the form in which the license carries it.
//!
//! The test's own license buffers are built before the scan starts and wiped by the test before
//! they are dropped, so every hit is
//! about memory the CDM released. One `#[test]`: the scanning allocator sees the frees of
//! every thread. It runs the socket transport against the host's server loop on a thread of
//! this process, so both sides of the socket are scanned.
#![allow(clippy::unwrap_used)]

use std::os::unix::net::UnixStream;
use std::time::Duration;

use cdm_testkit::alloc_scan::ScanningAllocator;
use cdm_testkit::cenc::{encrypt_cenc, plaintext, pssh_v1};
use cdm_testkit::clearkey::{b64url, license};
use normal_world::transport::{SocketTransport, Transport};
use normal_world::{
    request_media_key_system_access, DecryptedSample, EncryptionScheme,
    MediaKeySystemConfiguration, MediaKeySystemMediaCapability, OutputWish, SampleDescription,
    SessionType,
};
use zeroize::Zeroize;

#[global_allocator]
static SCANNER: ScanningAllocator = ScanningAllocator::new();

/// A content key with no structure, used only by this test.
const KEY: [u8; 16] = [
    0x5b, 0xe1, 0x07, 0x9a, 0x3c, 0xd8, 0x62, 0xf4, 0x1e, 0xa9, 0x46, 0x0d, 0xb7, 0x73, 0x2f, 0xc5,
];
const KID: [u8; 16] = [0x42; 16];

/// One whole Clear Key flow over `transport` with `lic`, which it wipes once used.
fn flow(transport: Box<dyn Transport>, mut lic: Vec<u8>) {
    let config = MediaKeySystemConfiguration {
        init_data_types: vec!["cenc".into()],
        video_capabilities: vec![MediaKeySystemMediaCapability::new(
            "video/mp4; codecs=\"avc1.64001f\"",
        )],
        ..Default::default()
    };
    let access = request_media_key_system_access("org.w3.clearkey", &[config]).unwrap();
    let mk = access.create_media_keys_with_transport(transport).unwrap();
    let session = mk.create_session(SessionType::Temporary).unwrap();
    session.generate_request("cenc", &pssh_v1(&[&KID])).unwrap();
    session.update(&lic).unwrap();
    lic.zeroize();
    let clear = plaintext(500);
    let mut sample = clear.clone();
    encrypt_cenc(&KEY, &[9; 8], &mut sample, &[]);
    let desc = SampleDescription {
        key_id: &KID,
        scheme: EncryptionScheme::Cenc,
        iv: &[9; 8],
        pattern: (0, 0),
        subsamples: &[],
        output: OutputWish::Auto,
    };
    assert_eq!(mk.decrypt(&mut sample, &desc), Ok(DecryptedSample::InPlace));
    assert_eq!(sample, clear, "the key was really used");
    session.close().unwrap();
}

#[test]
fn no_released_host_block_holds_the_key_or_its_text() {
    let key_text = b64url(&KEY);
    let dir = std::env::temp_dir().join(format!("tee-cdm-zeroize-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("host.sock");

    // The test's license builder makes temporary strings: build before arming. The key under
    // test comes second, so its text lies past the bytes that later (shorter) requests
    // overwrite in a reused buffer: only a wipe removes it.
    let licenses =
        [(); 2].map(|()| license(&[(&[0x17; 16], &[0x71; 16]), (&KID, &KEY)], "temporary"));
    let [in_process_license, socket_license] = licenses;

    SCANNER.arm(&[&KEY, key_text.as_bytes()]);
    // In process: the link's request buffer carried the license to the secure world.
    flow(
        Box::new(normal_world::transport::InProcessTransport::new().unwrap()),
        in_process_license,
    );
    // Over the socket, against the host's server loop (it ends when the client leaves).
    let listening = path.clone();
    let server = std::thread::spawn(move || {
        secure_world_host::serve_unix_socket(&listening, true, secure_world_host::host_world)
    });
    while UnixStream::connect(&path).is_err() {
        assert!(
            !server.is_finished(),
            "the host thread ended before listening"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // That probe connection was the one-shot host's client: it has left, start again.
    server.join().unwrap().unwrap();
    let listening = path.clone();
    let server = std::thread::spawn(move || {
        secure_world_host::serve_unix_socket(&listening, true, secure_world_host::host_world)
    });
    let transport = loop {
        match SocketTransport::connect(&path) {
            Ok(t) => break t,
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    flow(Box::new(transport), socket_license);
    server.join().unwrap().unwrap();
    let report = SCANNER.disarm();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(report.scanned > 0, "the allocator saw the frees");
    assert_eq!(
        report.hits[0], 0,
        "a released block held the raw content key"
    );
    assert_eq!(
        report.hits[1], 0,
        "a released block held the content key's base64url text"
    );
}
