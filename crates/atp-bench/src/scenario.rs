//! The scenarios: the work prepared before the clock starts, and the request each call sends.
//!
//! Everything expensive on the client side (key generation, signing) happens in
//! [`Workload::prepare`], on all cores, before the warm-up: during the measured window the load
//! generator only copies prepared bytes into requests, so it takes as little CPU as possible
//! from the node it shares the machine with.

use std::sync::Arc;

use atp_core::envelope::Envelope;
use atp_core::kel::{self, DID_ATP_PREFIX};
use atp_core::vc::DateTimeStamp;
use atp_crypto::{AlgorithmId, PublicKey, SigningKey};
use atp_grpc::v1 as pb;
use atp_grpc::v1::credential_service_client::CredentialServiceClient;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::message_service_client::MessageServiceClient;
use atp_grpc::v1::trust_service_client::TrustServiceClient;
use tonic::transport::Channel;

use crate::{BenchError, now_unix_ms};

/// Media type of the benchmark envelopes' payload.
const ENVELOPE_CONTENT_TYPE: &str = "application/octet-stream";
/// The envelope payload: a small agent-to-agent message.
const ENVELOPE_PAYLOAD_BYTES: usize = 256;
/// Largest page `ListIdentities` is asked for (the node's default maximum).
const LIST_PAGE_SIZE: u32 = 1000;

/// What each request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `MessageService/VerifyEnvelope` of pre-signed envelopes from a pool of registered
    /// agents; every envelope is sent once (the node refuses replays).
    VerifyEnvelope,
    /// `IdentityService/SubmitEvent` of pre-signed inception events of fresh identities.
    SubmitInception,
    /// `IdentityService/Resolve` over a small hot set of DIDs, resolved again and again (the
    /// case a node cache serves).
    ResolveCached,
    /// `IdentityService/Resolve` of DIDs drawn uniformly from a large sample of the node's
    /// identities (listed with `ListIdentities`), so that few repeat.
    ResolveUncached,
    /// `CredentialService/IssueCredential` (needs the admin token): the node signs a small
    /// credential with its quantum-safe proof set.
    IssueCredential,
    /// `CredentialService/VerifyCredential` of one credential the node issued at setup.
    VerifyCredential,
    /// `TrustService/GetTrust` over a hot set of registered DIDs (score, level and the node's
    /// signed trust proof).
    GetTrust,
}

impl Scenario {
    /// The scenario's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::VerifyEnvelope => "verify-envelope",
            Scenario::SubmitInception => "submit-inception",
            Scenario::ResolveCached => "resolve-cached",
            Scenario::ResolveUncached => "resolve-uncached",
            Scenario::IssueCredential => "issue-credential",
            Scenario::VerifyCredential => "verify-credential",
            Scenario::GetTrust => "get-trust",
        }
    }
}

