//! Crash consistency of persistent licenses: the `secure-world-host` process is killed with
//! SIGKILL at every durable storage step of a sequence of stores, key additions, removals and
//! release acknowledgements (hal's crash-test hook, armed through
//! `TEE_CDM_KILL_AT_STORAGE_STEP`), then restarted on the same directory. After every kill:
//! every acknowledged license loads with the same keys, every acknowledged removal loads as a
//! record of license destruction, every acknowledged release is gone, the operation in flight
//! is either fully done or not at all, and the store holds no temporary file and exactly one
//! record per stored license. The test prints the number of kill points (at least 1000).
//!
//! Named `socket_*`: it spawns the host binary, which CI's qemu-user runs cannot.

#[path = "../../normal-world/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use cdm_testkit::temp::file_names;

use common::*;
use normal_world::{
    EmeError, KeyStatus, MediaKeySession, MediaKeySessionEvent, MediaKeys, MessageType, OutputWish,
    SessionType,
};

/// Licenses stored by the sequence.
const LICENSES: usize = 56;

/// One step of the sequence.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A new persistent session with license `i` (key `i`).
    Store(usize),
    /// License `i` gains key `i + 1000` (a second update: the record is replaced).
    AddKey(usize),
    /// `remove()` on license `i`.
    Remove(usize),
    /// The release acknowledgement of license `i`.
    Ack(usize),
}

fn ops() -> Vec<Op> {
    let mut v = Vec::new();
    for i in 0..LICENSES {
        v.push(Op::Store(i));
        if i % 3 == 2 {
            v.push(Op::AddKey(i - 1));
        }
        if i % 4 == 3 {
            v.push(Op::Remove(i - 2));
        }
        if i % 8 == 7 {
            v.push(Op::Ack(i - 2));
        }
    }
    v
}

fn kid(n: usize) -> [u8; 16] {
    let mut k = [0x5a; 16];
    k[..8].copy_from_slice(&u64::try_from(n).unwrap().to_be_bytes());
    k
}

fn key(n: usize) -> [u8; 16] {
    let mut k = [0xc3; 16];
    k[8..].copy_from_slice(
        &u64::try_from(n)
            .unwrap()
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .to_le_bytes(),
    );
    k
}

/// What a license should look like after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// Loads, with these key numbers usable.
    Active(Vec<usize>),
    /// Loads as a record of license destruction for these key numbers.
    Released(Vec<usize>),
    /// Does not load.
    Gone,
}

/// The model after `op` succeeded.
fn apply(model: &BTreeMap<usize, Expect>, op: Op) -> BTreeMap<usize, Expect> {
    let mut m = model.clone();
    match op {
        Op::Store(i) => {
            m.insert(i, Expect::Active(vec![i]));
        }
        Op::AddKey(i) => {
            if let Some(Expect::Active(keys)) = m.get_mut(&i) {
                keys.push(i + 1000);
            }
        }
        Op::Remove(i) => {
            if let Some(Expect::Active(keys)) = m.get(&i).cloned() {
                m.insert(i, Expect::Released(keys));
            }
        }
        Op::Ack(i) => {
            m.insert(i, Expect::Gone);
        }
    }
    m
}

fn license_for(request: &[u8], keys: &[usize]) -> Vec<u8> {
    let owned: Vec<([u8; 16], [u8; 16])> = keys.iter().map(|&n| (kid(n), key(n))).collect();
    let refs: Vec<(&[u8], &[u8; 16])> = owned.iter().map(|(k, v)| (&k[..], v)).collect();
    cdm_testkit::clearkey::answer(request, &refs).unwrap()
}

fn kids_json(keys: &[usize]) -> String {
    let kids: Vec<String> = keys
        .iter()
        .map(|&n| format!("\"{}\"", cdm_testkit::clearkey::b64url(&kid(n))))
        .collect();
    format!("{{\"kids\":[{}]}}", kids.join(","))
}

