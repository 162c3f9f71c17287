//! The ABI client link: the one channel from a `MediaKeys` and its sessions to their secure
//! world, and the registry of the sessions using it.
//!
//! Calls are typed by the operation table (`cdm_core::abi::Operation`): a request knows its
//! response type, so a response of the wrong shape is a decoding failure, handled once here.
//! When the transport fails or the secure world answers something malformed, the link is
//! marked lost and every session is closed (`hardware-context-reset`, or `internal-error`
//! for a protocol violation); from then on every call fails fast with
//! [`EmeError::SecureWorldLost`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::time::Duration;

use cdm_core::abi::frame::MAX_MESSAGE_FRAME;
use cdm_core::abi::{
    parse_response, GetCapabilities, Load, Loaded, OpenSession, Operation, SessionOpened,
};
use cdm_core::eme::{ClosedReason, KeySystem, Robustness, SessionType};
use zeroize::{Zeroize, Zeroizing};

use crate::error::EmeError;
use crate::session_state::{lock_session, SessionCell};
use crate::transport::{LivenessWatch, Transport};

/// Where a call's sample is.
pub(crate) enum SampleArg<'s> {
    /// In the caller's buffer.
    Slice(&'s mut [u8]),
    /// The first bytes of the transport's sample area.
    InArea(usize),
}

/// The channel to the secure world and the registry of the sessions using it.
pub(crate) struct Link {
    transport: Box<dyn Transport>,
    /// Why the secure world was lost, once it was.
    lost: Option<String>,
    next_request_id: u32,
    /// The last `update` sequence number handed out (see [`Link::next_update`]).
    updates: u64,
    /// Request messages carry licenses (keys in clear, for Clear Key): reserved once at the
    /// largest message size so it never reallocates, wiped after every call and on drop.
    request: Zeroizing<Vec<u8>>,
    response: Vec<u8>,
    pub(crate) sessions: Vec<Weak<SessionCell>>,
}

