//! Finding the `secure-world-host` binary the out-of-process cases spawn.

use std::path::PathBuf;

/// The file name of the secure-world host binary.
pub const HOST_BINARY: &str = "secure-world-host";

/// An environment variable naming the host binary explicitly (overrides the search).
pub const HOST_ENV_VAR: &str = "TEE_CDM_HOST";

/// The command that builds the host binary next to the release benches.
pub const HOST_BUILD_HINT: &str = "cargo build --release -p secure-world-host";

/// The `secure-world-host` binary for the out-of-process cases: [`HOST_ENV_VAR`] if set,
/// else next to the running executable or in its parent directory (a bench runs from
/// `target/<profile>/deps/`, the host is built into `target/<profile>/`). `None` if absent.
pub fn find_host_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(HOST_ENV_VAR) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let exe = std::env::current_exe().ok()?;
    let name = format!("{HOST_BINARY}{}", std::env::consts::EXE_SUFFIX);
    let dir = exe.parent()?;
    let found = [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(&name))
        .find(|p| p.is_file());
    found
}

/// The note the benches and the report print when [`find_host_binary`] found nothing.
pub fn host_missing_note() -> String {
    format!(
        "NOTE: {HOST_BINARY} not found next to this binary: out-of-process cases skipped \
         (build it with `{HOST_BUILD_HINT}` in the same target dir, or set {HOST_ENV_VAR})"
    )
}
