//! Stable numeric status codes carried in response headers.

wire_enum! {
    /// The outcome of a request, as carried in the response header's `status` field.
    ///
    /// The values are stable and documented in `docs/abi.md`. Ranges:
    /// `0` success; `0x01xx` malformed messages; `0x02xx` sessions and quotas;
    /// `0x03xx` init data and licenses; `0x04xx` decryption and secure buffers;
    /// `0x05xx` secure storage; `0x0Fxx` the secure world itself. Decrypt failures are deliberately coarse.
    pub enum Status: u32 {
        /// Success.
        Ok = 0x0000,
        /// The message is shorter than its header or its declared payload.
        Truncated = 0x0101,
        /// The first four bytes are not `"TCDM"`.
        BadMagic = 0x0102,
        /// The header's version is not one this side speaks.
        UnsupportedVersion = 0x0103,
        /// The opcode is not in the table.
        UnknownOpcode = 0x0104,
        /// Bytes follow the last field of the payload.
        TrailingBytes = 0x0105,
        /// The payload (or a field of it) exceeds an ABI limit.
        PayloadTooLarge = 0x0106,
        /// A field holds a value outside its domain (enum, flag, reserved bits, length).
        InvalidField = 0x0107,
        /// A session handle does not name an open session.
        NoSuchSession = 0x0201,
        /// The session limit is reached (EME `QuotaExceededError`).
        SessionQuotaExceeded = 0x0202,
        /// The operation is not valid in the session's current state (EME `InvalidStateError`).
        InvalidState = 0x0203,
        /// A session cannot hold more keys (EME `QuotaExceededError`).
        KeyQuotaExceeded = 0x0204,
        /// The key system, robustness, session type or operation is not supported.
        NotSupported = 0x0205,
        /// The secure world's store of persistent licenses is full, or the license is too
        /// large to store (EME `QuotaExceededError`).
        LicenseQuotaExceeded = 0x0206,
        /// A session with this session id is already open (EME §6.6.3 `load()`:
        /// `QuotaExceededError`).
        SessionIdInUse = 0x0207,
        /// The init data could not be parsed or holds no usable key ID.
        InvalidInitData = 0x0301,
        /// The license (or release acknowledgement) could not be parsed or does not apply.
        InvalidLicense = 0x0302,
        /// A server certificate (EME `setServerCertificate`) does not verify against the
        /// pinned root of the key system, or the key system takes none.
        InvalidServerCertificate = 0x0303,
        /// No usable key with the sample's key ID is loaded in the session (EME "waiting for key").
        NoKey = 0x0401,
        /// The key exists but may not be used now (expired, released, output restricted).
        KeyNotUsable = 0x0402,
        /// The sample description or buffer was refused. Deliberately carries no detail.
        DecryptFailed = 0x0403,
        /// The secure-buffer pool is full.
        SecureBufferQuotaExceeded = 0x0404,
        /// The secure-buffer handle does not name a live buffer.
        NoSuchSecureBuffer = 0x0405,
        /// The requested output is not allowed for the key's robustness level (clear output
        /// under `HW_SECURE_DECODE`).
        OutputNotAllowed = 0x0406,
        /// Secure storage (or the monotonic counter) failed or is not available.
        StorageUnavailable = 0x0501,
        /// A stored record failed authentication or is malformed: its bytes were altered, or it
        /// was stored under another name. Nothing was loaded from it.
        StorageCorrupt = 0x0502,
        /// A stored record is shorter than a sealed record can be (truncated).
        StorageTruncated = 0x0503,
        /// Stored state is older than the monotonic counter allows: the store was rolled back
        /// (an old copy restored). Refused.
        StorageRollback = 0x0504,
        /// The record of a stored license is missing from storage.
        StorageMissing = 0x0505,
        /// The secure world could not allocate memory.
        OutOfMemory = 0x0F01,
        /// An internal invariant failed; the request changed nothing.
        Internal = 0x0FFF,
    }
}
