//! Known-answer tests from the standards, on every engine this CPU offers: FIPS-197 C.1 (the
//! block cipher), NIST SP 800-38A F.2.1/F.2.2 (CBC-AES128) and F.5.1/F.5.2 (CTR-AES128), run
//! through `Aes128` and through the CENC entry points (`cbc1`, `cbcs` 0:0 and `cenc` with a
//! 16-byte IV reduce to plain CBC/CTR on whole-block samples).

mod common;

use common::{field, key16, parse_line, unhex};
use hal::aes::Engine;
use hal::cenc::{decrypt_sample, encrypt_sample, Pattern, Scheme, Subsample};

const VECTORS: &str = include_str!("data/nist_sp800_38a.txt");

struct Vector {
    name: String,
    mode: String,
    encrypt: bool,
    key: [u8; 16],
    iv: Vec<u8>,
    input: Vec<u8>,
    output: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let v: Vec<Vector> = VECTORS
        .lines()
        .filter_map(parse_line)
        .map(|(kind, f)| {
            assert_eq!(kind, "vector");
            Vector {
                name: field(&f, "name").to_owned(),
                mode: field(&f, "mode").to_owned(),
                encrypt: match field(&f, "dir") {
                    "encrypt" => true,
                    "decrypt" => false,
                    d => panic!("bad dir {d}"),
                },
                key: key16(field(&f, "key")),
                iv: unhex(field(&f, "iv")),
                input: unhex(field(&f, "in")),
                output: unhex(field(&f, "out")),
            }
        })
        .collect();
    assert_eq!(v.len(), 6, "vector file lost lines");
    v
}

fn engines() -> Vec<Engine> {
    let e: Vec<Engine> = Engine::available().collect();
    assert!(e.iter().any(|e| e.name() == "portable"));
    e
}

#[test]
fn fips197_block_cipher() {
    for engine in engines() {
        for v in vectors().into_iter().filter(|v| v.mode == "block") {
            let key = engine.key(&v.key);
            let mut block: [u8; 16] = v.input.clone().try_into().unwrap();
            if v.encrypt {
                key.encrypt_block(&mut block);
            } else {
                key.decrypt_block(&mut block);
            }
            assert_eq!(block.to_vec(), v.output, "{} on {}", v.name, engine.name());
        }
    }
}

#[test]
fn sp800_38a_cbc() {
    for engine in engines() {
        for v in vectors().into_iter().filter(|v| v.mode == "cbc") {
            let ctx = format!("{} on {}", v.name, engine.name());
            let key = engine.key(&v.key);
            let iv: [u8; 16] = v.iv.clone().try_into().unwrap();
            let last_ct: [u8; 16] = if v.encrypt { &v.output } else { &v.input }[48..64]
                .try_into()
                .unwrap();

            // Raw primitive, in one call and split in two calls (the chain must continue).
            let mut data = v.input.clone();
            let mut chain = iv;
            if v.encrypt {
                key.cbc_encrypt(&mut chain, &mut data[..16]);
                key.cbc_encrypt(&mut chain, &mut data[16..]);
            } else {
                key.cbc_decrypt(&mut chain, &mut data[..32]);
                key.cbc_decrypt(&mut chain, &mut data[32..]);
            }
            assert_eq!(data, v.output, "{ctx}: split calls");
            assert_eq!(chain, last_ct, "{ctx}: chaining value after the last block");

            // cbc1 (one chain across subsamples) and cbcs 0:0 over one range are plain CBC.
            let cases: [(Scheme, &[Subsample]); 3] = [
                (Scheme::Cbc1, &[]),
                (
                    Scheme::Cbc1,
                    &[
                        Subsample {
                            clear: 0,
                            protected: 32,
                        },
                        Subsample {
                            clear: 0,
                            protected: 32,
                        },
                    ],
                ),
                (Scheme::Cbcs, &[]),
            ];
            for (scheme, map) in cases {
                let mut data = v.input.clone();
                let f = if v.encrypt {
                    encrypt_sample
                } else {
                    decrypt_sample
                };
                f(&key, scheme, &v.iv, Pattern::default(), map, &mut data).unwrap();
                assert_eq!(data, v.output, "{ctx}: {scheme:?} map {map:?}");
            }
        }
    }
}

#[test]
fn sp800_38a_ctr() {
    for engine in engines() {
        for v in vectors().into_iter().filter(|v| v.mode == "ctr") {
            let ctx = format!("{} on {}", v.name, engine.name());
            let key = engine.key(&v.key);
            let iv_hi: [u8; 8] = v.iv[..8].try_into().unwrap();
            let lo = u64::from_be_bytes(v.iv[8..].try_into().unwrap());

            let mut data = v.input.clone();
            let mut ctr = lo;
            key.ctr64_xor(&iv_hi, &mut ctr, &mut data);
            assert_eq!(data, v.output, "{ctx}: ctr64_xor");
            assert_eq!(
                ctr,
                lo.wrapping_add(4),
                "{ctx}: counter advanced by 4 blocks"
            );

            // `cenc` with the 16-byte initial counter block as IV; the keystream must run on
            // across subsamples that split blocks (7 + 20 + 37 = 64 protected bytes).
            let split = [
                Subsample {
                    clear: 0,
                    protected: 7,
                },
                Subsample {
                    clear: 0,
                    protected: 20,
                },
                Subsample {
                    clear: 0,
                    protected: 37,
                },
            ];
            for map in [&[][..], &split[..]] {
                for f in [encrypt_sample, decrypt_sample] {
                    let mut data = v.input.clone();
                    f(
                        &key,
                        Scheme::Cenc,
                        &v.iv,
                        Pattern::default(),
                        map,
                        &mut data,
                    )
                    .unwrap();
                    assert_eq!(data, v.output, "{ctx}: cenc map {map:?}");
                }
            }
        }
    }
}
