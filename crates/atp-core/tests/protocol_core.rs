//! `atp-core`'s integration tests, in one test binary so that they link once rather than once
//! per file (CI time, issue 15): signed checkpoints, Data Integrity proofs, `did:key`, signed
//! envelopes, trust evidence, JCS, `did:atp` key event logs, interoperability with the Python
//! implementation, status lists, the Merkle tree, trust proofs and the VC verifier rules. Each
//! former test file is a module under `tests/protocol_core/`.

#[path = "protocol_core/audit.rs"]
mod audit;
#[path = "protocol_core/checkpoint.rs"]
mod checkpoint;
#[path = "protocol_core/data_integrity.rs"]
mod data_integrity;
#[path = "protocol_core/did_key.rs"]
mod did_key;
#[path = "protocol_core/envelope.rs"]
mod envelope;
#[path = "protocol_core/evidence.rs"]
mod evidence;
#[path = "protocol_core/jcs.rs"]
mod jcs;
#[path = "protocol_core/kel.rs"]
mod kel;
#[path = "protocol_core/python_interop.rs"]
mod python_interop;
#[path = "protocol_core/status_list.rs"]
mod status_list;
#[path = "protocol_core/tlog.rs"]
mod tlog;
#[path = "protocol_core/trust_proof.rs"]
mod trust_proof;
#[path = "protocol_core/vc.rs"]
mod vc;
#[path = "protocol_core/witness.rs"]
mod witness;
