//! Where the protected key system's keys and sessions live: [`ProtectedStore`], implemented by
//! [`SqliteStore`] in the same database file as the Clear Key keys.
//!
//! Protected keys are in their own table: a key imported as a protected key is never served by
//! `/clearkey/license` (which would hand it out in clear), and a Clear Key key is never put in
//! a protected license.
//!
//! ```text
//! protected_keys(kid BLOB PRIMARY KEY, key BLOB, kind INTEGER, robustness INTEGER,
//!                min_hdcp INTEGER, license_duration INTEGER, playback_duration INTEGER,
//!                renewal_interval INTEGER, can_persist INTEGER)
//! protected_sessions(session_id BLOB PRIMARY KEY, device_key BLOB, key_ids BLOB,
//!                    license_duration INTEGER, playback_duration INTEGER,
//!                    renewal_interval INTEGER, can_persist INTEGER, persistent INTEGER,
//!                    issued_at INTEGER, renewed_at INTEGER NULL, released_at INTEGER NULL)
//! ```
//!
//! Enumerations are stored as their wire bytes (`docs/protected-license.md`): kind 1 content,
//! 2 entitlement; robustness `0x01` `SW_SECURE_CRYPTO`, `0x02` `HW_SECURE_DECODE`; HDCP
//! `major << 4 | minor`, 0 for none. A session's `key_ids` are its granted key IDs, 16 bytes
//! each, concatenated in license order; `device_key` is the device's 65-byte signing public key.
//! Times are seconds since the Unix epoch. Sessions are kept (released ones too) until an
//! operator deletes them.

use std::fmt;

use protected_license::cert::{Hdcp, Robustness};
use protected_license::crypto::{ContentKey, PublicKey, KEY_LEN, PUBLIC_KEY_LEN};
use protected_license::messages::{KeyId, KeyKind, SessionId, KEY_ID_LEN};
use protected_license::Policy;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use zeroize::Zeroizing;

use crate::protected::keys::ProtectedKey;
use crate::store::{SqliteStore, StoreError};

/// The tables, created by [`SqliteStore`] when it opens a database.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS protected_keys (
    kid BLOB PRIMARY KEY,
    key BLOB NOT NULL,
    kind INTEGER NOT NULL,
    robustness INTEGER NOT NULL,
    min_hdcp INTEGER NOT NULL,
    license_duration INTEGER NOT NULL,
    playback_duration INTEGER NOT NULL,
    renewal_interval INTEGER NOT NULL,
    can_persist INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS protected_sessions (
    session_id BLOB PRIMARY KEY,
    device_key BLOB NOT NULL,
    key_ids BLOB NOT NULL,
    license_duration INTEGER NOT NULL,
    playback_duration INTEGER NOT NULL,
    renewal_interval INTEGER NOT NULL,
    can_persist INTEGER NOT NULL,
    persistent INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    renewed_at INTEGER,
    released_at INTEGER
);";

/// What the server records of a license it issued: enough to verify and answer the renewal
/// and release requests of its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session ID the license carries (16 random bytes).
    pub session_id: SessionId,
    /// The signing public key of the device the license was issued to: renewal and release
    /// requests must be signed by it.
    pub device_key: PublicKey,
    /// The granted key IDs, in license order.
    pub key_ids: Vec<KeyId>,
    /// The license's policy (renewals answer with it).
    pub policy: Policy,
    /// Whether the license was issued for a `persistent-license` session.
    pub persistent: bool,
    /// Server time of issue.
    pub issued_at: u64,
    /// Server time of the last renewal response, if any.
    pub renewed_at: Option<u64>,
    /// Server time of the first release; `Some` = released (renewals are refused).
    pub released_at: Option<u64>,
}

/// A source of protected keys and a record of protected sessions.
///
/// Shared by all request handlers (`Send + Sync`); calls may block (the server runs them on
/// Tokio's blocking pool).
pub trait ProtectedStore: Send + Sync {
    /// The stored protected keys among `kids`, in the order of `kids`; unknown key IDs are
    /// left out.
    fn lookup_protected(&self, kids: &[KeyId]) -> Result<Vec<ProtectedKey>, StoreError>;