/// How a workload is prepared.
#[derive(Clone, Debug)]
pub struct ScenarioOptions {
    /// Agents registered on the node at setup (senders of the envelopes, resolve targets).
    pub agents: usize,
    /// Requests prepared for the scenarios that consume one item per request
    /// (`verify-envelope`, `submit-inception`). The run ends early, with a note, when the pool
    /// runs out.
    pub pool: usize,
    /// Hot-set size of `resolve-cached`.
    pub hot_set: usize,
    /// Largest sample of DIDs listed for `resolve-uncached`.
    pub resolve_sample: usize,
    /// Validity window of the pre-signed envelopes, in milliseconds. The whole run (warm-up
    /// included) must fit in it, and the node must accept it (`--envelope-max-lifetime`).
    pub envelope_lifetime_ms: i64,
    /// The verifier DID the envelopes are addressed to.
    pub verifier_did: String,
    /// The admin bearer token (`issue-credential`, `verify-credential`).
    pub admin_token: Option<String>,
    /// Threads used to sign the prepared requests.
    pub signing_threads: usize,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        ScenarioOptions {
            agents: 16,
            pool: 60_000,
            hot_set: 64,
            resolve_sample: 50_000,
            envelope_lifetime_ms: 240_000,
            verifier_did: "did:example:atp-bench-verifier".to_owned(),
            admin_token: None,
            signing_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

enum Prepared {
    Envelopes { wire: Vec<Vec<u8>>, verifier: String },
    Inceptions { events: Vec<Vec<u8>> },
    Resolve { dids: Vec<String>, uniform: bool },
    Trust { dids: Vec<String> },
    Issue { token: String },
    VerifyCredential { credential: Vec<u8> },
}

/// A prepared scenario: what [`Workload::call`] sends for request number `i`.
#[derive(Clone)]
pub struct Workload {
    scenario: Scenario,
    prepared: Arc<Prepared>,
    notes: Vec<String>,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("scenario", &self.scenario)
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// One gRPC call's outcome: `None` when the prepared pool is used up.
pub type CallOutcome = Option<Result<(), tonic::Status>>;

impl Workload {
    /// Prepare `scenario` against the node behind `channel`: register agents, sign requests,
    /// list identities, issue the credential to verify, as the scenario needs.
    pub async fn prepare(
        scenario: Scenario,
        channel: &Channel,
        options: &ScenarioOptions,
    ) -> Result<Self, BenchError> {
        let mut notes = Vec::new();
        let prepared = match scenario {
            Scenario::VerifyEnvelope => {
                let agents = register_agents(channel, options.agents.max(1)).await?;
                let wire = sign_envelopes(&agents, options)?;
                notes.push(format!(
                    "{} pre-signed envelopes from {} registered agents, {} B payload",
                    wire.len(),
                    agents.len(),
                    ENVELOPE_PAYLOAD_BYTES
                ));
                Prepared::Envelopes { wire, verifier: options.verifier_did.clone() }
            }
            Scenario::SubmitInception => {
                let events = fresh_inceptions(options.pool, options.signing_threads)?;
                notes.push(format!("{} pre-signed inception events", events.len()));
                Prepared::Inceptions { events }
            }
            Scenario::ResolveCached => {
                let agents = register_agents(channel, options.hot_set.max(1)).await?;
                let dids: Vec<String> = agents.into_iter().map(|a| a.did).collect();
                notes.push(format!("hot set of {} DIDs, each resolved in turn", dids.len()));
                Prepared::Resolve { dids, uniform: false }
            }
            Scenario::ResolveUncached => {
                register_agents(channel, options.agents.max(1)).await?;
                let dids = list_identities(channel, options.resolve_sample.max(1)).await?;
                notes.push(format!(
                    "DIDs drawn uniformly from a sample of {} listed identities",
                    dids.len()
                ));
                Prepared::Resolve { dids, uniform: true }
            }
            Scenario::GetTrust => {
                let agents = register_agents(channel, options.hot_set.max(1)).await?;
                let dids: Vec<String> = agents.into_iter().map(|a| a.did).collect();
                notes.push(format!("trust of {} registered DIDs, each in turn", dids.len()));
                Prepared::Trust { dids }
            }
            Scenario::IssueCredential => {
                let token = options.admin_token.clone().ok_or_else(|| {
                    BenchError::Invalid("issue-credential needs the admin token".into())
                })?;
                Prepared::Issue { token }
            }
            Scenario::VerifyCredential => {
                let token = options.admin_token.clone().ok_or_else(|| {
                    BenchError::Invalid(
                        "verify-credential needs the admin token (to issue the credential)".into(),
                    )
                })?;
                let mut client = CredentialServiceClient::new(channel.clone());
                let issued = client
                    .issue_credential(issue_request(&token, 0)?)
                    .await
                    .map_err(|s| BenchError::node("IssueCredential", s))?
                    .into_inner();
                Prepared::VerifyCredential { credential: issued.signed_credential_json }
            }
        };
        Ok(Workload { scenario, prepared: Arc::new(prepared), notes })
    }

    /// The scenario.
    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    /// Remarks on the preparation, for the report.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// How many requests can be sent (`None`: unlimited).
    pub fn capacity(&self) -> Option<usize> {
        match self.prepared.as_ref() {
            Prepared::Envelopes { wire, .. } => Some(wire.len()),
            Prepared::Inceptions { events } => Some(events.len()),
            _ => None,
        }
    }

    /// Send request number `i` over `channel`.
    pub async fn call(&self, channel: &Channel, i: u64) -> CallOutcome {
        let index = usize::try_from(i).ok()?;
        let result = match self.prepared.as_ref() {
            Prepared::Envelopes { wire, verifier } => {
                let envelope = wire.get(index)?.clone();
                let request =
                    pb::VerifyEnvelopeRequest { envelope, verifier_did: verifier.clone() };
                MessageServiceClient::new(channel.clone()).verify_envelope(request).await.map(drop)
            }
            Prepared::Inceptions { events } => {
                let signed_event_json = events.get(index)?.clone();
                IdentityServiceClient::new(channel.clone())
                    .submit_event(pb::SubmitEventRequest { signed_event_json })
                    .await
                    .and_then(|r| accepted(&r.into_inner()))
            }
            Prepared::Resolve { dids, uniform } => {
                let pick = if *uniform { mix(i) as usize } else { index };
                let did = dids.get(pick % dids.len().max(1))?.clone();
                IdentityServiceClient::new(channel.clone())
                    .resolve(pb::ResolveRequest { did, version_id: None })
                    .await
                    .map(drop)
            }
            Prepared::Trust { dids } => {
                let did = dids.get(index % dids.len().max(1))?.clone();
                TrustServiceClient::new(channel.clone())
                    .get_trust(pb::GetTrustRequest { did })
                    .await
                    .map(drop)
            }
            Prepared::Issue { token } => match issue_request(token, i) {
                Ok(request) => CredentialServiceClient::new(channel.clone())
                    .issue_credential(request)
                    .await
                    .map(drop),
                Err(e) => Err(tonic::Status::internal(e.to_string())),
            },
            Prepared::VerifyCredential { credential } => {
                let request = pb::VerifyCredentialRequest {
                    credential_json: credential.clone(),
                    proof_policy: pb::ProofPolicy::QuantumSafe as i32,
                    allow_unchecked_status: false,
                };
                CredentialServiceClient::new(channel.clone())
                    .verify_credential(request)
                    .await
                    .map(drop)
            }
        };
        Some(result)
    }
}

/// A fresh inception must be accepted, not reported as a duplicate.
fn accepted(response: &pb::SubmitEventResponse) -> Result<(), tonic::Status> {
    if response.outcome == pb::SubmitEventOutcome::Accepted as i32 {
        Ok(())
    } else {
        Err(tonic::Status::already_exists(format!(
            "inception of {} not accepted (outcome {})",
            response.did, response.outcome
        )))
    }
}

/// SplitMix64: a cheap, well-spread pseudo-random index for request `i` (no RNG state shared
/// between callers).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn issue_request(
    token: &str,
    i: u64,
) -> Result<tonic::Request<pb::IssueCredentialRequest>, BenchError> {
    let valid_from = DateTimeStamp::from_unix(now_unix_ms() / 1000 - 60).to_string();
    let credential = serde_json::json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "validFrom": valid_from,
        "credentialSubject": {"id": format!("did:example:atp-bench-subject-{i}"), "role": "operator"},
    });
    let credential_json =
        serde_json::to_vec(&credential).map_err(|e| BenchError::Setup(e.to_string()))?;
    let mut request = tonic::Request::new(pb::IssueCredentialRequest {
        credential_json,
        status_purposes: vec![],
    });
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| BenchError::Invalid("the admin token is not a valid header value".into()))?;
    request.metadata_mut().insert("authorization", bearer);
    Ok(request)
}

