//! The mapping of the shared region: the one module of the project with `unsafe` for memory
//! another process writes.
//!
//! The rules it keeps: the region is a `memfd` sealed against shrinking and growing, mapped
//! whole, so every address in it stays mapped while the mapping lives (no `SIGBUS`); the
//! control words are only touched as atomics; messages are only copied in and out through raw
//! pointers (no Rust reference to those bytes is ever made, since the peer may change them at
//! any moment); the one reference made to shared bytes is [`Region::sample_mut`], for the
//! host's in-place decrypt, whose bytes are plain data nobody branches on.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicU32;

use rustix::fs::{MemfdFlags, SealFlags};

use crate::{word, ShmError, LAYOUT};

/// The shared region, mapped read-write.
pub struct Region {
    /// Keeps the mapping alive; never read through (all access goes through `base`).
    _map: memmap2::MmapMut,
    /// The first byte of the mapping.
    base: *mut u8,
    fd: OwnedFd,
}

// SAFETY: `base` points into a mapping owned by the same value (`_map`), valid in every thread
// of the process; all access through it is either atomic or a raw copy whose races are the
// protocol's (see the module documentation), whichever thread makes it.
unsafe impl Send for Region {}

/// The seals a region must carry: its size can never change.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

impl Region {
    /// A new region ([`LAYOUT`]`.len` bytes of zeros), sealed and mapped: the player's side.
    pub fn create() -> Result<Region, ShmError> {
        let fd = rustix::fs::memfd_create(
            "tee-cdm-shared",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(ShmError::os("memfd_create"))?;
        let len =
            u64::try_from(LAYOUT.len).map_err(|_| ShmError::OutOfBounds("region length".into()))?;
        rustix::fs::ftruncate(&fd, len).map_err(ShmError::os("ftruncate"))?;
        rustix::fs::fcntl_add_seals(&fd, SEALS).map_err(ShmError::os("add seals"))?;
        let region = Region::map(fd)?;
        region
            .word(word::MAGIC)?
            .store(crate::MAGIC, std::sync::atomic::Ordering::SeqCst);
        Ok(region)
    }

    /// Maps a region handed over by the peer, after checking that it is sealed against any
    /// change of size and exactly [`LAYOUT`]`.len` bytes long: the host's side.
    pub fn adopt(fd: OwnedFd) -> Result<Region, ShmError> {
        let seals = rustix::fs::fcntl_get_seals(&fd).map_err(ShmError::os("get seals"))?;
        if !seals.contains(SEALS) {
            return Err(ShmError::Refused(format!(
                "not sealed against resizing (seals {seals:?})"
            )));
        }
        let stat = rustix::fs::fstat(&fd).map_err(ShmError::os("fstat"))?;
        if u64::try_from(stat.st_size).ok() != u64::try_from(LAYOUT.len).ok() {
            return Err(ShmError::Refused(format!(
                "{} bytes, not {}",
                stat.st_size, LAYOUT.len
            )));
        }
        let region = Region::map(fd)?;
        let magic = region
            .word(word::MAGIC)?
            .load(std::sync::atomic::Ordering::SeqCst);
        if magic != crate::MAGIC {
            return Err(ShmError::Refused(format!("magic {magic:#x}")));
        }
        Ok(region)
    }

    fn map(fd: OwnedFd) -> Result<Region, ShmError> {
        // SAFETY: memmap2's contract is that the file is not truncated while mapped: the
        // region is sealed against shrinking (checked by `adopt`, set by `create`), so it
        // cannot be. Other writers are expected; nothing here reads the bytes as Rust values
        // except through the rules of this module.
        let mut map = unsafe {
            memmap2::MmapOptions::new()
                .len(LAYOUT.len)
                .map_mut(&fd)
                .map_err(|e| ShmError::Os {
                    what: "mmap",
                    source: e,
                })?
        };
        let base = map.as_mut_ptr();
        Ok(Region {
            _map: map,
            base,
            fd,
        })
    }

    /// The descriptor, to hand over.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Control word `i` (see [`word`]).
    pub fn word(&self, i: usize) -> Result<&AtomicU32, ShmError> {
        if i >= word::COUNT {
            return Err(ShmError::OutOfBounds(format!("control word {i}")));
        }
        // SAFETY: `i * 4 + 4 <= word::COUNT * 4 <= LAYOUT.request <= len` (checked above and
        // at compile time), so the word lies in the mapping, which is page-aligned, so it is
        // 4-aligned; `AtomicU32` has the layout of `u32` and every bit pattern is valid; the
        // reference lives no longer than `&self`, hence than the mapping. The peer may access
        // the word at any time: it is only ever used atomically on our side.
        Ok(unsafe { &*self.base.add(i.saturating_mul(4)).cast::<AtomicU32>() })
    }

    /// Checks that `[at, at + len)` lies in the region.
    fn check(at: usize, len: usize) -> Result<(), ShmError> {
        match at.checked_add(len) {
            Some(end) if end <= LAYOUT.len => Ok(()),
            _ => Err(ShmError::OutOfBounds(format!("{len} bytes at {at}"))),
        }
    }

    /// Copies `data` into the region at `at`.
    pub fn write(&self, at: usize, data: &[u8]) -> Result<(), ShmError> {
        Region::check(at, data.len())?;
        // SAFETY: the range is inside the mapping (checked); `data` is our own memory, which
        // cannot overlap a mapping we never hand out references to (except `sample_mut`,
        // which borrows `self` mutably, so it cannot be alive during this `&self` call). The
        // peer may write the same bytes meanwhile; the copy is a raw copy, no reference.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(at), data.len());
        }
        Ok(())
    }