    /// Adds `keys`, replacing the key, restrictions and policy of key IDs already stored; all
    /// or nothing. Returns the number written.
    fn import_protected(&self, keys: &[ProtectedKey]) -> Result<usize, StoreError>;

    /// Records a new session (an error if its ID is already recorded).
    fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// The session `id`, if recorded.
    fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Notes a renewal response for session `id` at `now`.
    fn record_renewal(&self, id: &SessionId, now: u64) -> Result<(), StoreError>;

    /// Marks session `id` released at `now`, unless it already is (the first release time is
    /// kept). Returns whether the session exists.
    fn release_session(&self, id: &SessionId, now: u64) -> Result<bool, StoreError>;

    /// How many sessions are recorded.
    fn session_count(&self) -> Result<u64, StoreError>;
}

impl fmt::Debug for dyn ProtectedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProtectedStore")
    }
}

/// SQLite stores integers as `i64`: times past year 292 billion saturate.
fn time_to_sql(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn time_from_sql(t: i64) -> Result<u64, StoreError> {
    u64::try_from(t).map_err(|_| StoreError::Corrupt("negative time"))
}

fn kind_from_sql(v: u8) -> Result<KeyKind, StoreError> {
    match v {
        1 => Ok(KeyKind::Content),
        2 => Ok(KeyKind::Entitlement),
        _ => Err(StoreError::Corrupt("unknown protected key kind")),
    }
}

/// Imports inside a transaction: the protected half of [`SqliteStore::import_all`], which
/// [`ProtectedStore::import_protected`] runs too.
pub(crate) fn import_in(tx: &Transaction<'_>, keys: &[ProtectedKey]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO protected_keys (kid, key, kind, robustness, min_hdcp, license_duration,
             playback_duration, renewal_interval, can_persist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (kid) DO UPDATE SET key = excluded.key, kind = excluded.kind,
             robustness = excluded.robustness, min_hdcp = excluded.min_hdcp,
             license_duration = excluded.license_duration,
             playback_duration = excluded.playback_duration,
             renewal_interval = excluded.renewal_interval, can_persist = excluded.can_persist",
    )?;
    for k in keys {
        // A key given programmatically with a robustness set rather than one level is refused
        // here rather than stored and failing every license later.
        Robustness::single(k.robustness.bits())
            .map_err(|_| StoreError::Corrupt("a protected key needs exactly one robustness"))?;
        stmt.execute(params![
            &k.kid[..],
            &k.key.expose()[..],
            k.kind as u8,
            k.robustness.bits(),
            k.min_hdcp.to_u8(),
            k.policy.license_duration,
            k.policy.playback_duration,
            k.policy.renewal_interval,
            k.policy.can_persist,
        ])?;
    }
    Ok(())
}