impl Link {
    pub(crate) fn new(transport: Box<dyn Transport>) -> Link {
        Link {
            transport,
            lost: None,
            next_request_id: 1,
            updates: 0,
            request: Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_FRAME)),
            response: Vec::new(),
            sessions: Vec::new(),
        }
    }

    /// `Err(SecureWorldLost)` once the secure world is lost.
    pub(crate) fn check_alive(&self) -> Result<(), EmeError> {
        match &self.lost {
            Some(why) => Err(EmeError::SecureWorldLost(why.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.is_some()
    }

    /// A sequence number for an `update` that loaded keys, larger than every earlier one.
    pub(crate) fn next_update(&mut self) -> u64 {
        self.updates = self.updates.saturating_add(1);
        self.updates
    }

    pub(crate) fn register(&mut self, session: &Arc<SessionCell>) {
        self.sessions.retain(|w| w.strong_count() > 0);
        self.sessions.push(Arc::downgrade(session));
    }

    /// Marks the secure world lost and closes every session with `reason`.
    fn lose(&mut self, why: String, reason: ClosedReason) -> EmeError {
        tracing::warn!(%why, %reason, "secure world lost; closing every session");
        for cell in self.sessions.iter().filter_map(Weak::upgrade) {
            let mut s = lock_session(&cell);
            s.handle = None;
            s.session_closed(reason);
        }
        self.sessions.clear();
        let err = EmeError::SecureWorldLost(why.clone());
        self.lost = Some(why);
        err
    }

    /// Marks the secure world lost for `why` (noticed between calls by the liveness watch),
    /// unless it already is.
    pub(crate) fn lose_if_alive(&mut self, why: String) {
        if self.lost.is_none() {
            let _ = self.lose(why, ClosedReason::HardwareContextReset);
        }
    }

    /// A liveness probe: one cheap call (`GetCapabilities`) that must be answered within
    /// `deadline`; if not, the secure world is lost like after any failed call.
    pub(crate) fn probe(&mut self, deadline: Duration) {
        self.transport.set_probe_deadline(Some(deadline));
        let _ = self.call(0, &GetCapabilities, "liveness probe");
        self.transport.set_probe_deadline(None);
    }

    /// A well-formed response that breaks the protocol's rules: the secure world is not
    /// speaking the ABI.
    pub(crate) fn protocol_violation(&mut self, what: &str, detail: &str) -> EmeError {
        self.lose(format!("{what}: {detail}"), ClosedReason::InternalError)
    }

    /// One ABI exchange of operation `O`: encode, transport (with the shared `sample` if the
    /// operation leases it), decode, check correlation. Answers the response header's session
    /// handle and the typed response. Transport failures and malformed responses lose the
    /// secure world; error statuses map to [`EmeError`].
    pub(crate) fn call_full<'a, O: Operation<'a>>(
        &mut self,
        session: u64,
        op: &O,
        sample: &mut [u8],
        what: &str,
    ) -> Result<(u64, O::Response), EmeError> {
        self.call_with(session, op, SampleArg::Slice(sample), what)
    }

    /// The transport's sample area for a sample of `len` bytes, if it has one (see
    /// [`Transport::sample_area`]).
    pub(crate) fn sample_area(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.lost.is_some() {
            return None;
        }
        self.transport.sample_area(len)
    }

    /// [`Link::call_full`] with the sample in the caller's buffer or in the transport's
    /// sample area.
    pub(crate) fn call_with<'a, O: Operation<'a>>(
        &mut self,
        session: u64,
        op: &O,
        sample: SampleArg<'_>,
        what: &str,
    ) -> Result<(u64, O::Response), EmeError> {
        self.check_alive()?;
        debug_assert!(
            O::OPCODE.leases_sample() || matches!(&sample, SampleArg::Slice(s) if s.is_empty())
        );
        let id = self.next_request_id;
        self.next_request_id = id.wrapping_add(1);
        // Arguments were validated against the ABI limits before; a failure here is still
        // the caller's argument, not the secure world's fault.
        let encoded = op.encode_message(session, id, &mut self.request);
        let sent = encoded.is_ok().then(|| match sample {
            SampleArg::Slice(s) => self.transport.call(&self.request, s, &mut self.response),
            SampleArg::InArea(n) => {
                self.transport
                    .call_in_area(&self.request, n, &mut self.response)
            }
        });
        // Only the bytes of this request were written (the buffer never reallocates).
        self.request.as_mut_slice().zeroize();
        self.request.clear();
        match (encoded, sent) {
            (Err(e), _) => return Err(EmeError::TypeError(format!("{what}: {e}"))),
            (Ok(()), Some(Err(e))) => {
                return Err(self.lose(format!("{what}: {e}"), ClosedReason::HardwareContextReset))
            }
            _ => {}
        }
        let (header, answer) = match parse_response::<O>(&self.response) {
            Ok(parsed) => parsed,
            Err(e) => {
                let why = format!("{what}: malformed response: {e}");
                return Err(self.lose(why, ClosedReason::InternalError));
            }
        };
        // OpenSession and Load answer the new handle in the header; everything else echoes
        // ours.
        let opens = O::OPCODE == OpenSession::OPCODE || O::OPCODE == Load::OPCODE;
        let session_ok = opens || header.session == session;
        if header.request_id != id || !session_ok {
            let why = format!("{what}: response does not correlate with the request");
            return Err(self.lose(why, ClosedReason::InternalError));
        }
        match answer {
            Ok(resp) => Ok((header.session, resp)),
            Err(status) => Err(EmeError::from_status(status, what)),
        }
    }

    /// [`Link::call_full`] for an operation without the shared sample.
    pub(crate) fn call<'a, O: Operation<'a>>(
        &mut self,
        session: u64,
        op: &O,
        what: &str,
    ) -> Result<O::Response, EmeError> {
        self.call_full(session, op, &mut [], what).map(|(_, r)| r)
    }

    /// Opens a session in the secure world: its handle and EME session id.
    pub(crate) fn open_session(
        &mut self,
        key_system: KeySystem,
        session_type: SessionType,
        robustness: Robustness,
    ) -> Result<(u64, String), EmeError> {
        const WHAT: &str = "open session";
        let req = OpenSession {
            key_system,
            robustness,
            session_type,
        };
        match self.call_full(0, &req, &mut [], WHAT)? {
            (0, _) => Err(self.protocol_violation(WHAT, "session handle 0")),
            (handle, SessionOpened { session_id }) => {
                tracing::debug!(session_id, "session opened");
                Ok((handle, session_id))
            }
        }
    }
}

impl Link {
    /// Opens a session holding the license stored under `session_id` (EME `load()`): its
    /// handle and what the secure world answered, or `None` when nothing is stored under it.
    pub(crate) fn load(
        &mut self,
        key_system: KeySystem,
        robustness: Robustness,
        session_id: &str,
    ) -> Result<Option<(u64, Loaded)>, EmeError> {
        const WHAT: &str = "load";
        let req = Load {
            key_system,
            robustness,
            session_id: session_id.as_bytes(),
        };
        match self.call_full(0, &req, &mut [], WHAT)? {
            (0, Loaded { found: false, .. }) => Ok(None),
            (_, Loaded { found: false, .. }) => {
                Err(self.protocol_violation(WHAT, "a handle for a license not found"))
            }
            (0, _) => Err(self.protocol_violation(WHAT, "session handle 0")),
            (handle, loaded) => {
                tracing::debug!(session_id, "persistent session loaded");
                Ok(Some((handle, loaded)))
            }
        }
    }
}

/// What a `MediaKeys` and its sessions share.
pub(crate) struct Cdm {
    link: Mutex<Link>,
}

impl Cdm {
    pub(crate) fn new(transport: Box<dyn Transport>) -> Cdm {
        Cdm {
            link: Mutex::new(Link::new(transport)),
        }
    }

    pub(crate) fn lock_link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The link, if no call holds it now.
    pub(crate) fn try_lock_link(&self) -> Option<MutexGuard<'_, Link>> {
        match self.link.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// How often the liveness watch probes an idle secure world.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long a probe may take before the secure world counts as frozen.
pub(crate) const PROBE_DEADLINE: Duration = Duration::from_secs(5);

/// Starts the thread that notices the end of the secure world behind `cdm` between calls:
/// the transport's watch reports its process or connection gone, or an idle secure world
/// does not answer a probe within [`PROBE_DEADLINE`] (frozen). Either way every session is
/// closed with `hardware-context-reset` and its events are queued at once. The thread ends
/// with the `MediaKeys` (it holds it only weakly) or when the secure world is lost.
pub(crate) fn watch_liveness(cdm: &Arc<Cdm>, mut watch: Box<dyn LivenessWatch>) {
    let weak = Arc::downgrade(cdm);
    let spawned = std::thread::Builder::new()
        .name("tee-cdm-liveness".into())
        .spawn(move || loop {
            let gone = watch.wait_gone(PROBE_EVERY);
            let Some(cdm) = weak.upgrade() else { return };
            if let Some(why) = gone {
                cdm.lock_link().lose_if_alive(why);
                return;
            }
            // A call in progress has its own timeout; probe only an idle link.
            let Some(mut link) = cdm.try_lock_link() else {
                continue;
            };
            if !link.is_lost() {
                link.probe(PROBE_DEADLINE);
            }
            if link.is_lost() {
                return;
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no liveness watch: the secure world's end is noticed at the next call");
    }
}
