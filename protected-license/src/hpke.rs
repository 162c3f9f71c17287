//! HPKE (RFC 9180), base mode, one suite: DHKEM(P-256, HKDF-SHA256) (`0x0010`), HKDF-SHA256
//! (`0x0001`), AES-128-GCM (`0x0001`).
//!
//! Written against the RFC over the workspace's RustCrypto crates (`p256` ECDH, `hkdf`,
//! `aes-gcm`), because the `hpke` crate enables `getrandom` through `aes-gcm`'s default
//! features and does not build for bare-metal targets. Checked in `tests/hpke.rs` against the
//! RFC's Appendix A.3.1 vectors and against the `hpke` crate in both directions.

use core::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Tag};

type Nonce = aes_gcm::Nonce<aes_gcm::aead::consts::U12>;
use hkdf::{Hkdf, HkdfExtract};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

/// `suite_id` of the KEM: `"KEM" ‖ I2OSP(0x0010, 2)`.
const KEM_SUITE_ID: &[u8] = b"KEM\x00\x10";
/// `suite_id` of the key schedule: `"HPKE" ‖ kem_id ‖ kdf_id ‖ aead_id`.
const HPKE_SUITE_ID: &[u8] = b"HPKE\x00\x10\x00\x01\x00\x01";
/// Length of `enc` and of a serialized public key.
pub const ENC_LEN: usize = 65;
/// `Nsk`.
pub const SECRET_KEY_LEN: usize = 32;
/// `Nt`.
pub const TAG_LEN: usize = 16;
const NK: usize = 16;
const NN: usize = 12;
const NH: usize = 32;

fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; NH]> {
    let mut ex = HkdfExtract::<Sha256>::new(Some(salt));
    for part in [b"HPKE-v1".as_slice(), suite_id, label, ikm] {
        ex.input_ikm(part);
    }
    let (mut prk, _) = ex.finalize();
    let mut out = Zeroizing::new([0u8; NH]);
    out.copy_from_slice(&prk);
    prk.zeroize();
    out
}

fn labeled_expand(
    suite_id: &[u8],
    prk: &[u8; NH],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let len = u16::try_from(out.len()).map_err(|_| Error::Crypto)?;
    Hkdf::<Sha256>::from_prk(prk)
        .map_err(|_| Error::Crypto)?
        .expand_multi_info(
            &[&len.to_be_bytes(), b"HPKE-v1", suite_id, label, info],
            out,
        )
        .map_err(|_| Error::Crypto)
}

/// A DHKEM(P-256) private key (the `p256` secret key inside is wiped on drop).
#[derive(Clone)]
pub struct PrivateKey(p256::SecretKey);

impl PrivateKey {
    /// `DeriveKeyPair(ikm)` (RFC 9180 §7.1.3): rejection sampling of candidates.
    pub fn derive(ikm: &[u8]) -> Result<Self, Error> {
        let prk = labeled_extract(KEM_SUITE_ID, b"", b"dkp_prk", ikm);
        let mut candidate = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        for counter in 0u8..=255 {
            labeled_expand(
                KEM_SUITE_ID,
                &prk,
                b"candidate",
                &[counter],
                candidate.as_mut(),
            )?;
            // The bitmask for P-256 is 0xff: nothing to clear.
            if let Ok(sk) = p256::SecretKey::from_slice(candidate.as_ref()) {
                return Ok(PrivateKey(sk));
            }
        }
        Err(Error::Crypto)
    }

    /// `GenerateKeyPair()`: `DeriveKeyPair` over 32 bytes from `rng`.
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Result<Self, Error> {
        let mut ikm = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        rng.fill_bytes(ikm.as_mut());
        Self::derive(ikm.as_ref())
    }

    /// `DeserializePrivateKey`: a big-endian scalar in `[1, n)`.
    pub fn from_bytes(bytes: &[u8; SECRET_KEY_LEN]) -> Result<Self, Error> {
        p256::SecretKey::from_slice(bytes)
            .map(PrivateKey)
            .map_err(|_| Error::InvalidField("private key"))
    }

    /// `SerializePrivateKey`, wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        let mut bytes = self.0.to_bytes();
        let mut out = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        out.copy_from_slice(&bytes);
        bytes.zeroize();
        out
    }

    /// `SerializePublicKey(pk(sk))`: the uncompressed point.
    pub fn public_key(&self) -> [u8; ENC_LEN] {
        encode_point(&self.0.public_key())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey { .. }")
    }
}

fn encode_point(pk: &p256::PublicKey) -> [u8; ENC_LEN] {
    let point = pk.to_encoded_point(false);
    let mut out = [0u8; ENC_LEN];
    if let Some(bytes) = point.as_bytes().get(..ENC_LEN) {
        out.copy_from_slice(bytes);
    }
    out
}

fn decode_point(bytes: &[u8; ENC_LEN]) -> Result<p256::PublicKey, Error> {
    if bytes.first() != Some(&0x04) {
        return Err(Error::InvalidPublicKey);
    }
    p256::PublicKey::from_sec1_bytes(bytes).map_err(|_| Error::InvalidPublicKey)
}

