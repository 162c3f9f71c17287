//! Persistent licenses: a sealed license table and one sealed record per license, kept in the
//! platform's [`SecureStorage`] and anchored to its [`MonotonicCounter`].
//!
//! What the store holds (every blob a [sealed record](crate::sealed)):
//! - `index`, the **license table** ([`RecordKind::LicenseTable`]): the table's generation and,
//!   for each stored license, its session id, the generation of its record and whether the
//!   license was released (removed, acknowledgement pending).
//! - `lic-<generation, 16 hex digits>`, one **license record** per license
//!   ([`RecordKind::License`]): session id, robustness, key IDs and keys. A record name is
//!   written once, at the generation it names, and never rewritten: no older copy of a name can
//!   exist, so a record cannot be rolled back on its own.
//!
//! Every change (store a license, release it, forget it) is one **commit**, answered only
//! when it is complete:
//! 1. write the new record, if any, under the next generation's name (`G + 1`);
//! 2. write the new table, sealed at `G + 1` (the put is atomic: old table or new);
//! 3. increment the counter to `G + 1`;
//! 4. delete the record the change superseded (a crash here leaves a record nothing names).
//!
//! When the store is opened, a table at the counter's value `C` is current; one at `C + 1`
//! is a commit that crashed between steps 2 and 3, finished now by incrementing the counter;
//! one below `C`, or no table while `C > 0`, is a store rolled back to an older copy and is
//! refused ([`StoreError::Rollback`]); so is a table above `C + 1` (the counter went back).
//! Records the table does not name are left-overs of interrupted commits and are deleted.
//!
//! A failed storage or counter operation during a commit makes the store unavailable until
//! the secure world restarts (re-opening reads what really reached storage); the failed
//! operation changed nothing the secure world had answered.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use cdm_core::abi::limits::{MAX_KEY_ID_LEN, MAX_SESSION_ID_LEN};
use cdm_core::abi::AbiError;
use cdm_core::codec::{Reader, Writer};
use cdm_core::{ContentKey, KeyId, Robustness};
use hal::platform::{
    BlobName, CounterError, DeviceRootKey, MonotonicCounter, RootKey, SecureRandom, SecureStorage,
    StorageError,
};
use zeroize::Zeroizing;

use crate::fallible::try_copy;
use crate::sealed::{seal, unseal, RecordKind, SealError, SealingKey, MAX_PLAINTEXT_LEN};

/// Name of the license table.
const TABLE_NAME: &str = "index";
/// Prefix of license record names.
const RECORD_PREFIX: &str = "lic-";
/// Format version of the table and of Clear Key license records.
const FORMAT_VERSION: u8 = 1;
/// Format version of license records that carry a protected-license extension.
const PROTECTED_FORMAT_VERSION: u8 = 2;
/// Name of the device identity record (the protected key system's device keys and chain).
const DEVICE_NAME: &str = "device";
/// Longest protected-license extension of a record.
const MAX_EXTENSION_LEN: usize = 4096;
/// Bytes of a table entry for a session id of `n` bytes: length byte, id, generation,
/// release flag.
const fn entry_len(n: usize) -> usize {
    n.saturating_add(10)
}
/// Fixed bytes of the table: version, reserved, generation, count.
const TABLE_HEADER_LEN: usize = 1 + 7 + 8 + 4;
/// The most entries a table can hold, whatever the configuration: what fits one sealed
/// record with 16-byte session ids (the ids the secure world draws).
pub(crate) const MAX_TABLE_ENTRIES: usize = (MAX_PLAINTEXT_LEN - TABLE_HEADER_LEN) / entry_len(16);

/// Why a storage operation failed. Carries no names, keys or contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("secure storage unavailable")]
    Unavailable,
    #[error("stored record failed authentication or is malformed")]
    Corrupt,
    #[error("stored record truncated")]
    Truncated,
    #[error("secure storage rolled back")]
    Rollback,
    #[error("stored license record missing")]
    Missing,
    #[error("persistent license quota exceeded")]
    Quota,
    #[error("out of memory")]
    OutOfMemory,
    #[error("random number generator failed")]
    Rng,
}