/// An agent registered on the node.
#[derive(Debug)]
pub struct Agent {
    /// Its DID.
    pub did: String,
    /// Its current key (sequence 0).
    pub key: SigningKey,
}

fn composite_key() -> Result<SigningKey, BenchError> {
    Ok(SigningKey::generate(AlgorithmId::MlDsa65Ed25519)?)
}

fn timestamp_now() -> String {
    DateTimeStamp::from_unix(now_unix_ms() / 1000).to_string()
}

/// Sign the inception of a fresh identity whose key is `key`.
fn inception(
    key: &SigningKey,
    next: &PublicKey,
    ts: &str,
) -> Result<(String, Vec<u8>), BenchError> {
    let event = kel::incept(key, next, vec![], ts)?;
    let did = format!("{DID_ATP_PREFIX}{}", event.event.scid()?);
    Ok((did, event.to_json()?.into_bytes()))
}

/// Create `count` identities and submit their inceptions.
pub async fn register_agents(channel: &Channel, count: usize) -> Result<Vec<Agent>, BenchError> {
    let next = composite_key()?.public_key();
    let ts = timestamp_now();
    let mut client = IdentityServiceClient::new(channel.clone());
    let mut agents = Vec::with_capacity(count);
    for _ in 0..count {
        let key = composite_key()?;
        let (did, json) = inception(&key, &next, &ts)?;
        let response = client
            .submit_event(pb::SubmitEventRequest { signed_event_json: json })
            .await
            .map_err(|s| BenchError::node("SubmitEvent", s))?
            .into_inner();
        if response.did != did {
            return Err(BenchError::Setup(format!("node registered {} for {did}", response.did)));
        }
        agents.push(Agent { did, key });
    }
    Ok(agents)
}

