//! Persistent-license sessions against hal's file-backed storage: store, restart, load,
//! remove, restart, finish the release; quotas; and the attacks on the store directory
//! (tamper, truncate, swap, rollback, deletion), each refused with its own status while
//! everything else keeps working.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use cdm_core::abi::{GetCapabilities, Loaded, OutputKind, Status};
use cdm_core::{ClosedReason, KeyStatus, Robustness, SessionType};
use cdm_testkit::temp::{copy_dir, TempDir};
use common::*;
use secure_world::Config;

const SW: Robustness = Robustness::SwSecureCrypto;

/// Decrypts a `cenc` sample made by the test kit with `key` under `kid` in session `s`;
/// answers whether the clear text came back.
fn decrypts(h: &mut Harness, s: u64, kid: &[u8], key: &[u8; 16]) -> Result<bool, Status> {
    let clear = plaintext(777);
    let mut sample = clear.clone();
    let iv = [4u8; 8];
    encrypt_cenc(key, &iv, &mut sample, &[]);
    h.decrypt(
        s,
        cenc_req(kid, &iv, 777, &[], OutputKind::InPlace),
        &mut sample,
    )?;
    Ok(sample == clear)
}

fn store_dir(dir: &TempDir) -> PathBuf {
    dir.join("store")
}

/// The record files in the store, sorted.
fn records(dir: &TempDir) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(store_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("lic-"))
        .collect();
    v.sort();
    v
}