/// `ExtractAndExpand(dh, enc ‖ pkRm)`.
fn shared_secret(
    sk: &PrivateKey,
    pk: &p256::PublicKey,
    enc: &[u8; ENC_LEN],
    pk_r: &[u8; ENC_LEN],
) -> Result<Zeroizing<[u8; NH]>, Error> {
    let dh = p256::ecdh::diffie_hellman(sk.0.to_nonzero_scalar(), pk.as_affine());
    let prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh.raw_secret_bytes());
    let mut kem_context = [0u8; 2 * ENC_LEN];
    let (a, b) = kem_context.split_at_mut(ENC_LEN);
    a.copy_from_slice(enc);
    b.copy_from_slice(pk_r);
    let mut ss = Zeroizing::new([0u8; NH]);
    labeled_expand(
        KEM_SUITE_ID,
        &prk,
        b"shared_secret",
        &kem_context,
        ss.as_mut(),
    )?;
    Ok(ss)
}

/// An HPKE encryption context (either side): AES-128-GCM key, base nonce, sequence number.
pub struct Context {
    aead: Aes128Gcm,
    base_nonce: Zeroizing<[u8; NN]>,
    exporter_secret: Zeroizing<[u8; NH]>,
    seq: u64,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// `KeyScheduleS/R` in base mode (empty PSK and PSK ID).
    fn schedule(shared_secret: &[u8; NH], info: &[u8]) -> Result<Self, Error> {
        let psk_id_hash = labeled_extract(HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(HPKE_SUITE_ID, b"", b"info_hash", info);
        let mut ctx = [0u8; 1 + 2 * NH];
        let (mode, rest) = ctx.split_at_mut(1);
        let (a, b) = rest.split_at_mut(NH);
        mode.copy_from_slice(&[0x00]);
        a.copy_from_slice(psk_id_hash.as_ref());
        b.copy_from_slice(info_hash.as_ref());
        let secret = labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", b"");
        let mut key = Zeroizing::new([0u8; NK]);
        let mut base_nonce = Zeroizing::new([0u8; NN]);
        let mut exporter_secret = Zeroizing::new([0u8; NH]);
        labeled_expand(HPKE_SUITE_ID, &secret, b"key", &ctx, key.as_mut())?;
        labeled_expand(
            HPKE_SUITE_ID,
            &secret,
            b"base_nonce",
            &ctx,
            base_nonce.as_mut(),
        )?;
        labeled_expand(
            HPKE_SUITE_ID,
            &secret,
            b"exp",
            &ctx,
            exporter_secret.as_mut(),
        )?;
        let aead = Aes128Gcm::new_from_slice(key.as_ref()).map_err(|_| Error::Crypto)?;
        Ok(Context {
            aead,
            base_nonce,
            exporter_secret,
            seq: 0,
        })
    }

    /// `SetupBaseS(pkR, info)` with a fresh ephemeral key from `rng`: returns `enc` and the
    /// sender's context.
    pub fn sender<R: CryptoRng + RngCore>(
        pk_r: &[u8; ENC_LEN],
        info: &[u8],
        rng: &mut R,
    ) -> Result<([u8; ENC_LEN], Self), Error> {
        let pk = decode_point(pk_r)?;
        let sk_e = PrivateKey::generate(rng)?;
        let enc = sk_e.public_key();
        let ss = shared_secret(&sk_e, &pk, &enc, pk_r)?;
        Ok((enc, Self::schedule(&ss, info)?))
    }

    /// `SetupBaseR(enc, skR, info)`: the receiver's context.
    pub fn receiver(enc: &[u8; ENC_LEN], sk_r: &PrivateKey, info: &[u8]) -> Result<Self, Error> {
        let pk_e = decode_point(enc).map_err(|_| Error::Decrypt)?;
        let ss = shared_secret(sk_r, &pk_e, enc, &sk_r.public_key())?;
        Self::schedule(&ss, info)
    }

    fn next_nonce(&mut self) -> Result<Nonce, Error> {
        let mut nonce = *self.base_nonce;
        let seq = self.seq.to_be_bytes();
        for (n, s) in nonce.iter_mut().rev().zip(seq.iter().rev()) {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1).ok_or(Error::Crypto)?;
        Ok(nonce.into())
    }

    /// `ContextS.Seal(aad, pt)` in place; returns the tag.
    pub fn seal(&mut self, buf: &mut [u8], aad: &[u8]) -> Result<[u8; TAG_LEN], Error> {
        let nonce = self.next_nonce()?;
        let tag = self
            .aead
            .encrypt_in_place_detached(&nonce, aad, buf)
            .map_err(|_| Error::Crypto)?;
        Ok(tag.into())
    }

    /// `ContextR.Open(aad, ct)` in place. The sequence number advances only on success, as
    /// RFC 9180 §5.2 specifies.
    pub fn open(&mut self, buf: &mut [u8], aad: &[u8], tag: &[u8; TAG_LEN]) -> Result<(), Error> {
        let seq = self.seq;
        let nonce = self.next_nonce()?;
        self.aead
            .decrypt_in_place_detached(&nonce, aad, buf, Tag::from_slice(tag))
            .map_err(|_| {
                self.seq = seq;
                Error::Decrypt
            })
    }

    /// `Context.Export(exporter_context, L)` into `out`.
    pub fn export(&self, exporter_context: &[u8], out: &mut [u8]) -> Result<(), Error> {
        labeled_expand(
            HPKE_SUITE_ID,
            &self.exporter_secret,
            b"sec",
            exporter_context,
            out,
        )
    }
}
