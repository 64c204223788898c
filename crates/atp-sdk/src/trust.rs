//! Trust: the node's signed trust proofs, verified here, and the evidence an agent signs
//! (endorsements, co-signed interaction receipts, incident reports; docs/protocol.md Part G).

use atp_core::evidence::{EvidenceBody, Outcome, Severity, SignedEvidence};
use atp_core::trust_proof::{self, VerifiedTrustProof};
use atp_grpc::v1;
use atp_grpc::v1::trust_service_client::TrustServiceClient;
use serde_json::Value;

use crate::agent::Agent;
use crate::clock::{now_ms, timestamp};
use crate::error::{Error, Result};

/// A DID's trust as the node computed it, from a trust proof that the SDK verified under the
/// node's current key.
#[derive(Clone, Debug, PartialEq)]
pub struct Trust {
    /// The verified claims of the proof (subject, score, level, evidence count, computed at).
    pub proof: VerifiedTrustProof,
    /// The level's name (`UNKNOWN`, `BASIC`, `VERIFIED`, `TRUSTED`, `PRIVILEGED`).
    pub level_name: &'static str,
    /// The hard gates that capped the level, as the node reports them (not signed).
    pub gates: Vec<String>,
    /// The trust-proof credential itself, for relying parties that verify it again offline.
    pub proof_json: Value,
    /// The raw score before normalisation, unrounded, as the node reports it (not signed).
    pub raw_score: f64,
    /// The penalty that negative evidence subtracted from the raw score, as the node reports
    /// it (not signed).
    pub penalty: f64,
}

impl Trust {
    /// The level, 0 (UNKNOWN) to 4 (PRIVILEGED).
    pub fn level(&self) -> u8 {
        self.proof.claims.level
    }

    /// The score in [0, 1].
    pub fn score(&self) -> f64 {
        self.proof.claims.score
    }
}

/// What the node said about submitted evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceReceipt {
    /// SHA-256(JCS(body)), checked against the evidence the SDK sent.
    pub content_hash: [u8; 32],
    /// Whether the node already held the same body.
    pub duplicate: bool,
    /// The transparency-log leaf index, when the node reported one.
    pub leaf_index: Option<u64>,
}