impl From<SealError> for StoreError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Truncated => StoreError::Truncated,
            SealError::Rollback { .. } => StoreError::Rollback,
            SealError::OutOfMemory => StoreError::OutOfMemory,
            SealError::Rng => StoreError::Rng,
            SealError::TooLarge => StoreError::Quota,
            SealError::KeyDerivation => StoreError::Unavailable,
            SealError::BadMagic
            | SealError::UnsupportedVersion(_)
            | SealError::WrongKind
            | SealError::NonZeroReserved
            | SealError::Authentication => StoreError::Corrupt,
        }
    }
}

impl From<StorageError> for StoreError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::OutOfMemory => StoreError::OutOfMemory,
            StorageError::Corrupt => StoreError::Corrupt,
            StorageError::NotFound => StoreError::Missing,
            StorageError::TooLarge | StorageError::Full => StoreError::Quota,
            StorageError::InvalidName | StorageError::Unavailable => StoreError::Unavailable,
        }
    }
}

impl From<CounterError> for StoreError {
    fn from(_: CounterError) -> Self {
        StoreError::Unavailable
    }
}

/// Authenticated plaintext that does not decode was sealed by this code, so it is a bug or a
/// broken key: reported as corrupt either way.
impl From<AbiError> for StoreError {
    fn from(e: AbiError) -> Self {
        match e {
            AbiError::OutOfMemory => StoreError::OutOfMemory,
            _ => StoreError::Corrupt,
        }
    }
}

impl From<alloc::collections::TryReserveError> for StoreError {
    fn from(_: alloc::collections::TryReserveError) -> Self {
        StoreError::OutOfMemory
    }
}

/// One row of the license table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The EME session id the license was stored under.
    pub(crate) id: Vec<u8>,
    /// Generation of its record (and so the record's name).
    pub(crate) generation: u64,
    /// Removed; the release acknowledgement is pending.
    pub(crate) released: bool,
}

/// A license read back from its record. Keys are wiped on drop.
pub(crate) struct StoredLicense {
    pub(crate) robustness: Robustness,
    pub(crate) keys: Vec<(KeyId, ContentKey)>,
    /// For a protected license: its policy state, key requirements and entitlement keys
    /// (`crate::protected`'s encoding; wiped on drop).
    pub(crate) protected: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for StoredLicense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredLicense")
            .field("robustness", &self.robustness)
            .field("keys", &self.keys.len())
            .field("protected", &self.protected.is_some())
            .finish_non_exhaustive()
    }
}

/// The persistent-license store of one secure world.
pub(crate) struct Store {
    storage: Box<dyn SecureStorage + Send>,
    counter: Box<dyn MonotonicCounter + Send>,
    record_key: SealingKey,
    table_key: SealingKey,
    device_key: SealingKey,
    /// The table as last committed.
    entries: Vec<Entry>,
    /// Generation of the committed table (equal to the counter).
    generation: u64,
    /// Set when the store cannot be used: opening found it rolled back or corrupt, or a
    /// commit failed half-way.
    fault: Option<StoreError>,
    max_licenses: usize,
    max_record_len: usize,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("licenses", &self.entries.len())
            .field("generation", &self.generation)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

fn table_name() -> Result<BlobName, StoreError> {
    BlobName::new(TABLE_NAME).map_err(|_| StoreError::Unavailable)
}

/// `lic-` and the generation as 16 lowercase hex digits.
fn record_name(generation: u64) -> Result<BlobName, StoreError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; RECORD_PREFIX.len() + 16];
    for (d, s) in buf.iter_mut().zip(RECORD_PREFIX.bytes()) {
        *d = s;
    }
    for (i, d) in buf.iter_mut().skip(RECORD_PREFIX.len()).enumerate() {
        let shift = 60usize.saturating_sub(i.saturating_mul(4));
        let nibble = usize::try_from((generation >> shift) & 0xf).unwrap_or(0);
        *d = HEX.get(nibble).copied().unwrap_or(b'0');
    }
    let name = core::str::from_utf8(&buf).map_err(|_| StoreError::Unavailable)?;
    BlobName::new(name).map_err(|_| StoreError::Unavailable)
}

