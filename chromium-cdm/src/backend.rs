//! Where the secure world runs: by default in a `secure-world-host` process (the one named by
//! `TEE_CDM_HOST`, else the one next to this library), over its Unix socket with shared
//! memory; in Chromium's CDM process itself when `TEE_CDM_IN_PROCESS=1`.
//!
//! Chromium's key system `org.chromium.externalclearkey` speaks Clear Key's formats (EME
//! §9.1: `{"kids":[…]}` requests, JWK Set licenses), so it maps onto our `org.w3.clearkey`.

use std::path::{Path, PathBuf};

use normal_world::transport::SocketTransport;
use normal_world::{
    request_media_key_system_access, MediaKeySystemConfiguration, MediaKeySystemMediaCapability,
    MediaKeys,
};

/// Environment variable: the `secure-world-host` binary to spawn.
pub const HOST_ENV: &str = "TEE_CDM_HOST";
/// Environment variable: `1` runs the secure world in the browser's CDM process.
pub const IN_PROCESS_ENV: &str = "TEE_CDM_IN_PROCESS";
/// The host binary's file name, looked up next to this library.
pub const HOST_BINARY: &str = "secure-world-host";

/// The configuration asked of our Clear Key: every init data type Chromium may pass and the
/// codecs it plays (the CDM only decrypts; Chromium decodes).
fn configuration() -> MediaKeySystemConfiguration {
    let video = [
        "video/mp4; codecs=\"avc1.4d401e\"",
        "video/webm; codecs=\"vp9\"",
    ];
    let audio = [
        "audio/mp4; codecs=\"mp4a.40.2\"",
        "audio/webm; codecs=\"opus\"",
    ];
    MediaKeySystemConfiguration {
        init_data_types: vec!["cenc".into(), "keyids".into(), "webm".into()],
        video_capabilities: video
            .iter()
            .map(|c| MediaKeySystemMediaCapability::new(c))
            .collect(),
        audio_capabilities: audio
            .iter()
            .map(|c| MediaKeySystemMediaCapability::new(c))
            .collect(),
        ..Default::default()
    }
}

/// Creates the `MediaKeys` and names where its secure world runs.
pub fn create_media_keys() -> Result<(MediaKeys, &'static str), String> {
    let access = request_media_key_system_access("org.w3.clearkey", &[configuration()])
        .map_err(|e| e.to_string())?;
    if std::env::var_os(IN_PROCESS_ENV).is_some_and(|v| v == "1") {
        let keys = access.create_media_keys().map_err(|e| e.to_string())?;
        return Ok((keys, "in-process"));
    }
    let host = host_binary().ok_or_else(|| {
        format!("no {HOST_BINARY}: set {HOST_ENV}, put it next to the library, or set {IN_PROCESS_ENV}=1")
    })?;
    let transport = SocketTransport::spawn(&host)
        .and_then(SocketTransport::with_shared_memory)
        .map_err(|e| format!("cannot start {}: {e}", host.display()))?;
    let keys = access
        .create_media_keys_with_transport(Box::new(transport))
        .map_err(|e| e.to_string())?;
    Ok((keys, "secure-world-host process (shared memory)"))
}

fn host_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(HOST_ENV) {
        return Some(PathBuf::from(path));
    }
    let beside = this_library()?.parent()?.join(HOST_BINARY);
    beside.is_file().then_some(beside)
}

/// The file this code was loaded from: the mapping of `/proc/self/maps` that holds the
/// address of one of its functions.
fn this_library() -> Option<PathBuf> {
    let here = create_media_keys as fn() -> Result<(MediaKeys, &'static str), String> as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| mapping_path(line, here))
}

/// The path of a `/proc/self/maps` line if its address range holds `addr`.
fn mapping_path(line: &str, addr: usize) -> Option<PathBuf> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    );
    if !(start..end).contains(&addr) {
        return None;
    }
    let path = fields.nth(4)?;
    path.starts_with('/').then(|| Path::new(path).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_matched_by_address() {
        let line = "7f00a000-7f00b000 r-xp 00001000 08:01 1234   /opt/lib/libtee_cdm_chromium.so";
        assert_eq!(
            mapping_path(line, 0x7f00a800),
            Some(PathBuf::from("/opt/lib/libtee_cdm_chromium.so"))
        );
        assert_eq!(mapping_path(line, 0x7f00b000), None);
        assert_eq!(
            mapping_path("7f00a000-7f00b000 rw-p 00000000 00:00 0", 0x7f00a800),
            None
        );
        assert_eq!(mapping_path("garbage", 1), None);
    }

    #[test]
    fn this_library_is_found() {
        // In the test binary the function lives in the executable itself.
        assert!(this_library().is_some_and(|p| p.is_file()));
    }

    #[test]
    fn our_clear_key_accepts_the_configuration() {
        assert!(request_media_key_system_access("org.w3.clearkey", &[configuration()]).is_ok());
    }
}
