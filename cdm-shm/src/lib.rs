//! # cdm-shm — the shared memory between a player and its secure-world host
//!
//! The shared-memory transport (`normal_world::transport::SocketTransport::with_shared_memory`,
//! served by `secure-world-host`) passes requests, responses and samples through one region
//! both processes map, and rings a doorbell (a futex word in the region) instead of writing
//! to the socket; the socket only hands the region over (`SCM_RIGHTS`) and tells each side
//! when the other has gone. `docs/abi.md` ("Shared memory") describes the layout and the
//! protocol; this crate is the one place that maps memory another process can write, so all
//! of the project's `unsafe` for it is here, in [`region`].
//!
//! - [`Region`]: a sealed `memfd` (it can neither shrink nor grow, so a mapping of it never
//!   faults) mapped read-write; created by the player, adopted by the host after it checked
//!   the seals and the size.
//! - [`Layout`]: where the control words, the request, the response and the sample are.
//! - [`Doorbell`]: spin briefly, then sleep on the futex, with a deadline and a check of the
//!   peer between sleeps.
//! - [`send_region`] / [`recv_first`]: the hand-over over a Unix socket.
//!
//! Everything read from the region is treated as hostile: lengths are copied out once and
//! checked, messages are copied out before they are parsed.
#![warn(missing_docs)]
#![deny(unsafe_code)]
#![allow(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod region;

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cdm_core::abi::frame::MAX_MESSAGE_FRAME;
use cdm_core::abi::limits::MAX_SAMPLE_LEN;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

pub use region::Region;

/// Why the shared region cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The region handed over is not what the protocol requires.
    #[error("unusable shared region: {0}")]
    Refused(String),
    /// A length or offset read from the region (or asked for) is out of bounds.
    #[error("out of bounds: {0}")]
    OutOfBounds(String),
}

impl ShmError {
    fn os(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> ShmError {
        move |e| ShmError::Os {
            what,
            source: e.into(),
        }
    }
}

/// The control words, by index (each a `u32` in the first bytes of the region).
pub mod word {
    /// Request sequence number: the player increments it to post a request.
    pub const REQ_SEQ: usize = 0;
    /// Response sequence number: the host sets it to the request's when the answer is ready.
    pub const RESP_SEQ: usize = 1;
    /// Length of the request message.
    pub const REQ_LEN: usize = 2;
    /// Length of the sample.
    pub const SAMPLE_LEN: usize = 3;
    /// Length of the response message.
    pub const RESP_LEN: usize = 4;
    /// The sample's length again if the host decrypted it in place (the sample region then
    /// holds the clear sample), else 0.
    pub const SAMPLE_BACK: usize = 5;
    /// 1 while the host sleeps on [`REQ_SEQ`] (the player must wake it).
    pub const HOST_WAITING: usize = 6;
    /// 1 while the player sleeps on [`RESP_SEQ`] (the host must wake it).
    pub const PLAYER_WAITING: usize = 7;
    /// Protocol magic and version, written by the player: [`super::MAGIC`].
    pub const MAGIC: usize = 8;
    /// How many words there are.
    pub const COUNT: usize = 9;
}

/// `"TCS1"`: tee-cdm shared memory, protocol 1.
pub const MAGIC: u32 = u32::from_be_bytes(*b"TCS1");

/// Where things are in the region. All offsets are multiples of 64 (a cache line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Start of the request message.
    pub request: usize,
    /// Start of the response message.
    pub response: usize,
    /// Start of the sample.
    pub sample: usize,
    /// Length of the region.
    pub len: usize,
}

/// The region's layout: a 4 KiB control page, then a request and a response of up to
/// `MAX_MESSAGE_FRAME` bytes each, then a sample of up to `MAX_SAMPLE_LEN`, each rounded up to
/// 4 KiB.
pub const LAYOUT: Layout = {
    const PAGE: usize = 4096;
    const fn round(n: usize) -> usize {
        n.div_ceil(PAGE) * PAGE
    }
    let request = PAGE;
    let response = request + round(MAX_MESSAGE_FRAME);
    let sample = response + round(MAX_MESSAGE_FRAME);
    Layout {
        request,
        response,
        sample,
        len: sample + round(MAX_SAMPLE_LEN),
    }
};

const _: () = assert!(word::COUNT * 4 <= LAYOUT.request);

/// The marker the player sends (as a 4-byte frame length no message can have) with the
/// region's file descriptor, to ask for the shared-memory protocol.
pub const OFFER: u32 = u32::MAX;