    /// Copies the bytes at `at` into `out` (a snapshot: the peer may change them meanwhile,
    /// and only the copy is ever looked at).
    pub fn read(&self, at: usize, out: &mut [u8]) -> Result<(), ShmError> {
        Region::check(at, out.len())?;
        // SAFETY: as in `write`, with the roles of the two buffers swapped.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(at), out.as_mut_ptr(), out.len());
        }
        Ok(())
    }

    /// The first `len` bytes of the sample area, for the secure world to decrypt in place.
    pub fn sample_mut(&mut self, len: usize) -> Result<&mut [u8], ShmError> {
        let room = LAYOUT.len.saturating_sub(LAYOUT.sample);
        if len > room {
            return Err(ShmError::OutOfBounds(format!("sample of {len} bytes")));
        }
        // SAFETY: the range is inside the mapping (checked), which stays mapped for the
        // borrow of `self` (sealed: it cannot shrink under us), and we make no other reference
        // to it meanwhile (`&mut self`). The peer process may write these bytes while the
        // secure world decrypts them; they are `u8`s with no invalid values, and the secure
        // world only runs AES over them — no length, index or branch comes from them — so a
        // concurrent write can change what the output bytes are, nothing else.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.base.add(LAYOUT.sample), len) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_region_is_adopted_and_shared() {
        let a = Region::create().unwrap();
        let fd = a.fd().try_clone_to_owned().unwrap();
        let mut b = Region::adopt(fd).unwrap();
        a.write(LAYOUT.request, b"hello").unwrap();
        let mut out = [0u8; 5];
        b.read(LAYOUT.request, &mut out).unwrap();
        assert_eq!(&out, b"hello");
        b.sample_mut(3).unwrap().copy_from_slice(b"abc");
        a.read(LAYOUT.sample, &mut out[..3]).unwrap();
        assert_eq!(&out[..3], b"abc");
        a.word(word::REQ_SEQ)
            .unwrap()
            .store(7, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            b.word(word::REQ_SEQ)
                .unwrap()
                .load(std::sync::atomic::Ordering::SeqCst),
            7
        );
    }

    #[test]
    fn out_of_bounds_is_an_error() {
        let mut a = Region::create().unwrap();
        assert!(a.word(word::COUNT).is_err());
        assert!(a.write(LAYOUT.len - 1, b"ab").is_err());
        assert!(a.write(usize::MAX, b"a").is_err());
        let mut out = [0u8; 2];
        assert!(a.read(LAYOUT.len - 1, &mut out).is_err());
        assert!(a.sample_mut(LAYOUT.len).is_err());
    }

    #[test]
    fn unsealed_wrong_size_or_foreign_regions_are_refused() {
        // No seals.
        let fd = rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, LAYOUT.len as u64).unwrap();
        assert!(matches!(Region::adopt(fd), Err(ShmError::Refused(_))));
        // Sealed, but too small.
        let fd =
            rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        rustix::fs::fcntl_add_seals(&fd, SEALS).unwrap();
        assert!(matches!(Region::adopt(fd), Err(ShmError::Refused(_))));
        // Sealed and sized, without the magic.
        let fd =
            rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, LAYOUT.len as u64).unwrap();
        rustix::fs::fcntl_add_seals(&fd, SEALS).unwrap();
        assert!(matches!(Region::adopt(fd), Err(ShmError::Refused(_))));
        // A regular file is not a memfd with seals.
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(Region::adopt(OwnedFd::from(f)).is_err());
    }
}