impl Agent {
    /// The sender's verified trust level for [`Agent::open`]: cached, or from a fresh verified
    /// proof; `None` (not cached, so the next envelope asks again) when the node has no
    /// computation yet or does not serve trust. A proof that does not verify is an error.
    pub(crate) async fn sender_trust_level(&self, did: &str) -> Result<Option<u8>> {
        if let Some(level) = self.trust_levels.get(did) {
            return Ok(Some(level));
        }
        match self.trust(did).await {
            Ok(trust) => {
                self.trust_levels.put(did, trust.level(), trust.proof.valid_until);
                Ok(Some(trust.level()))
            }
            Err(Error::Rejected { code: tonic::Code::Unimplemented, .. }) => Ok(None),
            Err(Error::Rejected { reason: Some(reason), .. }) if reason == "TRUST_NOT_COMPUTED" => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The trust level and score of `did`: the node's signed trust proof, verified here under
    /// the node's current key (from its verified key event log), for `did`, and unexpired.
    pub async fn trust(&self, did: &str) -> Result<Trust> {
        const OP: &str = "GetTrust";
        atp_core::did::validate_did(did)?;
        let node_did = self.node_did().await?;
        let node_log = self.verified_log(&node_did).await?;
        let node_key =
            atp_core::kel::KeyEventLog::default().verify_did(&node_did, &node_log)?.current_key;
        let node = self.node();
        let response = node
            .call(OP, |ch| {
                let req = node.request(v1::GetTrustRequest { did: did.to_owned() });
                async move { TrustServiceClient::new(ch).get_trust(req).await }
            })
            .await?;
        let proof_json: Value = serde_json::from_slice(&response.trust_proof_json)
            .map_err(|e| Error::misbehaved(OP, format!("the trust proof is not JSON: {e}")))?;
        let proof =
            trust_proof::verify_trust_proof(&proof_json, &node_did, &node_key, now_ms() / 1000)
                .map_err(|e| {
                    Error::misbehaved(OP, format!("the trust proof does not verify: {e}"))
                })?;
        if proof.claims.subject != did {
            return Err(Error::misbehaved(
                OP,
                format!("the trust proof is about {}", proof.claims.subject),
            ));
        }
        let level_name = trust_proof::level_name(proof.claims.level).unwrap_or("UNKNOWN");
        Ok(Trust {
            proof,
            level_name,
            gates: response.gates,
            proof_json,
            raw_score: response.raw_score,
            penalty: response.penalty,
        })
    }

    /// Why `did` has its trust level: the strongest evidence paths from the anchors (the
    /// node's explanation; informative, not signed).
    pub async fn explain_trust(&self, did: &str) -> Result<v1::ExplainTrustResponse> {
        atp_core::did::validate_did(did)?;
        let node = self.node();
        node.call("ExplainTrust", |ch| {
            let req =
                node.request(v1::ExplainTrustRequest { did: did.to_owned(), ..Default::default() });
            async move { TrustServiceClient::new(ch).explain_trust(req).await }
        })
        .await
    }

    fn sign_evidence(&self, body: EvidenceBody) -> Result<SignedEvidence> {
        body.validate()?;
        let key = self.current_key()?;
        Ok(body.sign(&key)?)
    }

    fn created_now() -> String {
        timestamp(now_ms())
    }

    /// Endorses `subject` (optionally for one capability) and submits the signed evidence.
    pub async fn endorse(
        &self,
        subject: &str,
        capability: Option<&str>,
    ) -> Result<EvidenceReceipt> {
        let state = self.state();
        let body = EvidenceBody::endorsement(
            &state.did,
            state.key_sequence,
            subject,
            &Self::created_now(),
            capability,
        );
        let evidence = self.sign_evidence(body)?;
        self.submit_evidence(&evidence).await
    }

    /// Reports an incident about `subject` and submits the signed evidence.
    pub async fn report_incident(
        &self,
        subject: &str,
        severity: Severity,
        capability: Option<&str>,
    ) -> Result<EvidenceReceipt> {
        let state = self.state();
        let body = EvidenceBody::incident(
            &state.did,
            state.key_sequence,
            subject,
            &Self::created_now(),
            severity,
            capability,
        );
        let evidence = self.sign_evidence(body)?;
        self.submit_evidence(&evidence).await
    }

    /// Starts an interaction receipt with `subject`: signed by this agent, to be countersigned
    /// by the subject ([`Agent::countersign_receipt`]) and then submitted by either party.
    /// `subject_key_seq` is the subject's current key sequence (from its verified log).
    pub async fn start_receipt(
        &self,
        subject: &str,
        capability: &str,
        outcome: Outcome,
    ) -> Result<SignedEvidence> {
        let subject_log = self.verified_log(subject).await?;
        let subject_state =
            atp_core::kel::KeyEventLog::default().verify_did(subject, &subject_log)?;
        let state = self.state();
        let body = EvidenceBody::receipt(
            &state.did,
            state.key_sequence,
            subject,
            subject_state.key_sequence,
            &Self::created_now(),
            capability,
            outcome,
        );
        self.sign_evidence(body)
    }

    /// Countersigns a receipt that names this agent as its subject, after checking that the
    /// issuer's signature verifies under the issuer's key (from its verified log).
    pub async fn countersign_receipt(&self, receipt: SignedEvidence) -> Result<SignedEvidence> {
        let me = self.state();
        if receipt.body.subject != me.did || receipt.body.subject_key_seq != Some(me.key_sequence) {
            return Err(Error::InvalidArgument(format!(
                "the receipt is for {} key #{:?}, not this agent ({} key #{})",
                receipt.body.subject, receipt.body.subject_key_seq, me.did, me.key_sequence
            )));
        }
        receipt.body.validate()?;
        let issuer_log = self.verified_log(&receipt.body.issuer).await?;
        let _verified =
            atp_core::kel::KeyEventLog::default().verify_did(&receipt.body.issuer, &issuer_log)?;
        let key = issuer_log
            .get(usize::try_from(receipt.body.issuer_key_seq).unwrap_or(usize::MAX))
            .and_then(|e| e.event.k.as_ref())
            .ok_or_else(|| {
                Error::InvalidArgument("the receipt names an unknown issuer key".into())
            })?
            .to_public_key()?;
        let sig =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &receipt.sig)
                .map_err(|_| {
                    Error::InvalidArgument("the issuer's signature is not base64url".into())
                })?;
        key.verify(
            &receipt.body.canonical_bytes()?,
            atp_crypto::SigningContext::Evidence.as_bytes(),
            &sig,
        )?;
        let key = self.current_key()?;
        Ok(receipt.countersign(&key)?)
    }

    /// Submits signed evidence to the node; the acknowledged content hash must be the
    /// evidence's own.
    pub async fn submit_evidence(&self, evidence: &SignedEvidence) -> Result<EvidenceReceipt> {
        const OP: &str = "SubmitEvidence";
        let json = evidence.to_json()?.into_bytes();
        let expected = evidence.body.content_hash()?;
        let node = self.node();
        let response = node
            .call(OP, |ch| {
                let req = node.request(v1::SubmitEvidenceRequest { evidence_json: json.clone() });
                async move { TrustServiceClient::new(ch).submit_evidence(req).await }
            })
            .await?;
        if response.content_hash != expected {
            return Err(Error::misbehaved(
                OP,
                "the acknowledged content hash is not the evidence's",
            ));
        }
        Ok(EvidenceReceipt {
            content_hash: expected,
            duplicate: response.duplicate,
            leaf_index: response.log_receipt.map(|r| r.leaf_index),
        })
    }
}