/// Runs `op`; `Err` when the secure world went away.
fn run(
    mk: &MediaKeys,
    sessions: &mut BTreeMap<usize, MediaKeySession>,
    ids: &mut BTreeMap<usize, String>,
    model: &BTreeMap<usize, Expect>,
    op: Op,
) -> Result<(), EmeError> {
    match op {
        Op::Store(i) => {
            let s = mk.create_session(SessionType::PersistentLicense)?;
            s.generate_request("keyids", kids_json(&[i]).as_bytes())?;
            ids.insert(i, s.session_id());
            let Some(MediaKeySessionEvent::Message { message, .. }) = s.next_event() else {
                panic!("no license request")
            };
            s.update(&license_for(&message, &[i]))?;
            sessions.insert(i, s);
        }
        Op::AddKey(i) => {
            let s = &sessions[&i];
            // The request lists the new key only; the server answers with that key.
            let n = i + 1000;
            let request = format!(
                "{{\"kids\":[\"{}\"],\"type\":\"persistent-license\"}}",
                cdm_testkit::clearkey::b64url(&kid(n))
            );
            s.update(&license_for(request.as_bytes(), &[n]))?;
        }
        Op::Remove(i) => sessions[&i].remove()?,
        Op::Ack(i) => {
            let Some(Expect::Released(keys)) = model.get(&i) else {
                panic!("ack of a license not released")
            };
            sessions[&i].update(kids_json(keys).as_bytes())?;
        }
    }
    // Sessions not needed any more are closed (the secure world holds 32 at most).
    let done: Vec<usize> = sessions
        .keys()
        .copied()
        .filter(|&j| j + 3 <= op_index(op))
        .collect();
    for j in done {
        if let Some(s) = sessions.remove(&j) {
            s.close()?;
        }
    }
    Ok(())
}

fn op_index(op: Op) -> usize {
    match op {
        Op::Store(i) | Op::AddKey(i) | Op::Remove(i) | Op::Ack(i) => i,
    }
}

/// Whether `id` loads as `expect` in `mk` (which then closes it).
fn check_loads(mk: &MediaKeys, id: &str, expect: &Expect) -> Result<(), String> {
    let s = mk.create_session(SessionType::PersistentLicense).unwrap();
    let found = s.load(id).map_err(|e| format!("load failed: {e}"))?;
    let result = match (expect, found) {
        (Expect::Gone, false) => Ok(()),
        (Expect::Gone, true) => Err("a released license came back".to_string()),
        (_, false) => Err("an acknowledged license is gone".to_string()),
        (Expect::Active(keys), true) => {
            let st = s.key_statuses();
            if st.len() != keys.len() {
                return Err(format!("{} keys, expected {}", st.len(), keys.len()));
            }
            for &n in keys {
                if st.get(&kid(n)) != Some(KeyStatus::Usable) {
                    return Err(format!("key {n} not usable"));
                }
                if !decrypts(mk, n) {
                    return Err(format!("key {n} does not decrypt"));
                }
            }
            Ok(())
        }
        (Expect::Released(keys), true) => {
            let st = s.key_statuses();
            let all_released = keys
                .iter()
                .all(|&n| st.get(&kid(n)) == Some(KeyStatus::Released));
            let release = s.drain_events().into_iter().any(|e| {
                matches!(e, MediaKeySessionEvent::Message { message_type: MessageType::LicenseRelease, message } if message == kids_json(keys).as_bytes())
            });
            if st.len() == keys.len() && all_released && release {
                Ok(())
            } else {
                Err("not loaded as a record of license destruction".to_string())
            }
        }
    };
    // A session whose load found nothing was never callable: nothing to close (EME).
    if found && s.closed().is_none() {
        s.close().unwrap();
    }
    result
}

fn decrypts(mk: &MediaKeys, n: usize) -> bool {
    let iv = [n.to_le_bytes()[0]; 8];
    decrypts_cenc(mk, &kid(n), &key(n), iv, 333, OutputWish::InPlace) == Ok(true)
}

/// The expectation of the op in flight when the host died: before or after.
fn either(
    before: &BTreeMap<usize, Expect>,
    after: &BTreeMap<usize, Expect>,
    i: usize,
) -> Vec<Expect> {
    let b = before.get(&i).cloned().unwrap_or(Expect::Gone);
    let a = after.get(&i).cloned().unwrap_or(Expect::Gone);
    vec![b, a]
}

