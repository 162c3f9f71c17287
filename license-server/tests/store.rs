//! The SQLite store on a real file: keys survive closing and reopening, and two stores on the
//! same file (two server processes sharing a database) see each other's imports.

mod common;

use cdm_core::KeyId;
use cdm_testkit::temp::TempDir;
use common::*;
use license_server::{KeyStore, SqliteStore};

fn summary(store: &SqliteStore, kids: &[[u8; 16]]) -> Vec<([u8; 16], [u8; 16], bool)> {
    let kids: Vec<KeyId> = kids.iter().map(|k| KeyId::from(*k)).collect();
    store
        .lookup(&kids)
        .unwrap()
        .iter()
        .map(|k| {
            (
                k.kid.as_cenc().copied().unwrap(),
                *k.key.as_bytes(),
                k.allow_persistent,
            )
        })
        .collect()
}

#[test]
fn keys_survive_reopening_the_file() {
    let dir = TempDir::new("ls-store-reopen");
    let path = dir.join("keys.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .import(&[stored(KID1, KEY1, false), stored(KID2, KEY2, true)])
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        summary(&store, &[KID1, KID2, KID_UNKNOWN]),
        [(KID1, KEY1, false), (KID2, KEY2, true)]
    );
}

#[test]
fn two_stores_on_one_file_share_keys() {
    let dir = TempDir::new("ls-store-shared");
    let path = dir.join("keys.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    assert!(summary(&b, &[KID1]).is_empty());
    a.import(&[stored(KID1, KEY1, true)]).unwrap();
    assert_eq!(summary(&b, &[KID1]), [(KID1, KEY1, true)]);
    // A policy change through `b` is seen by `a`.
    b.import(&[stored(KID1, KEY1, false)]).unwrap();
    assert_eq!(summary(&a, &[KID1]), [(KID1, KEY1, false)]);
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let dir = TempDir::new("ls-store-garbage");
    let path = dir.join("keys.db");
    std::fs::write(&path, vec![0x42u8; 4096]).unwrap();
    assert!(SqliteStore::open(&path).is_err());
}
