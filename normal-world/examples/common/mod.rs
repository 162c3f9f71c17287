//! What the example players share: a secure world in its own process, the messages a session
//! queues, and a license server over HTTP. (The protected end-to-end tests, `tests/protected.rs`,
//! use them too.)

use std::ffi::OsString;
use std::process::{Command, ExitCode};
use std::time::Duration;

use normal_world::transport::{HostProcess, SocketTransport, Transport};
use normal_world::{
    MediaKeySession, MediaKeySessionEvent, MediaKeySystemAccess, MediaKeys, MessageType,
};

/// Why an example failed, for its exit message.
pub(crate) type Failure = String;

/// An example's `main`: this executable serves as `secure-world-host` when started as one
/// (`--socket`, see [`media_keys_in_a_process`]); otherwise it runs `run` with its arguments
/// and exits 1 with `FAILED: reason` on standard error if that fails.
pub(crate) fn main_or_host(run: impl FnOnce(Vec<OsString>) -> Result<(), Failure>) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if secure_world_host::is_host_invocation(&args) {
        return secure_world_host::main_with_args(args);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nFAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the secure world in its own process with `command` (this executable, which serves
/// as `secure-world-host` when given `--socket`), over a sealed shared-memory region handed
/// over a Unix socket, and creates a `MediaKeys` of `access` on it; answers it with the
/// process.
pub(crate) fn media_keys_in_a_process(
    access: &MediaKeySystemAccess,
    command: Command,
) -> Result<(MediaKeys, HostProcess), Failure> {
    let transport = SocketTransport::spawn_command(command)
        .and_then(SocketTransport::with_shared_memory)
        .map_err(|e| format!("spawn secure world: {e}"))?;
    let host = transport.host().ok_or("the secure world has no process")?;
    let mk = access
        .create_media_keys_with_transport(Box::new(transport) as Box<dyn Transport>)
        .map_err(|e| format!("createMediaKeys: {e}"))?;
    Ok((mk, host))
}

/// The `message` events queued on `session`.
pub(crate) fn messages(session: &MediaKeySession) -> Vec<(MessageType, Vec<u8>)> {
    session
        .drain_events()
        .into_iter()
        .filter_map(|e| match e {
            MediaKeySessionEvent::Message {
                message_type,
                message,
            } => Some((message_type, message)),
            _ => None,
        })
        .collect()
}

/// A license server over HTTP.
pub(crate) struct LicenseClient {
    base: String,
    agent: ureq::Agent,
}

impl LicenseClient {
    /// A client of the server at `base` (`http://HOST:PORT`); a call may take 30 s at most.
    pub(crate) fn new(base: &str) -> LicenseClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        LicenseClient {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// `POST path` with a body of the given content type (or `GET path` without one); the
    /// answer's body (at most 1 MiB), or the status and body of an answer that is no success.
    pub(crate) fn call(&self, path: &str, body: Option<(&str, &[u8])>) -> Result<Vec<u8>, Failure> {
        let url = format!("{}{path}", self.base);
        let sent = match body {
            Some((content_type, body)) => self
                .agent
                .post(&url)
                .header("Content-Type", content_type)
                .send(body),
            None => self.agent.get(&url).call(),
        };
        let mut response = sent.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let answer = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{url} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        Ok(answer)
    }
}
