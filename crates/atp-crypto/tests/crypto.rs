//! `atp-crypto`'s integration tests, in one test binary so that they link once rather than once
//! per file (CI time, issue 15): the key file, the differential test of ML-DSA against OpenSSL,
//! sealing at rest against OpenSSL, round trips and tamper and downgrade resistance of every algorithm, known-answer vectors and
//! the Wycheproof cases. Each former test file is a module under `tests/crypto/` (proptest keeps
//! its regressions beside the module, `tests/crypto/signatures.proptest-regressions`).

#[path = "crypto/keyfile.rs"]
mod keyfile;
#[path = "crypto/openssl_differential.rs"]
mod openssl_differential;
#[path = "crypto/sealing.rs"]
mod sealing;
#[path = "crypto/signatures.rs"]
mod signatures;
#[path = "crypto/vectors.rs"]
mod vectors;
#[path = "crypto/wycheproof.rs"]
mod wycheproof;
