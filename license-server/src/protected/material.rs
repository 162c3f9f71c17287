//! The protected key system's key material on disk: [`init`] (`license-server protected-init`)
//! writes it, [`ProtectedMaterial::load`] (`serve --protected DIR`) reads and checks it.
//!
//! | file | content | mode | read by `serve` |
//! |---|---|---|---|
//! | [`ROOT_PUBLIC_KEY_FILE`] `root.pub` | the root public key: 65 bytes, uncompressed SEC1 P-256 point — what devices pin | `0644` | yes |
//! | [`ROOT_KEY_FILE`] `root.key` | the root private scalar, 32 bytes big-endian | `0600` | **no**: keep it offline |
//! | [`PROVISIONING_KEY_FILE`] `provisioning.key` | the provisioning signing scalar, 32 bytes | `0600` | yes |
//! | [`PROVISIONING_CERT_FILE`] `provisioning.cert` | the provisioning certificate (role 1), issued by the root | `0644` | yes |
//! | [`SERVER_SIGNING_KEY_FILE`] `server-signing.key` | the license server's signing scalar, 32 bytes | `0600` | yes |
//! | [`SERVER_ENCRYPTION_KEY_FILE`] `server-encryption.key` | the license server's HPKE (DHKEM P-256) scalar, 32 bytes | `0600` | yes |
//! | [`SERVER_CERT_FILE`] `server.cert` | the license server certificate (role 2), issued by the root | `0644` | yes |
//!
//! Certificates are the protocol's encoding (`docs/protected-license.md`). The root key signs
//! only the two certificates: once they are written, move `root.key` off the server.
//!
//! Writing is atomic per file (a temporary file in the same directory, `fsync`, `rename`, then
//! an `fsync` of the directory) and never replaces anything: [`init`] refuses a directory that
//! already holds any of the seven files, and checks again just before each rename.
//!
//! Certificates are backdated by [`CLOCK_SKEW`] so that a device whose clock is somewhat behind
//! the server's accepts them (devices check validity on their own clock).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use protected_license::cert::{verify_server_certificate, Certificate, Role, MAX_CERTIFICATE_LEN};
use protected_license::crypto::{KemKey, PublicKey, SigningKey, PRIVATE_KEY_LEN, PUBLIC_KEY_LEN};
use protected_license::server::{LicenseServer, ProvisioningService, RootAuthority};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// The root public key devices pin: 65 raw bytes. File name and format are a contract.
pub const ROOT_PUBLIC_KEY_FILE: &str = "root.pub";
/// The root private key (32-byte scalar).
pub const ROOT_KEY_FILE: &str = "root.key";
/// The provisioning service's private key (32-byte scalar).
pub const PROVISIONING_KEY_FILE: &str = "provisioning.key";
/// The provisioning certificate.
pub const PROVISIONING_CERT_FILE: &str = "provisioning.cert";
/// The license server's signing private key (32-byte scalar).
pub const SERVER_SIGNING_KEY_FILE: &str = "server-signing.key";
/// The license server's encryption (HPKE KEM) private key (32-byte scalar).
pub const SERVER_ENCRYPTION_KEY_FILE: &str = "server-encryption.key";
/// The license server certificate.
pub const SERVER_CERT_FILE: &str = "server.cert";

/// Every file [`init`] writes, in the order it writes them.
pub const FILES: [&str; 7] = [
    ROOT_PUBLIC_KEY_FILE,
    ROOT_KEY_FILE,
    PROVISIONING_KEY_FILE,
    PROVISIONING_CERT_FILE,
    SERVER_SIGNING_KEY_FILE,
    SERVER_ENCRYPTION_KEY_FILE,
    SERVER_CERT_FILE,
];

/// The files holding private keys (mode `0600`).
pub const PRIVATE_FILES: [&str; 4] = [
    ROOT_KEY_FILE,
    PROVISIONING_KEY_FILE,
    SERVER_SIGNING_KEY_FILE,
    SERVER_ENCRYPTION_KEY_FILE,
];

/// Validity of the provisioning and server certificates unless `--validity-days` says
/// otherwise: ten years.
pub const DEFAULT_VALIDITY_DAYS: u32 = 3650;

/// Lifetime of device certificates unless `serve --device-validity-days` says otherwise.
pub const DEFAULT_DEVICE_VALIDITY_DAYS: u32 = 3650;

