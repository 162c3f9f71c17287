//! Opaque handles: tokens that name live objects, checked on every use.
//!
//! A handle given to C is not the address of anything: it is a number drawn from one
//! process-wide counter, shown to C as a pointer to an incomplete struct type (so the
//! compiler keeps handle types apart). Each object type has a registry mapping live handles to
//! `Arc`s. A call looks its handle up and works on a clone of the `Arc`, so:
//! - a freed, never-issued or wrong-typed handle is `TEE_CDM_STATUS_BAD_HANDLE`, not a
//!   use-after-free (handles are never reused: the counter does not wrap in practice);
//! - freeing a handle while another thread is inside a call on it is safe: the object lives
//!   until that call returns.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::status::{Failure, TeeCdmStatus};

/// The next handle value; steps of 16 keep handles looking like aligned pointers in a
/// debugger, and far from small integers C might pass by mistake.
static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(0x7ead_0000);
const HANDLE_STEP: usize = 16;

/// The live objects of one type.
pub(crate) struct Registry<T> {
    type_name: &'static str,
    live: Mutex<BTreeMap<usize, Arc<T>>>,
}

impl<T> Registry<T> {
    pub(crate) const fn new(type_name: &'static str) -> Registry<T> {
        Registry {
            type_name,
            live: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<usize, Arc<T>>> {
        // The map is consistent after any panic (insert and remove are single operations).
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `value` and answers its new handle, as a pointer to the opaque type `H`.
    pub(crate) fn insert<H>(&self, value: T) -> Result<*mut H, Failure> {
        let handle = NEXT_HANDLE
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                h.checked_add(HANDLE_STEP)
            })
            .map_err(|_| Failure::new(TeeCdmStatus::OutOfMemory, "handles exhausted"))?;
        self.lock().insert(handle, Arc::new(value));
        Ok(std::ptr::without_provenance_mut(handle))
    }

    /// The object `handle` names.
    pub(crate) fn get<H>(&self, handle: *const H) -> Result<Arc<T>, Failure> {
        if handle.is_null() {
            return Err(Failure::null(self.type_name));
        }
        self.lock()
            .get(&handle.addr())
            .cloned()
            .ok_or_else(|| self.bad_handle())
    }

    /// Unregisters `handle`; the object is dropped when the last call using it returns.
    /// NULL is accepted and does nothing (as `free(NULL)` does).
    pub(crate) fn remove<H>(&self, handle: *const H) -> Result<(), Failure> {
        if handle.is_null() {
            return Ok(());
        }
        let removed = self.lock().remove(&handle.addr());
        // Dropped here, after the registry lock is released: dropping a MediaKeys may wait for
        // a host process to exit.
        removed.map(drop).ok_or_else(|| self.bad_handle())
    }

    fn bad_handle(&self) -> Failure {
        Failure::new(
            TeeCdmStatus::BadHandle,
            format!("not a live {} handle", self.type_name),
        )
    }
}
