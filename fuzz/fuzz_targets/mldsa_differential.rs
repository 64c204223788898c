#![no_main]
//! ATP's ML-DSA verification (libcrux) against a second implementation in the same process
//! (`fips204`), on signatures the fuzzer derives from a valid one. A disagreement panics.
//!
//! Input: byte 0 picks the parameter set; byte 1 picks what the patches apply to (signature,
//! message or context); the rest are patches `(offset: u16 LE, xor: u8)` applied to a valid
//! signature, message or context made once per parameter set. Starting from a valid signature
//! keeps the fuzzer near the accept/refuse boundary, where verifiers disagree, instead of
//! among random bytes that every verifier refuses at the first check.
use atp_crypto::{AlgorithmId, PublicKey, SigningKey};
use fips204::traits::{SerDes, Verifier};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Valid {
    key: PublicKey,
    msg: Vec<u8>,
    ctx: Vec<u8>,
    sig: Vec<u8>,
}

const SETS: [AlgorithmId; 3] = [AlgorithmId::MlDsa44, AlgorithmId::MlDsa65, AlgorithmId::MlDsa87];

fn valid() -> &'static [Valid; 3] {
    static VALID: OnceLock<[Valid; 3]> = OnceLock::new();
    VALID.get_or_init(|| {
        SETS.map(|alg| {
            let sk = SigningKey::from_seed(alg, &[0x42; 32]).expect("key");
            let msg = b"fuzzed ML-DSA message".to_vec();
            let ctx = b"atp/fuzz/v1".to_vec();
            let sig = sk.sign(&msg, &ctx).expect("sign");
            Valid { key: sk.public_key(), msg, ctx, sig }
        })
    })
}

/// fips204's verdict; any length or decoding failure is a refusal.
fn second_opinion(alg: AlgorithmId, pk: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
    macro_rules! verify {
        ($m:ident) => {{
            let (Ok(pk), Ok(sig)) = (pk.try_into(), sig.try_into()) else { return false };
            match fips204::$m::PublicKey::try_from_bytes(pk) {
                Ok(pk) => pk.verify(msg, &sig, ctx),
                Err(_) => false,
            }
        }};
    }
    match alg {
        AlgorithmId::MlDsa44 => verify!(ml_dsa_44),
        AlgorithmId::MlDsa65 => verify!(ml_dsa_65),
        _ => verify!(ml_dsa_87),
    }
}

fuzz_target!(|data: &[u8]| {
    let [set, target, patches @ ..] = data else { return };
    let set = usize::from(*set) % SETS.len();
    let valid = &valid()[set];
    let (mut msg, mut ctx, mut sig) = (valid.msg.clone(), valid.ctx.clone(), valid.sig.clone());
    let patched = match target % 3 {
        0 => &mut sig,
        1 => &mut msg,
        _ => &mut ctx,
    };
    for patch in patches.chunks_exact(3) {
        let offset = usize::from(u16::from_le_bytes([patch[0], patch[1]]));
        if patched.is_empty() {
            break;
        }
        let i = offset % patched.len();
        patched[i] ^= patch[2];
    }
    let ours = valid.key.verify(&msg, &ctx, &sig).is_ok();
    let theirs = second_opinion(SETS[set], valid.key.as_bytes(), &msg, &ctx, &sig);
    assert_eq!(ours, theirs, "{}: ATP {ours}, fips204 {theirs}", SETS[set]);
});