/// Longest validity accepted, in days (about 100 years).
pub const MAX_VALIDITY_DAYS: u32 = 36_600;

/// Seconds by which every certificate this server issues starts before the server's `now`
/// (one day), for devices whose clock is behind.
pub const CLOCK_SKEW: u64 = 86_400;

const SECONDS_PER_DAY: u64 = 86_400;

/// Why key material could not be written or loaded. Never contains key bytes.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// [`init`] found a file it would write.
    #[error("{path}: already exists; refusing to overwrite key material")]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file of the wrong size.
    #[error("{path}: expected {expected} bytes, found {found}")]
    Length {
        /// The file.
        path: PathBuf,
        /// The size its format has (at most, for certificates).
        expected: usize,
        /// Its size.
        found: u64,
    },
    /// A file whose content is not valid (a key not on the curve, a certificate that does not
    /// parse or does not verify under the root, has the wrong role or is not valid now).
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A certificate that certifies another key than the private key beside it.
    #[error("{cert} does not certify the key in {key}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A validity period of 0 days or more than [`MAX_VALIDITY_DAYS`].
    #[error("validity of {0} days is out of range (1 to {MAX_VALIDITY_DAYS})")]
    Validity(u32),
    /// Generating a key or issuing a certificate failed.
    #[error("key generation failed: {0}")]
    Generate(protected_license::Error),
}

/// The loaded key material: the root public key, the provisioning service and the license
/// server, checked against each other. Private keys are wiped on drop and never printed.
#[derive(Debug)]
pub struct ProtectedMaterial {
    root: PublicKey,
    provisioning: ProvisioningService,
    license_server: LicenseServer,
    provisioning_not_after: u64,
    server_not_after: u64,
}

impl ProtectedMaterial {
    /// Loads the material of `dir` and checks it at time `now` (seconds since the Unix epoch):
    /// every file has its exact length; the keys are valid; the provisioning certificate is a
    /// role 1 certificate of the root, valid now, for the provisioning key; the server
    /// certificate is a role 2 certificate of the root, valid now, for the server's signing
    /// and encryption keys. Device certificates the provisioning service issues are valid for
    /// `device_validity` seconds (plus [`CLOCK_SKEW`] before `now`).
    ///
    /// `root.key` is not read. A private key file readable by group or others is loaded with
    /// a warning in the log.
    pub fn load(dir: &Path, now: u64, device_validity: u64) -> Result<Self, MaterialError> {
        let root_path = dir.join(ROOT_PUBLIC_KEY_FILE);
        let root_bytes = read_exact::<PUBLIC_KEY_LEN>(&root_path)?;
        let root = PublicKey::from_bytes(&root_bytes).map_err(|e| invalid(&root_path, e))?;

        let provisioning_key = load_signing_key(&dir.join(PROVISIONING_KEY_FILE))?;
        let cert_path = dir.join(PROVISIONING_CERT_FILE);
        let provisioning_cert = read_certificate(&cert_path)?;
        let parsed = Certificate::parse(&provisioning_cert).map_err(|e| invalid(&cert_path, e))?;
        parsed
            .verify_issued_by(&provisioning_cert, Role::Provisioning, &root, now)
            .map_err(|e| invalid(&cert_path, e))?;
        if parsed.signing_key != provisioning_key.public_key() {
            return Err(MaterialError::Mismatch {
                cert: cert_path,
                key: dir.join(PROVISIONING_KEY_FILE),
            });
        }
        let provisioning_not_after = parsed.not_after;

        let signing = load_signing_key(&dir.join(SERVER_SIGNING_KEY_FILE))?;
        let encryption_path = dir.join(SERVER_ENCRYPTION_KEY_FILE);
        let encryption = {
            let bytes = read_private::<PRIVATE_KEY_LEN>(&encryption_path)?;
            KemKey::from_bytes(&bytes).map_err(|e| invalid(&encryption_path, e))?
        };
        let server_path = dir.join(SERVER_CERT_FILE);
        let server_cert = read_certificate(&server_path)?;
        let parsed = verify_server_certificate(&server_cert, &root, now)
            .map_err(|e| invalid(&server_path, e))?;
        if parsed.signing_key != signing.public_key() {
            return Err(MaterialError::Mismatch {
                cert: server_path,
                key: dir.join(SERVER_SIGNING_KEY_FILE),
            });
        }
        if parsed.encryption_key() != Ok(&encryption.public_key()) {
            return Err(MaterialError::Mismatch {
                cert: server_path,
                key: encryption_path,
            });
        }
        let server_not_after = parsed.not_after;

        Ok(ProtectedMaterial {
            root,
            provisioning: ProvisioningService::new(
                provisioning_key,
                provisioning_cert,
                device_validity.saturating_add(CLOCK_SKEW),
            ),
            license_server: LicenseServer::new(signing, encryption, server_cert, root),
            provisioning_not_after,
            server_not_after,
        })
    }