fn key_from_row(kid: &KeyId, row: &Row<'_>) -> rusqlite::Result<Result<ProtectedKey, StoreError>> {
    let blob = row.get_ref(0)?.as_blob()?;
    let key = if blob.len() == KEY_LEN {
        let mut buf = Zeroizing::new([0u8; KEY_LEN]);
        buf.copy_from_slice(blob);
        Some(ContentKey::new(*buf))
    } else {
        None
    };
    let kind: u8 = row.get(1)?;
    let robustness: u8 = row.get(2)?;
    let min_hdcp: u8 = row.get(3)?;
    let policy = Policy {
        license_duration: row.get(4)?,
        playback_duration: row.get(5)?,
        renewal_interval: row.get(6)?,
        can_persist: row.get(7)?,
    };
    Ok((|| {
        Ok(ProtectedKey {
            kid: *kid,
            key: key.ok_or(StoreError::Corrupt("stored protected key is not 16 bytes"))?,
            kind: kind_from_sql(kind)?,
            robustness: Robustness::single(robustness)
                .map_err(|_| StoreError::Corrupt("stored robustness is not one level"))?,
            min_hdcp: Hdcp::from_u8(min_hdcp)
                .map_err(|_| StoreError::Corrupt("stored HDCP version is invalid"))?,
            policy,
        })
    })())
}

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Result<SessionRecord, StoreError>> {
    let id = row.get_ref(0)?.as_blob()?.to_vec();
    let device_key = row.get_ref(1)?.as_blob()?.to_vec();
    let key_ids = row.get_ref(2)?.as_blob()?.to_vec();
    let policy = Policy {
        license_duration: row.get(3)?,
        playback_duration: row.get(4)?,
        renewal_interval: row.get(5)?,
        can_persist: row.get(6)?,
    };
    let persistent: bool = row.get(7)?;
    let issued_at: i64 = row.get(8)?;
    let renewed_at: Option<i64> = row.get(9)?;
    let released_at: Option<i64> = row.get(10)?;
    Ok((|| {
        let session_id: SessionId = id
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("session ID is not 16 bytes"))?;
        let device_key: [u8; PUBLIC_KEY_LEN] = device_key
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("device key is not 65 bytes"))?;
        let device_key = PublicKey::from_bytes(&device_key)
            .map_err(|_| StoreError::Corrupt("device key is not a P-256 point"))?;
        let (chunks, rest) = key_ids.as_chunks::<KEY_ID_LEN>();
        if !rest.is_empty() || chunks.is_empty() {
            return Err(StoreError::Corrupt("session key IDs are not 16-byte IDs"));
        }
        Ok(SessionRecord {
            session_id,
            device_key,
            key_ids: chunks.to_vec(),
            policy,
            persistent,
            issued_at: time_from_sql(issued_at)?,
            renewed_at: renewed_at.map(time_from_sql).transpose()?,
            released_at: released_at.map(time_from_sql).transpose()?,
        })
    })())
}