impl Store {
    /// Opens the store: derives the sealing keys from the root key (wiped before returning),
    /// reads and checks the table against the counter, finishes a commit a crash interrupted,
    /// and deletes left-over records. Only a root key that cannot be read is an error; a store
    /// that fails its checks opens *faulted* and answers every operation with the reason.
    pub(crate) fn open(
        storage: Box<dyn SecureStorage + Send>,
        counter: Box<dyn MonotonicCounter + Send>,
        root: &dyn DeviceRootKey,
        max_licenses: usize,
        max_record_len: usize,
    ) -> Result<Self, hal::platform::RootKeyError> {
        let mut root_key = RootKey::zeroed();
        root.root_key(&mut root_key)?;
        let keys = SealingKey::derive(&root_key, RecordKind::License).and_then(|r| {
            let t = SealingKey::derive(&root_key, RecordKind::LicenseTable)?;
            let d = SealingKey::derive(&root_key, RecordKind::DeviceIdentity)?;
            Ok((r, t, d))
        });
        drop(root_key);
        let (record_key, table_key, device_key) =
            keys.map_err(|_| hal::platform::RootKeyError::Unavailable)?;
        let mut store = Store {
            storage,
            counter,
            record_key,
            table_key,
            device_key,
            entries: Vec::new(),
            generation: 0,
            fault: None,
            max_licenses,
            max_record_len,
        };
        match store.recover() {
            Ok(()) => store.collect_garbage(),
            Err(e) => store.fault = Some(e),
        }
        Ok(store)
    }

    /// Reads the table, checks it against the counter and rolls an interrupted commit
    /// forward.
    fn recover(&mut self) -> Result<(), StoreError> {
        let counter = self.counter.read()?;
        let name = table_name()?;
        let mut blob = Vec::new();
        match self.storage.get(&name, &mut blob) {
            Ok(()) => {}
            Err(StorageError::NotFound) if counter == 0 => return Ok(()),
            // The counter says a table was committed: it was deleted or rolled back.
            Err(StorageError::NotFound) => return Err(StoreError::Rollback),
            Err(e) => return Err(e.into()),
        }
        let plain = unseal(&self.table_key, &name, Some(counter), &blob)?;
        let (generation, entries) = decode_table(&plain)?;
        if generation == counter.checked_add(1).ok_or(StoreError::Rollback)? {
            // Steps 2 and 3 of a commit were interrupted: finish it.
            if self.counter.increment()? != generation {
                return Err(StoreError::Unavailable);
            }
        } else if generation != counter {
            // Sealed at a generation the counter has not reached: the counter went back.
            return Err(StoreError::Rollback);
        }
        self.entries = entries;
        self.generation = generation;
        Ok(())
    }

    /// Deletes records the table does not name (best effort: a failure leaves them for the
    /// next open).
    fn collect_garbage(&mut self) {
        let mut names = Vec::new();
        if self.storage.list(&mut names).is_err() {
            return;
        }
        for name in names {
            if !name.as_str().starts_with(RECORD_PREFIX) {
                continue;
            }
            let named = self
                .entries
                .iter()
                .any(|e| record_name(e.generation).is_ok_and(|n| n == name));
            if !named {
                let _ = self.storage.delete(&name);
            }
        }
    }

    /// Fails with the reason the store cannot be used, if any.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match self.fault {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The table entry of session `id`.
    pub(crate) fn find(&self, id: &[u8]) -> Result<Option<&Entry>, StoreError> {
        self.check()?;
        Ok(self.entries.iter().find(|e| e.id == id))
    }

    /// Reads and checks the record of `entry`; its session id must be the entry's.
    pub(crate) fn read(&self, entry: &Entry) -> Result<StoredLicense, StoreError> {
        self.check()?;
        let name = record_name(entry.generation)?;
        let mut blob = Vec::new();
        self.storage.get(&name, &mut blob)?;
        let plain = unseal(&self.record_key, &name, Some(entry.generation), &blob)?;
        let (id, license) = decode_record(&plain)?;
        if id != entry.id.as_slice() {
            return Err(StoreError::Corrupt);
        }
        Ok(license)
    }