/// Hands `region` to the peer of `socket`: the 4 bytes of [`OFFER`] with the descriptor.
pub fn send_region(socket: &UnixStream, region: &Region) -> Result<(), ShmError> {
    let fds = [region.fd()];
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(ShmError::Refused("no room for the descriptor".into()));
    }
    let bytes = OFFER.to_le_bytes();
    let sent = rustix::net::sendmsg(
        socket,
        &[io::IoSlice::new(&bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(ShmError::os("sendmsg"))?;
    if sent != bytes.len() {
        return Err(ShmError::Refused("short write of the offer".into()));
    }
    Ok(())
}

/// What the first 4 bytes of a connection were.
pub enum FirstWord {
    /// A shared region offered with [`OFFER`]: its descriptor.
    Offer(OwnedFd),
    /// Anything else: the first 4 bytes of a socket frame (no descriptor came with them).
    Frame([u8; 4]),
    /// The peer closed before sending 4 bytes.
    Closed,
}

/// Reads the first 4 bytes of a connection, with any descriptor that came with them
/// (descriptors that come with anything but [`OFFER`] are closed).
pub fn recv_first(socket: &UnixStream) -> Result<FirstWord, ShmError> {
    let mut word = [0u8; 4];
    let mut got = 0usize;
    let mut fd = None;
    while got < word.len() {
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let rest = word.get_mut(got..).unwrap_or_default();
        let msg = rustix::net::recvmsg(
            socket,
            &mut [io::IoSliceMut::new(rest)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        );
        let msg = match msg {
            Ok(m) => m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(ShmError::os("recvmsg")(e)),
        };
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for f in fds {
                    // Only the first descriptor is kept; extra ones are closed.
                    if fd.is_none() {
                        fd = Some(f);
                    }
                }
            }
        }
        if msg.bytes == 0 {
            return Ok(FirstWord::Closed);
        }
        got = got.saturating_add(msg.bytes);
    }
    match (u32::from_le_bytes(word) == OFFER, fd) {
        (true, Some(fd)) => Ok(FirstWord::Offer(fd)),
        (true, None) => Err(ShmError::Refused("an offer without a descriptor".into())),
        (false, _) => Ok(FirstWord::Frame(word)),
    }
}

/// How long a doorbell is watched (spinning) before the waiter sleeps on it: long enough that
/// a reply to a sample, or the next sample of a player that is streaming, costs no system call
/// and no wake-up (each of which costs tens of microseconds, far more on a loaded machine),
/// short enough that an idle player or host stops using the CPU at once.
pub const SPIN_FOR: Duration = Duration::from_micros(100);

/// How long one sleep on a doorbell lasts before the peer is checked again.
const NAP: Duration = Duration::from_millis(50);

/// The outcome of [`Doorbell::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rung {
    /// The word changed: its new value.
    Value(u32),
    /// The deadline passed.
    TimedOut,
    /// `peer_gone` said the other side has gone.
    PeerGone,
}

/// Waiting for a control word to change, and ringing it.
pub struct Doorbell;

impl Doorbell {
    /// Waits until word `ring` differs from `old`: spins a little, then sleeps on the futex
    /// with `waiting` set to 1 (so the other side knows to wake it), calling `peer_gone`
    /// between naps. `deadline`: give up then.
    pub fn wait(
        region: &Region,
        ring: usize,
        waiting: usize,
        old: u32,
        deadline: Option<Instant>,
        mut peer_gone: impl FnMut() -> bool,
    ) -> Result<Rung, ShmError> {
        let word = region.word(ring)?;
        let spin_until = Instant::now().checked_add(SPIN_FOR);
        'spin: loop {
            // The clock is read once per 64 checks of the word.
            for _ in 0..64 {
                let v = word.load(Ordering::Acquire);
                if v != old {
                    return Ok(Rung::Value(v));
                }
                std::hint::spin_loop();
            }
            if spin_until.is_none_or(|t| Instant::now() >= t) {
                break 'spin;
            }
            // Let the other side run if it waits for this very core.
            std::thread::yield_now();
        }
        let flag = region.word(waiting)?;
        flag.store(1, Ordering::SeqCst);
        let result = loop {
            let v = word.load(Ordering::SeqCst);
            if v != old {
                break Rung::Value(v);
            }
            let nap = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(NAP),
                    _ => break Rung::TimedOut,
                },
                None => NAP,
            };
            let ts = rustix::thread::futex::Timespec::try_from(nap).ok();
            match rustix::thread::futex::wait(
                word,
                rustix::thread::futex::Flags::empty(),
                old,
                ts.as_ref(),
            ) {
                Ok(())
                | Err(rustix::io::Errno::AGAIN)
                | Err(rustix::io::Errno::INTR)
                | Err(rustix::io::Errno::TIMEDOUT) => {}
                Err(e) => break_err(e)?,
            }
            if word.load(Ordering::SeqCst) == old && peer_gone() {
                break Rung::PeerGone;
            }
        };
        flag.store(0, Ordering::SeqCst);
        Ok(result)
    }

    /// Sets word `ring` to `value` and wakes the other side if it sleeps on it (`waiting`).
    pub fn ring(region: &Region, ring: usize, waiting: usize, value: u32) -> Result<(), ShmError> {
        let word = region.word(ring)?;
        word.store(value, Ordering::SeqCst);
        if region.word(waiting)?.load(Ordering::SeqCst) != 0 {
            rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), 1)
                .map_err(ShmError::os("futex wake"))?;
        }
        Ok(())
    }
}

fn break_err(e: rustix::io::Errno) -> Result<(), ShmError> {
    Err(ShmError::os("futex wait")(e))
}

/// Whether the peer of `socket` has hung up (a non-blocking check).
pub fn hung_up(socket: &UnixStream) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        socket,
        rustix::event::PollFlags::RDHUP,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(0) => false,
        Ok(_) => fds.iter().any(|f| {
            f.revents().intersects(
                rustix::event::PollFlags::RDHUP
                    | rustix::event::PollFlags::HUP
                    | rustix::event::PollFlags::ERR,
            )
        }),
        Err(_) => true,
    }
}

/// Checks `len` against the largest message.
pub fn check_message_len(len: u32) -> Result<usize, ShmError> {
    usize::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_MESSAGE_FRAME)
        .ok_or_else(|| ShmError::OutOfBounds(format!("message of {len} bytes")))
}

/// Checks `len` against the largest sample.
pub fn check_sample_len(len: u32) -> Result<usize, ShmError> {
    usize::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_SAMPLE_LEN)
        .ok_or_else(|| ShmError::OutOfBounds(format!("sample of {len} bytes")))
}