/// Run `make(i)` for `i` in `0..count` on `threads` threads, keeping the order.
pub fn parallel_make<T, F>(count: usize, threads: usize, make: F) -> Result<Vec<T>, BenchError>
where
    T: Send,
    F: Fn(usize) -> Result<T, BenchError> + Sync,
{
    let threads = threads.clamp(1, count.max(1));
    let chunk = count.div_ceil(threads);
    let make = &make;
    let parts: Vec<Result<Vec<T>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let range = (t * chunk)..((t + 1) * chunk).min(count);
                    range.map(make).collect::<Result<Vec<T>, BenchError>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Setup("a signing thread panicked".into())))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(count);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

fn sign_envelopes(agents: &[Agent], options: &ScenarioOptions) -> Result<Vec<Vec<u8>>, BenchError> {
    let issued_at = now_unix_ms();
    let expires_at = issued_at + options.envelope_lifetime_ms;
    let payload = vec![0x5a; ENVELOPE_PAYLOAD_BYTES];
    parallel_make(options.pool, options.signing_threads, |i| {
        let agent = &agents[i % agents.len()];
        let envelope = Envelope::new(
            &agent.did,
            0,
            vec![options.verifier_did.clone()],
            issued_at,
            expires_at,
            ENVELOPE_CONTENT_TYPE,
            payload.clone(),
        )?;
        Ok(envelope.seal(&agent.key)?.to_bytes()?)
    })
}

/// `count` inception events of fresh identities (each with its own key; the pre-committed next
/// key is shared, which changes nothing for the node's work).
pub fn fresh_inceptions(count: usize, threads: usize) -> Result<Vec<Vec<u8>>, BenchError> {
    let next = composite_key()?.public_key();
    let ts = timestamp_now();
    parallel_make(count, threads, |_| Ok(inception(&composite_key()?, &next, &ts)?.1))
}

/// Up to `limit` DIDs of the node's identities, listed page by page.
pub async fn list_identities(channel: &Channel, limit: usize) -> Result<Vec<String>, BenchError> {
    let mut client = IdentityServiceClient::new(channel.clone());
    let mut dids = Vec::new();
    let mut page_token = String::new();
    while dids.len() < limit {
        let page = client
            .list_identities(pb::ListIdentitiesRequest {
                page_size: LIST_PAGE_SIZE,
                page_token: page_token.clone(),
            })
            .await
            .map_err(|s| BenchError::node("ListIdentities", s))?
            .into_inner();
        dids.extend(
            page.identities
                .into_iter()
                .filter(|i| has_key_event_log(&i.did) && !i.deactivated)
                .map(|i| i.did),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    dids.truncate(limit);
    if dids.is_empty() {
        return Err(BenchError::Setup("the node lists no identity to resolve".into()));
    }
    Ok(dids)
}

/// Whether `did`'s method keeps a key event log (what the resolve scenario fetches).
fn has_key_event_log(did: &str) -> bool {
    atp_core::did::method::lookup(did)
        .is_some_and(|method| method.needs() == atp_core::did::method::Needs::KeyEventLog)
}