#[test]
fn socket_crash_consistency_at_every_storage_step() {
    let ops = ops();
    // Every step natively; under qemu-user (a host start costs ~100 times more) CI visits
    // every `TEE_CDM_CRASH_STRIDE`-th step.
    let stride: u64 = std::env::var("TEE_CDM_CRASH_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(1);
    let mut kill_points = 0u64;
    let mut in_flight_applied = 0u64;
    for n in (1u64..).step_by(usize::try_from(stride).unwrap()) {
        let dir = cdm_testkit::temp::TempDir::new("crash");
        // Provisioned beforehand (a device has its root key from the factory): the kill
        // points are those of licenses, not of generating the emulated root key.
        let p = hal::platform::HostPersistence::open(dir.path()).unwrap();
        hal::platform::DeviceRootKey::root_key(&p.root_key, &mut hal::platform::RootKey::zeroed())
            .unwrap();
        drop(p);
        let env = [("TEE_CDM_KILL_AT_STORAGE_STEP", n.to_string())];
        let mut model: BTreeMap<usize, Expect> = BTreeMap::new();
        let mut ids = BTreeMap::new();
        let mut in_flight = None;
        {
            let (mk, _host) = media_keys_with_storage_env(Kind::Socket, dir.path(), &env);
            let mut sessions = BTreeMap::new();
            for &op in &ops {
                match run(&mk, &mut sessions, &mut ids, &model, op) {
                    Ok(()) => model = apply(&model, op),
                    Err(EmeError::SecureWorldLost(_)) => {
                        in_flight = Some(op);
                        break;
                    }
                    Err(e) => panic!("kill point {n}: {op:?} failed: {e}"),
                }
            }
            assert!(in_flight.is_none() || mk.is_lost());
        }
        let Some(op) = in_flight else {
            // The sequence ran to its end: every step has been a kill point.
            break;
        };
        kill_points += 1;

        // Restart on the same directory, without the hook.
        let (mk, _host) = media_keys_with_storage(Kind::Socket, dir.path());
        let after = apply(&model, op);
        let target = op_index(op);
        let mut stored = 0;
        for (&i, id) in &ids {
            if i == target {
                let options = either(&model, &after, i);
                let outcomes: Vec<Result<(), String>> =
                    options.iter().map(|e| check_loads(&mk, id, e)).collect();
                assert!(
                    outcomes.iter().any(Result::is_ok),
                    "kill point {n} during {op:?}: license {i}: {outcomes:?}"
                );
                let matched = if outcomes[0].is_ok() {
                    &options[0]
                } else {
                    &options[1]
                };
                if outcomes[0].is_err() {
                    in_flight_applied += 1;
                }
                if *matched != Expect::Gone {
                    stored += 1;
                }
            } else {
                let expect = model.get(&i).cloned().unwrap_or(Expect::Gone);
                if let Err(why) = check_loads(&mk, id, &expect) {
                    panic!("kill point {n} during {op:?}: license {i}: {why}");
                }
                if expect != Expect::Gone {
                    stored += 1;
                }
            }
        }
        // Nothing half-written: no temporary file, one record per stored license.
        let names = file_names(&dir.join("store"));
        assert!(
            !names.iter().any(|f| f.starts_with('.')),
            "kill point {n}: temporary files left: {names:?}"
        );
        let records = names.iter().filter(|f| f.starts_with("lic-")).count();
        assert_eq!(records, stored, "kill point {n}: records {names:?}");
    }
    println!(
        "crash consistency: {kill_points} kill points (SIGKILL before every {}durable storage \
         step of {} operations); the operation in flight had completed at {in_flight_applied}",
        if stride == 1 {
            String::new()
        } else {
            format!("{stride}th ")
        },
        ops.len()
    );
    assert!(
        kill_points * stride >= 1000,
        "only {kill_points} kill points at stride {stride}"
    );
}