    /// The device identity record's plaintext, `None` if none was stored yet. The record is
    /// outside the license table: it is written once per provisioning and a rolled-back copy
    /// only costs a new provisioning (`docs/storage.md`).
    pub(crate) fn read_device(&self) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let name = BlobName::new(DEVICE_NAME).map_err(|_| StoreError::Unavailable)?;
        let mut blob = Vec::new();
        match self.storage.get(&name, &mut blob) {
            Ok(()) => Ok(Some(unseal(&self.device_key, &name, None, &blob)?)),
            Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Seals and writes the device identity record (an atomic replace).
    pub(crate) fn write_device(
        &mut self,
        plain: &[u8],
        rng: &impl SecureRandom,
    ) -> Result<(), StoreError> {
        let name = BlobName::new(DEVICE_NAME).map_err(|_| StoreError::Unavailable)?;
        let blob = seal(&self.device_key, &name, 0, plain, rng)?;
        self.storage.put(&name, &blob)?;
        Ok(())
    }

    /// Checks that a license of `keys` for session `id` can be stored (quota on licenses and
    /// on record length) and encodes its record; `protected` is the extension of a protected
    /// license.
    pub(crate) fn prepare(
        &self,
        id: &[u8],
        robustness: Robustness,
        keys: &[(KeyId, ContentKey)],
        protected: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.check()?;
        let known = self.entries.iter().any(|e| e.id == id);
        if !known && self.entries.len() >= self.max_licenses.min(MAX_TABLE_ENTRIES) {
            return Err(StoreError::Quota);
        }
        let record = encode_record(id, robustness, keys, protected)?;
        if record.len() > self.max_record_len.min(MAX_PLAINTEXT_LEN) {
            return Err(StoreError::Quota);
        }
        Ok(record)
    }

    /// Stores `record` (from [`Store::prepare`]) for session `id`, replacing its earlier
    /// record.
    pub(crate) fn store(
        &mut self,
        id: &[u8],
        record: &[u8],
        rng: &impl SecureRandom,
    ) -> Result<(), StoreError> {
        self.check()?;
        let generation = self.next_generation()?;
        let mut entries = self.copy_entries(1)?;
        let superseded = entries
            .iter()
            .position(|e| e.id == id)
            .map(|i| entries.swap_remove(i));
        entries.push(Entry {
            id: try_copy(id)?,
            generation,
            released: false,
        });
        self.commit(entries, Some(record), superseded.map(|e| e.generation), rng)
    }

    /// Marks the license of session `id` released (removed, acknowledgement pending).
    pub(crate) fn mark_released(
        &mut self,
        id: &[u8],
        rng: &impl SecureRandom,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut entries = self.copy_entries(0)?;
        let entry = entries
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or(StoreError::Missing)?;
        entry.released = true;
        self.commit(entries, None, None, rng)
    }

    /// Deletes the license of session `id` (its release was acknowledged).
    pub(crate) fn forget(&mut self, id: &[u8], rng: &impl SecureRandom) -> Result<(), StoreError> {
        self.check()?;
        let mut entries = self.copy_entries(0)?;
        let i = entries
            .iter()
            .position(|e| e.id == id)
            .ok_or(StoreError::Missing)?;
        let gone = entries.swap_remove(i);
        self.commit(entries, None, Some(gone.generation), rng)
    }

    fn next_generation(&self) -> Result<u64, StoreError> {
        self.generation
            .checked_add(1)
            .ok_or(StoreError::Unavailable)
    }

    /// A fallible copy of the table with room for `extra` more entries.
    fn copy_entries(&self, extra: usize) -> Result<Vec<Entry>, StoreError> {
        let mut v = Vec::new();
        v.try_reserve_exact(self.entries.len().saturating_add(extra))?;
        for e in &self.entries {
            v.push(Entry {
                id: try_copy(&e.id)?,
                generation: e.generation,
                released: e.released,
            });
        }
        Ok(v)
    }

    /// Steps 1–4 of the module docs. Anything failing once storage was touched faults the
    /// store (see the module docs).
    fn commit(
        &mut self,
        entries: Vec<Entry>,
        record: Option<&[u8]>,
        superseded: Option<u64>,
        rng: &impl SecureRandom,
    ) -> Result<(), StoreError> {
        let generation = self.next_generation()?;
        let table = encode_table(generation, &entries)?;
        let table_blob = seal(&self.table_key, &table_name()?, generation, &table, rng)?;
        let record_blob = match record {
            Some(plain) => Some(seal(
                &self.record_key,
                &record_name(generation)?,
                generation,
                plain,
                rng,
            )?),
            None => None,
        };
        // Nothing touched storage yet: failures above change nothing.
        let written = self.write(generation, record_blob.as_deref(), &table_blob);
        if let Err(e) = written {
            self.fault = Some(StoreError::Unavailable);
            return Err(e);
        }
        self.entries = entries;
        self.generation = generation;
        if let Some(old) = superseded {
            // Best effort: a record left behind is deleted at the next open.
            if let Ok(name) = record_name(old) {
                let _ = self.storage.delete(&name);
            }
        }
        Ok(())
    }

    fn write(
        &mut self,
        generation: u64,
        record: Option<&[u8]>,
        table: &[u8],
    ) -> Result<(), StoreError> {
        if let Some(blob) = record {
            self.storage.put(&record_name(generation)?, blob)?;
        }
        self.storage.put(&table_name()?, table)?;
        if self.counter.increment()? != generation {
            return Err(StoreError::Unavailable);
        }
        Ok(())
    }
}

/// `u8 version, u8[7] reserved, u64 generation, u32 count`, then per entry `bytes8 id,
/// u64 generation, u8 released`.
fn encode_table(generation: u64, entries: &[Entry]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let len = entries.iter().try_fold(TABLE_HEADER_LEN, |n, e| {
        n.checked_add(entry_len(e.id.len()))
    });
    out.try_reserve_exact(len.ok_or(StoreError::Quota)?)?;
    let mut w = Writer::new(&mut out);
    w.u8(FORMAT_VERSION)?;
    w.reserved(7)?;
    w.u64(generation)?;
    w.u32(u32::try_from(entries.len()).map_err(|_| StoreError::Quota)?)?;
    for e in entries {
        w.bytes_u8(&e.id, MAX_SESSION_ID_LEN)?;
        w.u64(e.generation)?;
        w.u8(u8::from(e.released))?;
    }
    Ok(out)
}

fn decode_table(plain: &[u8]) -> Result<(u64, Vec<Entry>), StoreError> {
    let mut r = Reader::new(plain);
    if r.u8()? != FORMAT_VERSION {
        return Err(StoreError::Corrupt);
    }
    r.reserved(7)?;
    let generation = r.u64()?;
    let count = usize::try_from(r.u32()?).map_err(|_| StoreError::Corrupt)?;
    if count > MAX_TABLE_ENTRIES {
        return Err(StoreError::Corrupt);
    }
    let mut entries: Vec<Entry> = Vec::new();
    entries.try_reserve_exact(count)?;
    for _ in 0..count {
        let raw = r.bytes_u8(MAX_SESSION_ID_LEN)?;
        let record_generation = r.u64()?;
        let released = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(StoreError::Corrupt),
        };
        if entries.iter().any(|e| e.id == raw) || record_generation > generation {
            return Err(StoreError::Corrupt);
        }
        entries.push(Entry {
            id: try_copy(raw)?,
            generation: record_generation,
            released,
        });
    }
    r.finish()?;
    Ok((generation, entries))
}

