//! Signatures and key wrap against independent implementations and published vectors:
//! ECDSA P-256/SHA-256 against `ring` in both directions, AES key wrap against RFC 3394 §4.1.

use protected_license::crypto::{PublicKey, SigningKey};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

mod common;
use common::{Pki, TestRng, NOW};

#[test]
fn ring_verifies_our_signatures() {
    let mut rng = TestRng::new(b"ring cross-check");
    for i in 0..16u8 {
        let key = SigningKey::generate(&mut rng);
        let msg = vec![i; usize::from(i) * 7];
        let sig = key.sign(&msg);
        let pk = UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            key.public_key().as_bytes().to_vec(),
        );
        pk.verify(&msg, &sig).expect("ring accepts our signature");
        let mut bad = sig;
        bad[10] ^= 0x40;
        assert!(pk.verify(&msg, &bad).is_err());
    }
}

#[test]
fn we_verify_ring_signatures() {
    let rng = SystemRandom::new();
    for i in 0..16u8 {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let pk = PublicKey::from_bytes(pair.public_key().as_ref().try_into().unwrap()).unwrap();
        let msg = vec![i ^ 0x5a; 100 + usize::from(i)];
        let sig: [u8; 64] = pair.sign(&rng, &msg).unwrap().as_ref().try_into().unwrap();
        pk.verify(&msg, &sig).expect("we accept ring's signature");
        assert!(pk.verify(b"another message", &sig).is_err());
    }
}

/// The signatures inside real protocol messages verify with ring too (certificate and license
/// signatures over exactly the bytes before them).
#[test]
fn ring_verifies_protocol_message_signatures() {
    let pki = Pki::new(b"ring protocol");
    let cert = pki.server.certificate();
    let (tbs, sig) = cert.split_at(cert.len() - 64);
    UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        pki.root.public_key().as_bytes().to_vec(),
    )
    .verify(tbs, sig)
    .unwrap();
    let _ = NOW;
}

#[test]
fn public_keys_are_validated() {
    let mut rng = TestRng::new(b"pk validation");
    let good = *SigningKey::generate(&mut rng).public_key().as_bytes();
    let mut compressed_tag = good;
    compressed_tag[0] = 0x02;
    assert!(PublicKey::from_bytes(&compressed_tag).is_err());
    let mut off_curve = good;
    off_curve[64] ^= 1;
    assert!(PublicKey::from_bytes(&off_curve).is_err());
    assert!(PublicKey::from_bytes(&[0u8; 65]).is_err());
}

/// RFC 3394 §4.1: 128-bit KEK wraps 128 bits of key data (the primitive under rotation
/// records).
#[test]
fn aes_key_wrap_matches_rfc3394() {
    let kek = aes_kw::KekAes128::from(
        <[u8; 16]>::try_from(hex::decode("000102030405060708090A0B0C0D0E0F").unwrap()).unwrap(),
    );
    let mut out = [0u8; 24];
    kek.wrap(
        &hex::decode("00112233445566778899AABBCCDDEEFF").unwrap(),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        hex::encode_upper(out),
        "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
    );
}
