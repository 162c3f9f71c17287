//! Where the server finds content keys and their policy.
//!
//! The HTTP side sees only [`KeyStore`], a small synchronous trait, so that the SQLite file of
//! [`SqliteStore`] can later be replaced by a database server that several license servers
//! share. Calls may block: the server runs them on Tokio's blocking pool
//! (`tokio::task::spawn_blocking`), never on a reactor thread.
//!
//! Content keys travel as [`ContentKey`] (zeroized on drop, `Debug` prints no bytes), so a
//! [`StoredKey`] can be dropped, logged with `{:?}` or returned in an error without leaking
//! key material.
//!
//! The same database holds the protected key system's keys and sessions, in tables of their
//! own ([`crate::protected::store`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use cdm_core::{ContentKey, KeyId};
use rusqlite::{params, Connection, OptionalExtension};

/// One content key and its policy, as the store holds it (returned by [`KeyStore::lookup`],
/// given to [`KeyStore::import`]).
#[derive(Clone)]
pub struct StoredKey {
    /// The key ID (public).
    pub kid: KeyId,
    /// The content key (secret; wiped on drop).
    pub key: ContentKey,
    /// Whether the key may be delivered in a `persistent-license` session (EME §6.2), i.e.
    /// stored by the client for offline playback.
    pub allow_persistent: bool,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is left out by name, not merely by relying on `ContentKey`'s own `Debug`.
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("allow_persistent", &self.allow_persistent)
            .finish_non_exhaustive()
    }
}

/// Why the store could not answer. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (open, schema, query, commit).
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// Creating the database file failed.
    #[error("{path}: {source}")]
    Io {
        /// The database file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A stored row is not a valid key (a key that is not 16 bytes, a key ID outside
    /// 1..=512 bytes): the database was written by something else.
    #[error("corrupt key store: {0}")]
    Corrupt(&'static str),
}

/// A source of content keys and their policy.
///
/// Implementations are shared by all request handlers (`Send + Sync`) and may block.
pub trait KeyStore: Send + Sync {
    /// The stored keys among `kids`, in the order of `kids`; key IDs the store does not know
    /// are left out (an empty result is not an error). `kids` has no duplicates when it comes
    /// from a parsed license request.
    fn lookup(&self, kids: &[KeyId]) -> Result<Vec<StoredKey>, StoreError>;

    /// Adds `keys`, replacing the key and policy of key IDs already stored; all or nothing.
    /// Returns the number of keys written.
    fn import(&self, keys: &[StoredKey]) -> Result<usize, StoreError>;
}

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema: one row per key ID. `CREATE ... IF NOT EXISTS`, so opening an existing store
/// keeps its keys.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS keys (
    kid BLOB PRIMARY KEY,
    key BLOB NOT NULL,
    allow_persistent INTEGER NOT NULL
)";