/// `u8 version, u8 robustness, bytes8 session_id, u16 count`, then per key `bytes16 kid,
/// u8[16] key`; version 2 adds `bytes16 extension` (a protected license). Built in a buffer
/// wiped on drop.
fn encode_record(
    id: &[u8],
    robustness: Robustness,
    keys: &[(KeyId, ContentKey)],
    protected: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let extra = protected.map_or(0, |p| p.len().saturating_add(2));
    let len = keys.iter().try_fold(
        4usize
            .saturating_add(id.len())
            .saturating_add(2)
            .saturating_add(extra),
        |n, (kid, _)| {
            n.checked_add(2)?
                .checked_add(kid.as_bytes().len())?
                .checked_add(16)
        },
    );
    let len = len.ok_or(StoreError::Quota)?;
    if len > MAX_PLAINTEXT_LEN {
        return Err(StoreError::Quota);
    }
    let mut out = Zeroizing::new(Vec::new());
    out.try_reserve_exact(len)?;
    let mut w = Writer::new(&mut out);
    w.u8(match protected {
        None => FORMAT_VERSION,
        Some(_) => PROTECTED_FORMAT_VERSION,
    })?;
    w.u8(robustness.to_wire())?;
    w.bytes_u8(id, MAX_SESSION_ID_LEN)?;
    w.u16(u16::try_from(keys.len()).map_err(|_| StoreError::Quota)?)?;
    for (kid, key) in keys {
        w.bytes_u16(kid.as_bytes(), MAX_KEY_ID_LEN)?;
        w.put(key.as_bytes())?;
    }
    if let Some(ext) = protected {
        w.bytes_u16(ext, MAX_EXTENSION_LEN)?;
    }
    Ok(out)
}