impl ProtectedStore for SqliteStore {
    fn lookup_protected(&self, kids: &[KeyId]) -> Result<Vec<ProtectedKey>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, kind, robustness, min_hdcp, license_duration, playback_duration,
                    renewal_interval, can_persist
             FROM protected_keys WHERE kid = ?1",
        )?;
        let mut found = Vec::new();
        for kid in kids {
            let row = stmt
                .query_row(params![&kid[..]], |row| key_from_row(kid, row))
                .optional()?;
            if let Some(key) = row {
                found.push(key?);
            }
        }
        Ok(found)
    }

    fn import_protected(&self, keys: &[ProtectedKey]) -> Result<usize, StoreError> {
        self.import_all(&[], keys)
    }

    fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let key_ids = s.key_ids.concat();
        self.conn()
            .prepare_cached(
                "INSERT INTO protected_sessions (session_id, device_key, key_ids,
                     license_duration, playback_duration, renewal_interval, can_persist,
                     persistent, issued_at, renewed_at, released_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                &s.session_id[..],
                &s.device_key.as_bytes()[..],
                key_ids,
                s.policy.license_duration,
                s.policy.playback_duration,
                s.policy.renewal_interval,
                s.policy.can_persist,
                s.persistent,
                time_to_sql(s.issued_at),
                s.renewed_at.map(time_to_sql),
                s.released_at.map(time_to_sql),
            ])?;
        Ok(())
    }

    fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT session_id, device_key, key_ids, license_duration, playback_duration,
                        renewal_interval, can_persist, persistent, issued_at, renewed_at,
                        released_at
                 FROM protected_sessions WHERE session_id = ?1",
            )?
            .query_row(params![&id[..]], session_from_row)
            .optional()?;
        row.transpose()
    }

    fn record_renewal(&self, id: &SessionId, now: u64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE protected_sessions SET renewed_at = ?2 WHERE session_id = ?1")?
            .execute(params![&id[..], time_to_sql(now)])?;
        Ok(())
    }

    fn release_session(&self, id: &SessionId, now: u64) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE protected_sessions SET released_at = COALESCE(released_at, ?2)
                 WHERE session_id = ?1",
            )?
            .execute(params![&id[..], time_to_sql(now)])?;
        Ok(n > 0)
    }

    fn session_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM protected_sessions", [], |r| r.get(0))?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyStore;

    fn key(id: u8, kind: KeyKind) -> ProtectedKey {
        ProtectedKey {
            kid: [id; 16],
            key: ContentKey::new([id ^ 0xff; 16]),
            kind,
            robustness: Robustness::HW_SECURE_DECODE,
            min_hdcp: Hdcp::V2_2,
            policy: Policy {
                license_duration: 100,
                playback_duration: 50,
                renewal_interval: 10,
                can_persist: true,
            },
        }
    }

    #[test]
    fn protected_keys_round_trip_and_stay_apart_from_clear_key() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(
            store
                .import_protected(&[key(1, KeyKind::Content), key(2, KeyKind::Entitlement)])
                .unwrap(),
            2
        );
        let found = store
            .lookup_protected(&[[2; 16], [9; 16], [1; 16]])
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].kid, [2; 16]);
        assert_eq!(found[0].kind, KeyKind::Entitlement);
        assert_eq!(found[1].key.expose(), &[0xfe; 16]);
        assert_eq!(found[1].robustness, Robustness::HW_SECURE_DECODE);
        assert_eq!(found[1].min_hdcp, Hdcp::V2_2);
        assert_eq!(found[1].policy, key(1, KeyKind::Content).policy);
        // Not a Clear Key key.
        assert!(store
            .lookup(&[cdm_core::KeyId::from([1u8; 16])])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_robustness_set_is_refused_on_import() {
        let store = SqliteStore::open_in_memory().unwrap();
        let mut k = key(1, KeyKind::Content);
        k.robustness = Robustness::ALL;
        assert!(matches!(
            store.import_protected(&[k]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn corrupt_rows_are_reported() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.import_protected(&[key(1, KeyKind::Content)]).unwrap();
        for (sql, what) in [
            ("UPDATE protected_keys SET kind = 7", "kind"),
            (
                "UPDATE protected_keys SET kind = 1, robustness = 3",
                "robustness",
            ),
            (
                "UPDATE protected_keys SET robustness = 1, min_hdcp = 0x15",
                "HDCP",
            ),
            (
                "UPDATE protected_keys SET min_hdcp = 0, key = x'00'",
                "16 bytes",
            ),
        ] {
            store.conn().execute_batch(sql).unwrap();
            let err = store.lookup_protected(&[[1; 16]]).unwrap_err();
            assert!(err.to_string().contains(what), "{sql}: {err}");
        }
    }

    #[test]
    fn sessions_record_renewal_and_release_once() {
        use rand_core::OsRng;
        let store = SqliteStore::open_in_memory().unwrap();
        let device = protected_license::crypto::SigningKey::generate(&mut OsRng).public_key();
        let record = SessionRecord {
            session_id: [7; 16],
            device_key: device,
            key_ids: vec![[1; 16], [2; 16]],
            policy: key(1, KeyKind::Content).policy,
            persistent: true,
            issued_at: 1000,
            renewed_at: None,
            released_at: None,
        };
        store.insert_session(&record).unwrap();
        assert!(
            store.insert_session(&record).is_err(),
            "duplicate session ID"
        );
        assert_eq!(store.session_count().unwrap(), 1);
        assert_eq!(store.session(&[7; 16]).unwrap().as_ref(), Some(&record));
        assert_eq!(store.session(&[8; 16]).unwrap(), None);

        store.record_renewal(&[7; 16], 1500).unwrap();
        assert!(store.release_session(&[7; 16], 2000).unwrap());
        assert!(store.release_session(&[7; 16], 3000).unwrap());
        assert!(!store.release_session(&[8; 16], 3000).unwrap());
        let s = store.session(&[7; 16]).unwrap().unwrap();
        assert_eq!(s.renewed_at, Some(1500));
        assert_eq!(s.released_at, Some(2000));
    }
}