/// A [`KeyStore`] in an SQLite database file, table
/// `keys(kid BLOB PRIMARY KEY, key BLOB NOT NULL, allow_persistent INTEGER NOT NULL)`.
///
/// One connection behind a mutex: SQLite serializes writers anyway, and a lookup is a few
/// primary-key reads. The database is opened in WAL mode with a busy timeout, so other
/// processes (an `import` while the server runs) can use the same file.
///
/// The file holds keys in clear: it is created readable by its owner only (mode `0600`), and
/// `secure_delete` is on, so SQLite overwrites a replaced key's bytes instead of leaving them
/// in a free page. SQLite's page cache in this process also holds key bytes; it is not wiped.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file (mode `0600`) and the table if they do
    /// not exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_private_file(path)?;
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// A store in memory, empty, gone when dropped (for tests and simulations).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // `journal_mode` answers with the mode in force (`memory` for an in-memory database).
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA secure_delete = ON;")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::protected::store::SCHEMA)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// Imports Clear Key keys and protected keys in one transaction (all or nothing), as
    /// [`KeyStore::import`] and
    /// [`ProtectedStore::import_protected`](crate::protected::ProtectedStore::import_protected)
    /// do each. Returns the number of keys written.
    pub fn import_all(
        &self,
        clearkey: &[StoredKey],
        protected: &[crate::protected::ProtectedKey],
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        import_clearkey_in(&tx, clearkey)?;
        crate::protected::store::import_in(&tx, protected)?;
        tx.commit()?;
        Ok(clearkey.len().saturating_add(protected.len()))
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the connection half-updated: every write
        // is one transaction, rolled back when dropped.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Creates `path` with mode `0600` if it does not exist, so that SQLite (which keeps the mode
/// of an existing file, and gives its WAL and shared-memory files the same mode) never makes
/// a world-readable key file.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl KeyStore for SqliteStore {
    fn lookup(&self, kids: &[KeyId]) -> Result<Vec<StoredKey>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT key, allow_persistent FROM keys WHERE kid = ?1")?;
        let mut found = Vec::new();
        for kid in kids {
            let row = stmt
                .query_row(params![kid.as_bytes()], |row| {
                    // Copied straight from SQLite's row buffer into the zeroizing key: no
                    // intermediate `Vec`.
                    let key = ContentKey::from_slice(row.get_ref(0)?.as_blob()?);
                    let allow_persistent: bool = row.get(1)?;
                    Ok((key, allow_persistent))
                })
                .optional()?;
            if let Some((key, allow_persistent)) = row {
                let key = key.ok_or(StoreError::Corrupt("stored key is not 16 bytes"))?;
                let kid = kid
                    .try_clone()
                    .map_err(|_| StoreError::Corrupt("key ID copy failed"))?;
                found.push(StoredKey {
                    kid,
                    key,
                    allow_persistent,
                });
            }
        }
        Ok(found)
    }

    fn import(&self, keys: &[StoredKey]) -> Result<usize, StoreError> {
        self.import_all(keys, &[])
    }
}

fn import_clearkey_in(
    tx: &rusqlite::Transaction<'_>,
    keys: &[StoredKey],
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO keys (kid, key, allow_persistent) VALUES (?1, ?2, ?3)
         ON CONFLICT (kid) DO UPDATE
         SET key = excluded.key, allow_persistent = excluded.allow_persistent",
    )?;
    for k in keys {
        // SQLite copies the bound blob into its own memory; no copy is made here.
        stmt.execute(params![
            k.kid.as_bytes(),
            &k.key.as_bytes()[..],
            k.allow_persistent
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: u8, key: u8, allow_persistent: bool) -> StoredKey {
        StoredKey {
            kid: KeyId::from([kid; 16]),
            key: ContentKey::new([key; 16]),
            allow_persistent,
        }
    }

    #[test]
    fn lookup_returns_known_keys_in_request_order() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(
            store
                .import(&[key(1, 0xa1, false), key(2, 0xa2, true)])
                .unwrap(),
            2
        );
        let kids = [
            KeyId::from([2; 16]),
            KeyId::from([9; 16]),
            KeyId::from([1; 16]),
        ];
        let found = store.lookup(&kids).unwrap();
        let got: Vec<_> = found
            .iter()
            .map(|k| (k.kid.as_bytes()[0], k.key.as_bytes()[0], k.allow_persistent))
            .collect();
        assert_eq!(got, [(2, 0xa2, true), (1, 0xa1, false)]);
    }

    #[test]
    fn import_replaces_key_and_policy() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.import(&[key(1, 0x11, false)]).unwrap();
        store.import(&[key(1, 0x22, true)]).unwrap();
        let found = store.lookup(&[KeyId::from([1; 16])]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key.as_bytes(), &[0x22; 16]);
        assert!(found[0].allow_persistent);
    }

    #[test]
    fn a_key_of_the_wrong_length_in_the_file_is_corruption() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .conn()
            .execute(
                "INSERT INTO keys VALUES (?1, ?2, 0)",
                params![&[7u8; 16][..], &[1u8; 15][..]],
            )
            .unwrap();
        let err = store.lookup(&[KeyId::from([7; 16])]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let k = key(0x33, 0xee, true);
        let s = format!("{k:?}");
        assert!(s.contains("allow_persistent: true"), "{s}");
        assert!(
            !s.contains("238") && !s.to_lowercase().contains("ee"),
            "{s}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = cdm_testkit::temp::TempDir::new("ls-store-mode");
        let path = dir.join("keys.db");
        SqliteStore::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
