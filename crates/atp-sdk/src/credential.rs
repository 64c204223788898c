//! Credential helpers: issue a VC 2.0 credential as this agent (a quantum-safe proof set made
//! with the components of its composite key), and verify one locally.

use atp_core::CoreError;
use atp_core::data_integrity::{self, ProofSetOptions, VerifiedCredential, VerifyOptions};
use atp_core::did::method::{self, Material, Needs, Relationship};
use atp_core::kel::{KelState, KeyEventLog};
use atp_crypto::PublicKey;
use serde_json::Value;

use crate::agent::Agent;
use crate::clock::{now_ms, timestamp};
use crate::error::{Error, Result};

impl Agent {
    /// Signs `credential` (an unsecured VC 2.0 credential) as this agent: `issuer` is set to
    /// the agent's DID when absent and must be it otherwise, `validFrom` defaults to now, and
    /// the proof set is one `mldsa65-jcs-2024` proof (`#mldsa65`) and one `eddsa-jcs-2022` proof
    /// (`#ed25519`), docs/protocol.md §C3. Purely local.
    pub fn issue_credential(&self, credential: &Value) -> Result<Value> {
        let did = self.did();
        let mut doc = credential
            .as_object()
            .cloned()
            .ok_or_else(|| Error::InvalidArgument("a credential must be a JSON object".into()))?;
        match doc.get("issuer") {
            None => {
                doc.insert("issuer".into(), Value::String(did.clone()));
            }
            Some(Value::String(s)) if *s == did => {}
            Some(Value::Object(o)) if o.get("id").and_then(Value::as_str) == Some(did.as_str()) => {
            }
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "issuer {other} is not this agent ({did})"
                )));
            }
        }
        let now = timestamp(now_ms() / 1000 * 1000);
        doc.entry("validFrom").or_insert_with(|| Value::String(now.clone()));
        let doc = Value::Object(doc);
        atp_core::vc::check_credential(&doc)?;
        let key = self.current_key()?;
        let options =
            ProofSetOptions::assertion(format!("{did}#mldsa65"), format!("{did}#ed25519"), now);
        Ok(data_integrity::sign_quantum_safe_proof_set(&doc, &key, &options)?)
    }

    /// Verifies a secured credential locally under the quantum-safe policy: the VC 2.0 rules,
    /// the validity period, and both proofs under the issuer's current keys (a `did:atp`
    /// issuer's log is fetched and verified here; a `did:key` resolves offline). The status
    /// lists are not consulted here; the node's `VerifyCredential` does that.
    pub async fn verify_credential(&self, credential: &Value) -> Result<VerifiedCredential> {
        let info = atp_core::vc::check_credential(credential)?;
        // The issuer's log is fetched and verified here when its method keeps one; any other
        // controller's method must resolve with nothing fetched (did:key).
        let issuer_log: Option<KelState> = match method::lookup(&info.issuer) {
            Some(m) if m.needs() == Needs::KeyEventLog => {
                m.check(&info.issuer)?;
                let events = self.verified_log(&info.issuer).await?;
                let state = KeyEventLog::default().verify_did(&info.issuer, &events)?;
                if state.deactivated {
                    return Err(Error::Deactivated { did: info.issuer.clone() });
                }
                Some(state)
            }
            _ => None,
        };
        let resolver = move |vm: &str| -> Result<PublicKey, CoreError> {
            let controller = data_integrity::controller_of(vm);
            let method = method::lookup(controller).ok_or_else(|| {
                CoreError::DidInvalid(format!("unknown verification method {vm}"))
            })?;
            let material = match &issuer_log {
                Some(state) if state.did == controller => Material::VerifiedLog(state),
                _ => Material::Nothing,
            };
            method.verification_key(vm, &[Relationship::Assertion], material)
        };
        let now = now_ms() / 1000;
        Ok(data_integrity::verify_credential(
            credential,
            now,
            &VerifyOptions::assertion(),
            &resolver,
        )?)
    }
}
