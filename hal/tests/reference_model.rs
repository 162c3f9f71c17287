//! Property test: on random keys, IVs, patterns, subsample maps and lengths, the portable
//! engine's `decrypt_sample` and `encrypt_sample` agree with the independent reference model in
//! `common/`. That every other engine gives what the portable one gives, and that encryption
//! followed by decryption is the identity, is the conformance suite's (`tests/conformance.rs`).

mod common;

use common::{reference, SampleFn};
use hal::aes::{Engine, EngineKind};
use hal::cenc::{decrypt_sample, encrypt_sample, Pattern, Scheme, Subsample};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    scheme: Scheme,
    key: [u8; 16],
    iv: Vec<u8>,
    pattern: Pattern,
    map: Vec<Subsample>,
    data: Vec<u8>,
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop_oneof![
        Just(Scheme::Cenc),
        Just(Scheme::Cens),
        Just(Scheme::Cbc1),
        Just(Scheme::Cbcs)
    ]
}

/// IVs valid for the scheme; CTR IVs often sit just below the 2^64 wrap of the low half.
fn iv(scheme: Scheme) -> BoxedStrategy<Vec<u8>> {
    match scheme {
        Scheme::Cenc | Scheme::Cens => prop_oneof![
            prop::collection::vec(any::<u8>(), 8),
            prop::collection::vec(any::<u8>(), 16),
            (any::<[u8; 8]>(), 0u64..300).prop_map(|(hi, below)| {
                [hi.as_slice(), &(u64::MAX - below).to_be_bytes()].concat()
            }),
        ]
        .boxed(),
        Scheme::Cbc1 | Scheme::Cbcs => prop::collection::vec(any::<u8>(), 16).boxed(),
    }
}

fn pattern(scheme: Scheme) -> BoxedStrategy<Pattern> {
    match scheme {
        Scheme::Cenc | Scheme::Cbc1 => Just(Pattern::default()).boxed(),
        Scheme::Cens | Scheme::Cbcs => prop_oneof![
            Just(Pattern { crypt: 1, skip: 9 }),
            Just(Pattern::default()),
            (1u8..16, 0u8..16).prop_map(|(crypt, skip)| Pattern { crypt, skip }),
        ]
        .boxed(),
    }
}

/// A subsample map and a sample it describes exactly (empty map: a random whole sample).
fn map_and_data() -> impl Strategy<Value = (Vec<Subsample>, Vec<u8>)> {
    prop_oneof![
        (0usize..3000).prop_map(|n| (Vec::new(), n)),
        prop::collection::vec((0u32..200, 0u32..700), 1..8).prop_map(|v| {
            let map: Vec<Subsample> = v
                .into_iter()
                .map(|(clear, protected)| Subsample { clear, protected })
                .collect();
            let n = map.iter().map(|s| (s.clear + s.protected) as usize).sum();
            (map, n)
        }),
    ]
    .prop_flat_map(|(map, n)| (Just(map), prop::collection::vec(any::<u8>(), n)))
}

fn case() -> impl Strategy<Value = Case> {
    scheme().prop_flat_map(|scheme| {
        (
            any::<[u8; 16]>(),
            iv(scheme),
            pattern(scheme),
            map_and_data(),
        )
            .prop_map(move |(key, iv, pattern, (map, data))| Case {
                scheme,
                key,
                iv,
                pattern,
                map,
                data,
            })
    })
}

fn run(f: SampleFn, engine: Engine, c: &Case) -> Vec<u8> {
    let mut out = c.data.clone();
    f(
        &engine.key(&c.key),
        c.scheme,
        &c.iv,
        c.pattern,
        &c.map,
        &mut out,
    )
    .unwrap_or_else(|e| panic!("valid case refused: {e}"));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn portable_matches_reference_model(c in case()) {
        let portable = Engine::new(EngineKind::Portable).unwrap();
        for (decrypt, f) in [(true, decrypt_sample as SampleFn), (false, encrypt_sample)] {
            let mut expected = c.data.clone();
            reference(decrypt, c.scheme, &c.key, &c.iv, c.pattern, &c.map, &mut expected);
            prop_assert_eq!(run(f, portable, &c), expected, "decrypt={}", decrypt);
        }
    }
}