    /// The root public key (the content of `root.pub`).
    pub fn root_public_key(&self) -> &PublicKey {
        &self.root
    }

    /// The provisioning service.
    pub fn provisioning(&self) -> &ProvisioningService {
        &self.provisioning
    }

    /// The license server role.
    pub fn license_server(&self) -> &LicenseServer {
        &self.license_server
    }

    /// End of validity of the provisioning certificate (no device can be provisioned, and
    /// every device chain fails, after it).
    pub fn provisioning_not_after(&self) -> u64 {
        self.provisioning_not_after
    }

    /// End of validity of the server certificate (devices reject licenses after it).
    pub fn server_not_after(&self) -> u64 {
        self.server_not_after
    }
}

/// Generates a root key, a provisioning key and its certificate, and a license server signing
/// key, encryption key and their certificate, and writes them into `dir` (created, mode
/// `0700`, if missing) as the module documentation lists. The certificates are valid from
/// `now - CLOCK_SKEW` for `validity_days` days after `now`. Keys come from the operating
/// system's generator (`OsRng`).
///
/// Refuses ([`MaterialError::Exists`]) if any of the seven files exists; on a failure after
/// writing started, removes what it wrote. Returns the paths written.
pub fn init(dir: &Path, validity_days: u32, now: u64) -> Result<Vec<PathBuf>, MaterialError> {
    if validity_days == 0 || validity_days > MAX_VALIDITY_DAYS {
        return Err(MaterialError::Validity(validity_days));
    }
    let not_after = u64::from(validity_days)
        .checked_mul(SECONDS_PER_DAY)
        .and_then(|s| now.checked_add(s))
        .ok_or(MaterialError::Validity(validity_days))?;
    let not_before = now.saturating_sub(CLOCK_SKEW);

    create_private_dir(dir)?;
    for name in FILES {
        refuse_existing(&dir.join(name))?;
    }

    let mut rng = OsRng;
    let root_key = SigningKey::generate(&mut rng);
    let provisioning_key = SigningKey::generate(&mut rng);
    let signing = SigningKey::generate(&mut rng);
    let encryption = KemKey::generate(&mut rng).map_err(MaterialError::Generate)?;

    let root_public = root_key.public_key();
    let root_secret = root_key.to_bytes();
    let root = RootAuthority::from_key(root_key);
    let provisioning_public = provisioning_key.public_key();
    let provisioning_cert = root
        .certify_provisioning(
            subject_id(&provisioning_public),
            &provisioning_public,
            not_before,
            not_after,
        )
        .map_err(MaterialError::Generate)?;
    let server_public = signing.public_key();
    let server_cert = root
        .certify_license_server(
            subject_id(&server_public),
            &server_public,
            &encryption.public_key(),
            not_before,
            not_after,
        )
        .map_err(MaterialError::Generate)?;

    let private = |bytes: Zeroizing<[u8; PRIVATE_KEY_LEN]>| Zeroizing::new(bytes.to_vec());
    let public = |bytes: &[u8]| Zeroizing::new(bytes.to_vec());
    let contents: [(&str, Zeroizing<Vec<u8>>, bool); 7] = [
        (ROOT_PUBLIC_KEY_FILE, public(root_public.as_bytes()), false),
        (ROOT_KEY_FILE, private(root_secret), true),
        (
            PROVISIONING_KEY_FILE,
            private(provisioning_key.to_bytes()),
            true,
        ),
        (PROVISIONING_CERT_FILE, public(&provisioning_cert), false),
        (SERVER_SIGNING_KEY_FILE, private(signing.to_bytes()), true),
        (
            SERVER_ENCRYPTION_KEY_FILE,
            private(encryption.to_bytes()),
            true,
        ),
        (SERVER_CERT_FILE, public(&server_cert), false),
    ];
    write_all_new(dir, &contents)
}