fn decode_record(plain: &[u8]) -> Result<(&[u8], StoredLicense), StoreError> {
    let mut r = Reader::new(plain);
    let version = r.u8()?;
    if version != FORMAT_VERSION && version != PROTECTED_FORMAT_VERSION {
        return Err(StoreError::Corrupt);
    }
    let robustness = Robustness::from_wire(r.u8()?).ok_or(StoreError::Corrupt)?;
    let id = r.bytes_u8(MAX_SESSION_ID_LEN)?;
    let count = usize::from(r.u16()?);
    let mut keys: Vec<(KeyId, ContentKey)> = Vec::new();
    keys.try_reserve_exact(count)?;
    for _ in 0..count {
        let kid = KeyId::new(r.bytes_u16(MAX_KEY_ID_LEN)?).map_err(|_| StoreError::Corrupt)?;
        let key = ContentKey::from_slice(r.take(16)?).ok_or(StoreError::Corrupt)?;
        if keys.iter().any(|(k, _)| *k == kid) {
            return Err(StoreError::Corrupt);
        }
        keys.push((kid, key));
    }
    let protected = if version == PROTECTED_FORMAT_VERSION {
        Some(Zeroizing::new(try_copy(r.bytes_u16(MAX_EXTENSION_LEN)?)?))
    } else {
        None
    };
    r.finish()?;
    Ok((
        id,
        StoredLicense {
            robustness,
            keys,
            protected,
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn record_names_are_fixed_width_hex() {
        assert_eq!(record_name(0).unwrap().as_str(), "lic-0000000000000000");
        assert_eq!(
            record_name(0x1234_abcd).unwrap().as_str(),
            "lic-000000001234abcd"
        );
        assert_eq!(
            record_name(u64::MAX).unwrap().as_str(),
            "lic-ffffffffffffffff"
        );
        assert_eq!(table_name().unwrap().as_str(), "index");
    }

    #[test]
    fn a_full_table_fits_one_sealed_record() {
        let entries: Vec<Entry> = (0..MAX_TABLE_ENTRIES)
            .map(|i| Entry {
                id: alloc::format!("{i:016x}").into_bytes(),
                generation: 1,
                released: false,
            })
            .collect();
        let table = encode_table(2, &entries).unwrap();
        assert!(table.len() <= MAX_PLAINTEXT_LEN);
        assert_eq!(decode_table(&table).unwrap(), (2, entries));
    }

    #[test]
    fn records_round_trip_and_reject_duplicates() {
        let kid = KeyId::new(&[7; 16]).unwrap();
        let keys = alloc::vec![(kid.clone(), ContentKey::new([9; 16]))];
        let rec =
            encode_record(b"0123456789abcdef", Robustness::SwSecureCrypto, &keys, None).unwrap();
        let (id, lic) = decode_record(&rec).unwrap();
        assert_eq!(id, b"0123456789abcdef");
        assert_eq!(lic.robustness, Robustness::SwSecureCrypto);
        assert_eq!(lic.keys.len(), 1);
        assert_eq!(lic.keys[0].1.as_bytes(), &[9; 16]);
        let twice = alloc::vec![
            (kid.clone(), ContentKey::new([1; 16])),
            (kid, ContentKey::new([2; 16]))
        ];
        let rec = encode_record(b"x", Robustness::SwSecureCrypto, &twice, None).unwrap();
        assert_eq!(decode_record(&rec).unwrap_err(), StoreError::Corrupt);
        assert_eq!(
            decode_record(&rec[..rec.len() - 1]).unwrap_err(),
            StoreError::Corrupt
        );
    }
}
