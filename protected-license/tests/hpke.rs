//! The crate's HPKE against RFC 9180's published vectors (Appendix A.3.1) and against the
//! independent `hpke` crate in both directions.

use std::collections::HashMap;

use hpke::{Deserializable, Kem as _, Serializable};
use protected_license::hpke::{Context, PrivateKey};
use rand_core::{CryptoRng, RngCore};

mod common;
use common::TestRng;

fn vectors() -> HashMap<String, Vec<u8>> {
    include_str!("data/rfc9180-a3-1.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_string(), hex::decode(v.trim()).unwrap())
        })
        .collect()
}

/// Hands out fixed bytes (the RFC's ikmE), then panics.
struct FixedRng(Vec<u8>);
impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        unimplemented!()
    }
    fn next_u64(&mut self) -> u64 {
        unimplemented!()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "FixedRng exhausted");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for FixedRng {}

#[test]
fn derive_key_pair_matches_rfc() {
    let v = vectors();
    let sk_r = PrivateKey::derive(&v["ikmR"]).unwrap();
    assert_eq!(sk_r.to_bytes().as_slice(), v["skRm"].as_slice());
    assert_eq!(sk_r.public_key().as_slice(), v["pkRm"].as_slice());
    let sk_e = PrivateKey::derive(&v["ikmE"]).unwrap();
    assert_eq!(sk_e.to_bytes().as_slice(), v["skEm"].as_slice());
    assert_eq!(sk_e.public_key().as_slice(), v["pkEm"].as_slice());
}

#[test]
fn sender_reproduces_rfc_enc_and_ciphertext() {
    let v = vectors();
    let pk_r: [u8; 65] = v["pkRm"].clone().try_into().unwrap();
    let (enc, mut ctx) =
        Context::sender(&pk_r, &v["info"], &mut FixedRng(v["ikmE"].clone())).unwrap();
    assert_eq!(enc.as_slice(), v["enc"].as_slice());
    let mut buf = v["pt"].clone();
    let tag = ctx.seal(&mut buf, &v["aad"]).unwrap();
    buf.extend_from_slice(&tag);
    assert_eq!(buf, v["ct"]);
    for i in 0..3 {
        let mut out = [0u8; 32];
        ctx.export(&v[&format!("exporter_context_{i}")], &mut out)
            .unwrap();
        assert_eq!(
            out.as_slice(),
            v[&format!("exported_value_{i}")].as_slice(),
            "export {i}"
        );
    }
}

#[test]
fn receiver_opens_rfc_ciphertext_and_rejects_tampering() {
    let v = vectors();
    let sk_r = PrivateKey::from_bytes(&v["skRm"].clone().try_into().unwrap()).unwrap();
    let enc: [u8; 65] = v["enc"].clone().try_into().unwrap();
    let (ct, tag) = v["ct"].split_at(v["ct"].len() - 16);
    let tag: [u8; 16] = tag.try_into().unwrap();

    let mut ctx = Context::receiver(&enc, &sk_r, &v["info"]).unwrap();
    let mut bad = ct.to_vec();
    bad[0] ^= 1;
    assert!(ctx.open(&mut bad, &v["aad"], &tag).is_err());
    // A failed open does not advance the sequence number: the genuine message still opens.
    let mut buf = ct.to_vec();
    ctx.open(&mut buf, &v["aad"], &tag).unwrap();
    assert_eq!(buf, v["pt"]);

    let mut wrong_info = Context::receiver(&enc, &sk_r, b"other info").unwrap();
    let mut buf = ct.to_vec();
    assert!(wrong_info.open(&mut buf, &v["aad"], &tag).is_err());
}

type Kem = hpke::kem::DhP256HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm128;

#[test]
fn interoperates_with_the_hpke_crate_both_ways() {
    let mut rng = TestRng::new(b"hpke cross-check");
    for round in 0..8u8 {
        let info = [b"info ".as_slice(), &[round]].concat();
        let aad = [b"aad ".as_slice(), &[round]].concat();
        let msgs: Vec<Vec<u8>> = (0..3)
            .map(|i| vec![round ^ i; 16 + usize::from(i)])
            .collect();

        // Ours seals, the hpke crate opens.
        let (sk_theirs, pk_theirs) = Kem::gen_keypair(&mut rng);
        let pk: [u8; 65] = pk_theirs.to_bytes().as_slice().try_into().unwrap();
        let (enc, mut ctx) = Context::sender(&pk, &info, &mut rng).unwrap();
        let enc_theirs = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).unwrap();
        let mut rx = hpke::setup_receiver::<Aead, Kdf, Kem>(
            &hpke::OpModeR::Base,
            &sk_theirs,
            &enc_theirs,
            &info,
        )
        .unwrap();
        for m in &msgs {
            let mut buf = m.clone();
            let tag = ctx.seal(&mut buf, &aad).unwrap();
            let tag = hpke::aead::AeadTag::<Aead>::from_bytes(&tag).unwrap();
            rx.open_in_place_detached(&mut buf, &aad, &tag).unwrap();
            assert_eq!(&buf, m);
        }

        // The hpke crate seals, ours opens.
        let sk_ours = PrivateKey::generate(&mut rng).unwrap();
        let pk_ours = <Kem as hpke::Kem>::PublicKey::from_bytes(&sk_ours.public_key()).unwrap();
        let (enc, mut tx) = hpke::setup_sender::<Aead, Kdf, Kem, _>(
            &hpke::OpModeS::Base,
            &pk_ours,
            &info,
            &mut rng,
        )
        .unwrap();
        let enc: [u8; 65] = enc.to_bytes().as_slice().try_into().unwrap();
        let mut ctx = Context::receiver(&enc, &sk_ours, &info).unwrap();
        for m in &msgs {
            let mut buf = m.clone();
            let tag = tx.seal_in_place_detached(&mut buf, &aad).unwrap();
            let tag: [u8; 16] = tag.to_bytes().as_slice().try_into().unwrap();
            ctx.open(&mut buf, &aad, &tag).unwrap();
            assert_eq!(&buf, m);
        }
    }
}
