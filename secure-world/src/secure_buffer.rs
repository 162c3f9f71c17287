//! Secure buffers: `HW_SECURE_DECODE` output that never leaves the secure world.

use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::fallible::try_copy;

/// One decrypted sample waiting for the secure output sink.
pub(crate) struct SecureBuffer {
    handle: u64,
    session: u64,
    /// Wiped over its whole capacity when dropped.
    data: Zeroizing<Vec<u8>>,
}

impl SecureBuffer {
    /// The clear sample.
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }
}

impl fmt::Debug for SecureBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureBuffer")
            .field("session", &self.session)
            .field("len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// The pool of live secure buffers, bounded by count and total bytes.
#[derive(Debug)]
pub(crate) struct Pool {
    buffers: Vec<SecureBuffer>,
    max_count: usize,
    max_bytes: usize,
    used_bytes: usize,
}

impl Pool {
    /// An empty pool; the table is allocated once, here.
    pub(crate) fn new(max_count: usize, max_bytes: usize) -> Result<Self, Error> {
        let mut buffers = Vec::new();
        buffers.try_reserve_exact(max_count)?;
        Ok(Pool {
            buffers,
            max_count,
            max_bytes,
            used_bytes: 0,
        })
    }

    /// Whether a buffer of `len` bytes fits the quotas.
    pub(crate) fn check_room(&self, len: usize) -> Result<(), Error> {
        let bytes = self
            .used_bytes
            .checked_add(len)
            .ok_or(Error::SecureBufferQuota)?;
        if self.buffers.len() >= self.max_count || bytes > self.max_bytes {
            return Err(Error::SecureBufferQuota);
        }
        Ok(())
    }

    /// Whether `handle` is in use.
    pub(crate) fn contains(&self, handle: u64) -> bool {
        self.buffers.iter().any(|b| b.handle == handle)
    }

    /// Copies `sample` (still encrypted) into a new buffer that is not in the pool yet.
    /// Checks the quotas first.
    pub(crate) fn allocate(&self, sample: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.check_room(sample.len())?;
        Ok(Zeroizing::new(try_copy(sample)?))
    }

    /// Adds a buffer made by [`Pool::allocate`] under `handle` (unused, non-zero).
    pub(crate) fn insert(
        &mut self,
        handle: u64,
        session: u64,
        data: Zeroizing<Vec<u8>>,
    ) -> Result<(), Error> {
        self.check_room(data.len())?;
        let bytes = self
            .used_bytes
            .checked_add(data.len())
            .ok_or(Error::SecureBufferQuota)?;
        // Capacity was reserved for `max_count` buffers: this never reallocates.
        self.buffers.try_reserve(1)?;
        self.buffers.push(SecureBuffer {
            handle,
            session,
            data,
        });
        self.used_bytes = bytes;
        Ok(())
    }

    /// The buffer `handle` owned by `session`.
    pub(crate) fn get(&self, handle: u64, session: u64) -> Result<&SecureBuffer, Error> {
        self.buffers
            .iter()
            .find(|b| handle != 0 && b.handle == handle && b.session == session)
            .ok_or(Error::NoSuchSecureBuffer)
    }

    /// Removes (and so wipes) the buffer `handle` owned by `session`.
    pub(crate) fn free(&mut self, handle: u64, session: u64) -> Result<(), Error> {
        let i = self
            .buffers
            .iter()
            .position(|b| handle != 0 && b.handle == handle && b.session == session)
            .ok_or(Error::NoSuchSecureBuffer)?;
        let buf = self.buffers.swap_remove(i);
        self.used_bytes = self.used_bytes.saturating_sub(buf.data.len());
        drop(buf);
        Ok(())
    }

    /// Wipes every buffer of `session` (the session is closing).
    pub(crate) fn free_session(&mut self, session: u64) {
        let mut freed = 0usize;
        self.buffers.retain(|b| {
            let keep = b.session != session;
            if !keep {
                freed = freed.saturating_add(b.data.len());
            }
            keep
        });
        self.used_bytes = self.used_bytes.saturating_sub(freed);
    }

    /// Live buffers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buffers.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quotas_count_buffers_and_bytes() {
        let mut pool = Pool::new(2, 10).unwrap();
        let a = pool.allocate(&[1; 6]).unwrap();
        pool.insert(7, 1, a).unwrap();
        assert!(matches!(
            pool.allocate(&[1; 5]),
            Err(Error::SecureBufferQuota)
        ));
        let b = pool.allocate(&[2; 4]).unwrap();
        pool.insert(8, 2, b).unwrap();
        assert!(matches!(pool.allocate(&[]), Err(Error::SecureBufferQuota)));
        // Owned by session 1 only.
        assert!(matches!(pool.get(7, 2), Err(Error::NoSuchSecureBuffer)));
        assert_eq!(pool.get(7, 1).unwrap().data(), &[1; 6]);
        pool.free_session(1);
        assert_eq!(pool.len(), 1);
        assert!(pool.contains(8) && !pool.contains(7));
        let c = pool.allocate(&[3; 6]).unwrap();
        pool.insert(9, 1, c).unwrap();
        pool.free(8, 2).unwrap();
        assert!(matches!(pool.free(8, 2), Err(Error::NoSuchSecureBuffer)));
    }
}