fn files(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn capabilities_list_persistent_license_only_with_storage() {
    let types = |h: &mut Harness| h.op(0, GetCapabilities).unwrap().session_types;
    let mut plain = Harness::new();
    assert_eq!(types(&mut plain), [SessionType::Temporary]);
    assert_eq!(
        plain.try_open_typed(SW, SessionType::PersistentLicense),
        Err(Status::NotSupported)
    );
    assert_eq!(
        plain.load(SW, "0123456789abcdef").unwrap_err(),
        Status::NotSupported
    );
    assert_eq!(plain.sw.storage_fault(), Some(Status::NotSupported));

    let dir = TempDir::new("caps");
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(
        types(&mut h),
        [SessionType::Temporary, SessionType::PersistentLicense]
    );
    assert_eq!(h.sw.storage_fault(), None);
}

#[test]
fn stored_license_survives_a_restart_and_loads_without_a_request() {
    let dir = TempDir::new("restart");
    let id = {
        let mut h = Harness::with_storage(dir.path(), Config::default());
        let (s, id) = h
            .persistent_session(SW, &[(&KID1, KEY1), (&KID2, KEY2)])
            .unwrap();
        assert!(decrypts(&mut h, s, &KID1, &KEY1).unwrap());
        // A temporary license is refused by a persistent session (types must match).
        assert_eq!(
            h.update(s, &license(&[(&KID1, KEY1)])).unwrap_err(),
            Status::InvalidLicense
        );
        id
    };
    assert_eq!(records(&dir).len(), 1);

    let mut h = Harness::with_storage(dir.path(), Config::default());
    // An unknown id: found = false, nothing opened.
    assert_eq!(
        h.load(SW, "ffffffffffffffff").unwrap(),
        (0, Loaded::default())
    );
    let (s, loaded) = h.load(SW, &id).unwrap();
    assert_ne!(s, 0);
    assert!(loaded.found);
    assert!(loaded.release_message.is_empty());
    assert_eq!(
        h.statuses(s).unwrap(),
        [
            (KID1.to_vec(), KeyStatus::Usable),
            (KID2.to_vec(), KeyStatus::Usable)
        ]
    );
    assert!(decrypts(&mut h, s, &KID1, &KEY1).unwrap());
    assert!(decrypts(&mut h, s, &KID2, &KEY2).unwrap());
    // Loading an id that an open session has is EME's QuotaExceededError.
    assert_eq!(h.load(SW, &id).unwrap_err(), Status::SessionIdInUse);
    // Another robustness level does not get the license.
    assert_eq!(
        h.load(Robustness::HwSecureDecode, &id).unwrap_err(),
        Status::SessionIdInUse
    );
    h.close(s).unwrap();
    assert_eq!(
        h.load(Robustness::HwSecureDecode, &id).unwrap_err(),
        Status::NotSupported
    );
    // Closing keeps the license: it loads again.
    let (s2, loaded) = h.load(SW, &id).unwrap();
    assert!(loaded.found && s2 != 0);
    assert!(decrypts(&mut h, s2, &KID2, &KEY2).unwrap());
}

#[test]
fn a_second_license_joins_the_stored_one() {
    let dir = TempDir::new("merge");
    let id = {
        let mut h = Harness::with_storage(dir.path(), Config::default());
        let (s, id) = h.persistent_session(SW, &[(&KID1, KEY1)]).unwrap();
        h.update(s, &persistent_license(&[(&KID2, KEY2)])).unwrap();
        id
    };
    // The superseded record was deleted: one record holds both keys.
    assert_eq!(records(&dir).len(), 1);
    let mut h = Harness::with_storage(dir.path(), Config::default());
    let (s, _) = h.load(SW, &id).unwrap();
    assert!(decrypts(&mut h, s, &KID1, &KEY1).unwrap());
    assert!(decrypts(&mut h, s, &KID2, &KEY2).unwrap());
}

#[test]
fn remove_then_restart_then_finish_the_release() {
    let dir = TempDir::new("release");
    let id = {
        let mut h = Harness::with_storage(dir.path(), Config::default());
        let (s, id) = h.persistent_session(SW, &[(&KID1, KEY1)]).unwrap();
        let m = h.remove(s).unwrap();
        assert_eq!(m.message_type, cdm_core::MessageType::LicenseRelease);
        assert_eq!(
            String::from_utf8(m.message).unwrap(),
            format!(r#"{{"kids":["{KID1_B64}"]}}"#)
        );
        assert_eq!(decrypts(&mut h, s, &KID1, &KEY1), Err(Status::KeyNotUsable));
        // The acknowledgement never arrives: the process "stops" here.
        id
    };
    let mut h = Harness::with_storage(dir.path(), Config::default());
    let (s, loaded) = h.load(SW, &id).unwrap();
    assert!(loaded.found);
    // The record of license destruction comes back, and no key is usable.
    assert_eq!(
        String::from_utf8(loaded.release_message).unwrap(),
        format!(r#"{{"kids":["{KID1_B64}"]}}"#)
    );
    assert_eq!(
        h.statuses(s).unwrap(),
        [(KID1.to_vec(), KeyStatus::Released)]
    );
    assert_eq!(decrypts(&mut h, s, &KID1, &KEY1), Err(Status::KeyNotUsable));
    // A wrong acknowledgement changes nothing.
    let wrong = format!(r#"{{"kids":["{KID2_B64}"]}}"#);
    assert_eq!(
        h.update(s, wrong.as_bytes()).unwrap_err(),
        Status::InvalidLicense
    );
    let ack = format!(r#"{{"kids":["{KID1_B64}"]}}"#);
    let st = h.update(s, ack.as_bytes()).unwrap();
    assert_eq!(st.closed, Some(ClosedReason::ReleaseAcknowledged));
    assert!(records(&dir).is_empty());
    drop(h);
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(h.load(SW, &id).unwrap(), (0, Loaded::default()));
}

#[test]
fn quotas_refuse_without_changing_anything() {
    let dir = TempDir::new("quota");
    let config = Config {
        max_persistent_licenses: 2,
        max_license_record_len: 64,
        ..Config::default()
    };
    let mut h = Harness::with_storage(dir.path(), config.clone());
    let (_, a) = h.persistent_session(SW, &[(&KID1, KEY1)]).unwrap();
    // A record over 64 bytes (21 bytes of header and 34 per 16-byte key ID: two keys take
    // 89) is refused while the store has room.
    let kid3 = [3u8; 16];
    let (s, _) = h
        .try_open_typed(SW, SessionType::PersistentLicense)
        .unwrap();
    h.generate(s, cdm_core::InitDataType::Webm, &kid3).unwrap();
    assert_eq!(
        h.update(s, &persistent_license(&[(&kid3, KEY1), (&[4u8; 16], KEY2)]))
            .unwrap_err(),
        Status::LicenseQuotaExceeded
    );
    // The refused session holds no key.
    assert!(h.statuses(s).unwrap().is_empty());
    let (_, b) = h.persistent_session(SW, &[(&KID2, KEY2)]).unwrap();
    // A third license: the store is full.
    assert_eq!(
        h.persistent_session(SW, &[(&kid3, KEY1)]).unwrap_err(),
        Status::LicenseQuotaExceeded
    );
    drop(h);
    let mut h = Harness::with_storage(dir.path(), config);
    for (id, kid, key) in [(&a, &KID1, &KEY1), (&b, &KID2, &KEY2)] {
        let (s, loaded) = h.load(SW, id).unwrap();
        assert!(loaded.found);
        assert!(decrypts(&mut h, s, kid, key).unwrap());
    }
}

/// Stores two licenses; answers the directory, their ids and their record files (in id
/// order of storing).
fn two_stored() -> (TempDir, String, String, PathBuf, PathBuf) {
    let dir = TempDir::new("attack");
    let mut h = Harness::with_storage(dir.path(), Config::default());
    let (_, a) = h.persistent_session(SW, &[(&KID1, KEY1)]).unwrap();
    let before: Vec<PathBuf> = records(&dir);
    let (_, b) = h.persistent_session(SW, &[(&KID2, KEY2)]).unwrap();
    let rec_a = before[0].clone();
    let rec_b = records(&dir).into_iter().find(|p| *p != rec_a).unwrap();
    (dir, a, b, rec_a, rec_b)
}

/// After an attack on one record, the other license still loads and decrypts.
fn other_still_loads(h: &mut Harness, id: &str, kid: &[u8], key: &[u8; 16]) {
    let (s, loaded) = h.load(SW, id).unwrap();
    assert!(loaded.found);
    assert!(decrypts(h, s, kid, key).unwrap());
}

#[test]
fn a_tampered_record_is_refused() {
    let (dir, a, b, rec_a, _) = two_stored();
    let mut bytes = fs::read(&rec_a).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&rec_a, &bytes).unwrap();
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(h.sw.storage_fault(), None);
    assert_eq!(h.load(SW, &a).unwrap_err(), Status::StorageCorrupt);
    other_still_loads(&mut h, &b, &KID2, &KEY2);
    // Temporary sessions are unaffected.
    let s = h.session_with_keys(SW, &[(&KID1, KEY1)]);
    assert!(decrypts(&mut h, s, &KID1, &KEY1).unwrap());
}

#[test]
fn a_truncated_record_is_refused() {
    let (dir, a, b, rec_a, _) = two_stored();
    let bytes = fs::read(&rec_a).unwrap();
    fs::write(&rec_a, &bytes[..40]).unwrap();
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(h.load(SW, &a).unwrap_err(), Status::StorageTruncated);
    other_still_loads(&mut h, &b, &KID2, &KEY2);
}

#[test]
fn a_record_swapped_under_another_name_is_refused() {
    let (dir, a, b, rec_a, rec_b) = two_stored();
    // Record B's bytes under A's name: authentic, but sealed for another name.
    fs::copy(&rec_b, &rec_a).unwrap();
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(h.load(SW, &a).unwrap_err(), Status::StorageCorrupt);
    other_still_loads(&mut h, &b, &KID2, &KEY2);
}

#[test]
fn a_deleted_record_is_reported_missing() {
    let (dir, a, b, rec_a, _) = two_stored();
    fs::remove_file(&rec_a).unwrap();
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(h.load(SW, &a).unwrap_err(), Status::StorageMissing);
    other_still_loads(&mut h, &b, &KID2, &KEY2);
}

#[test]
fn a_tampered_table_disables_persistence_only() {
    let (dir, a, _, _, _) = two_stored();
    let index = store_dir(&dir).join("index");
    let mut bytes = fs::read(&index).unwrap();
    bytes[40] ^= 0x80;
    fs::write(&index, &bytes).unwrap();
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(h.sw.storage_fault(), Some(Status::StorageCorrupt));
    assert_eq!(h.load(SW, &a).unwrap_err(), Status::StorageCorrupt);
    // A new persistent license cannot be stored either...
    let kid3 = [3u8; 16];
    assert_eq!(
        h.persistent_session(SW, &[(&kid3, KEY1)]).unwrap_err(),
        Status::StorageCorrupt
    );
    // ...and nothing was written over the evidence.
    assert_eq!(fs::read(&index).unwrap(), bytes);
    // Temporary sessions still work.
    let s = h.session_with_keys(SW, &[(&KID1, KEY1)]);
    assert!(decrypts(&mut h, s, &KID1, &KEY1).unwrap());
}

#[test]
fn a_rolled_back_store_is_refused() {
    let (dir, a, b, _, _) = two_stored();
    let snapshot = TempDir::new("snapshot");
    copy_dir(&store_dir(&dir), snapshot.path());
    {
        // Release `a` (the kind of change a rollback would undo to get keys back).
        let mut h = Harness::with_storage(dir.path(), Config::default());
        let (s, _) = h.load(SW, &a).unwrap();
        h.remove(s).unwrap();
    }
    // Put the old copy back.
    copy_dir(snapshot.path(), &store_dir(&dir));
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(h.sw.storage_fault(), Some(Status::StorageRollback));
    assert_eq!(h.load(SW, &a).unwrap_err(), Status::StorageRollback);
    assert_eq!(h.load(SW, &b).unwrap_err(), Status::StorageRollback);
    let snapshot_files = files(snapshot.path());
    assert_eq!(files(&store_dir(&dir)), snapshot_files);
}

#[test]
fn a_deleted_table_is_a_rollback() {
    let (dir, a, _, _, _) = two_stored();
    fs::remove_file(store_dir(&dir).join("index")).unwrap();
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert_eq!(h.sw.storage_fault(), Some(Status::StorageRollback));
    assert_eq!(h.load(SW, &a).unwrap_err(), Status::StorageRollback);
}

#[test]
fn left_over_records_are_deleted_at_open() {
    let (dir, a, b, rec_a, _) = two_stored();
    // A record no table names (as an interrupted commit leaves).
    let stray = store_dir(&dir).join("lic-00000000000000ff");
    fs::copy(&rec_a, &stray).unwrap();
    let mut h = Harness::with_storage(dir.path(), Config::default());
    assert!(!stray.exists());
    other_still_loads(&mut h, &a, &KID1, &KEY1);
    other_still_loads(&mut h, &b, &KID2, &KEY2);
}

#[test]
fn stored_licenses_use_the_default_cap_of_1024() {
    let dir = TempDir::new("cap");
    let mut h = Harness::with_storage(dir.path(), Config::default());
    let mut ids = Vec::new();
    for i in 0..1024u32 {
        let mut kid = [0u8; 16];
        kid[..4].copy_from_slice(&i.to_le_bytes());
        let (s, id) = h.persistent_session(SW, &[(&kid, KEY1)]).unwrap();
        h.close(s).unwrap();
        ids.push(id);
    }
    let kid = [0xee; 16];
    assert_eq!(
        h.persistent_session(SW, &[(&kid, KEY1)]).unwrap_err(),
        Status::LicenseQuotaExceeded
    );
    drop(h);
    let mut h = Harness::with_storage(dir.path(), Config::default());
    for (i, id) in (0u32..).zip(&ids).step_by(97) {
        let mut kid = [0u8; 16];
        kid[..4].copy_from_slice(&i.to_le_bytes());
        let (s, loaded) = h.load(SW, id).unwrap();
        assert!(loaded.found);
        assert!(decrypts(&mut h, s, &kid, &KEY1).unwrap());
        h.close(s).unwrap();
    }
}