/// A certificate's subject ID for a server-side key: the first 16 bytes of its key ID.
fn subject_id(key: &PublicKey) -> [u8; 16] {
    let id = key.key_id();
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(id) {
        *o = b;
    }
    out
}

fn create_private_dir(dir: &Path) -> Result<(), MaterialError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| MaterialError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn refuse_existing(path: &Path) -> Result<(), MaterialError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Err(MaterialError::Exists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(MaterialError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes every file to a temporary name, then renames each into place and syncs the
/// directory; on failure removes the temporary files and the files already renamed.
fn write_all_new(
    dir: &Path,
    contents: &[(&str, Zeroizing<Vec<u8>>, bool)],
) -> Result<Vec<PathBuf>, MaterialError> {
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(contents.len());
    let mut done: Vec<PathBuf> = Vec::with_capacity(contents.len());
    let result = (|| {
        for (name, bytes, private) in contents {
            let temp = write_temp(dir, name, bytes, *private)?;
            temps.push((temp, dir.join(name)));
        }
        for (temp, path) in &temps {
            refuse_existing(path)?;
            fs::rename(temp, path).map_err(|source| MaterialError::Io {
                path: path.clone(),
                source,
            })?;
            done.push(path.clone());
        }
        sync_dir(dir)
    })();
    match result {
        Ok(()) => Ok(done),
        Err(e) => {
            for (temp, _) in &temps {
                let _ = fs::remove_file(temp);
            }
            for path in &done {
                let _ = fs::remove_file(path);
            }
            Err(e)
        }
    }
}

/// Writes `bytes` to a new file `.NAME.RANDOM.tmp` in `dir` (mode `0600` if `private`, else
/// `0644`) and syncs it; returns its path.
pub(crate) fn write_temp(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    private: bool,
) -> Result<PathBuf, MaterialError> {
    let temp = dir.join(format!(".{name}.{:016x}.tmp", OsRng.next_u64()));
    let io_err = |source| MaterialError::Io {
        path: temp.clone(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if private { 0o600 } else { 0o644 });
    let mut file = options.open(&temp).map_err(io_err)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_err(e));
    }
    Ok(temp)
}

/// Syncs a directory, so that renames in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), MaterialError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| MaterialError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> MaterialError {
    MaterialError::Invalid {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

/// Reads a file of at most `limit` bytes into a buffer wiped on drop.
fn read_limited(path: &Path, limit: usize) -> Result<Zeroizing<Vec<u8>>, MaterialError> {
    let io_err = |source| MaterialError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let found = file.metadata().map_err(io_err)?.len();
    let limit64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if found > limit64 {
        return Err(MaterialError::Length {
            path: path.to_path_buf(),
            expected: limit,
            found,
        });
    }
    let mut out = Zeroizing::new(Vec::with_capacity(limit));
    // One byte more than allowed reveals a file that grew after the size check.
    file.take(limit64.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(io_err)?;
    if out.len() > limit {
        return Err(MaterialError::Length {
            path: path.to_path_buf(),
            expected: limit,
            found: u64::try_from(out.len()).unwrap_or(u64::MAX),
        });
    }
    Ok(out)
}

/// Reads a file of exactly `N` bytes.
fn read_exact<const N: usize>(path: &Path) -> Result<[u8; N], MaterialError> {
    let bytes = read_limited(path, N)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| MaterialError::Length {
            path: path.to_path_buf(),
            expected: N,
            found: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        })
}

/// Reads a private key file of exactly `N` bytes into a buffer wiped on drop, warning if the
/// file is readable by group or others.
fn read_private<const N: usize>(path: &Path) -> Result<Zeroizing<[u8; N]>, MaterialError> {
    warn_if_shared(path);
    let bytes = read_limited(path, N)?;
    let mut out = Zeroizing::new([0u8; N]);
    if bytes.len() != N {
        return Err(MaterialError::Length {
            path: path.to_path_buf(),
            expected: N,
            found: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        });
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn load_signing_key(path: &Path) -> Result<SigningKey, MaterialError> {
    let bytes = read_private::<PRIVATE_KEY_LEN>(path)?;
    SigningKey::from_bytes(&bytes).map_err(|e| invalid(path, e))
}

fn read_certificate(path: &Path) -> Result<Vec<u8>, MaterialError> {
    Ok(read_limited(path, MAX_CERTIFICATE_LEN)?.to_vec())
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "private key file is readable by group or others"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}
