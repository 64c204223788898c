//! The ATP domain metrics from a real node: `atp-server` on 127.0.0.1:0 with a temporary SQLite
//! store and [`Metrics`] as its observer serves known traffic over gRPC (key events, envelopes,
//! evidence, credentials) and runs one trust computation; every domain metric then holds exactly
//! the value that traffic implies, and `promtool check metrics` accepts the output.
//!
//! Without `promtool` the promtool step fails under `CI=true` and is skipped loudly otherwise
//! (the exact-value assertions always run).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use atp_core::data_integrity::{ProofSetOptions, sign_quantum_safe_proof_set};
use atp_core::envelope::Envelope;
use atp_core::evidence::{EvidenceBody, SignedEvidence};
use atp_core::kel::{self, KelState};
use atp_core::status_list::StatusPurpose;
use atp_core::status_update::{StatusChange, StatusListUpdate};
use atp_core::vc::{DateTimeStamp, PresentationBuilder};
use atp_crypto::{AlgorithmId, SigningContext, SigningKey};
use atp_enterprise_metrics::{FanOutObserver, Metrics};
use atp_grpc::tonic;
use atp_grpc::v1 as pb;
use atp_grpc::v1::credential_service_client::CredentialServiceClient;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::message_service_client::MessageServiceClient;
use atp_grpc::v1::trust_service_client::TrustServiceClient;
use atp_server::message::Authentication;
use atp_server::{Extensions, ServerSettings};
use serde_json::{Value, json};
use tonic::transport::Channel;

const ADMIN_TOKEN: &str = "metrics-test-admin-token-0123456789";
const VERIFIER: &str = "did:example:verifier";
const ALGORITHM: &str = "mldsa65-ed25519";

fn key() -> SigningKey {
    SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("key")
}

fn ts(ms: i64) -> String {
    DateTimeStamp::from_unix(ms.div_euclid(1000)).to_string()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap()
}

struct Node {
    node: atp_test_node::TestNode,
    channel: Channel,
    metrics: Arc<Metrics>,
}

impl std::ops::Deref for Node {
    type Target = atp_test_node::TestNode;
    fn deref(&self) -> &Self::Target {
        &self.node
    }
}

struct Agent {
    did: String,
    key: SigningKey,
    next: SigningKey,
    state: KelState,
}

impl Node {
    async fn start() -> Node {
        let metrics = Arc::new(Metrics::new("0.0.0-test").expect("metrics"));
        let mut extensions = Extensions::community(|t: &str| t == ADMIN_TOKEN);
        extensions.observer =
            Arc::new(FanOutObserver(vec![extensions.observer.clone(), metrics.clone()]));
        // No scheduled computation: the test runs exactly one. No checkpointer: its signatures
        // are not the traffic this test counts.
        let settings =
            ServerSettings { trust_recompute_interval: Duration::ZERO, ..Default::default() };
        let node = atp_test_node::TestNode::start_with(atp_test_node::NodeOptions {
            settings,
            extensions: Some(extensions),
            checkpointer: false,
            ..atp_test_node::NodeOptions::default()
        })
        .await;
        let channel = node.channel().await;
        Node { node, channel, metrics }
    }

    /// The exposition as a scrape produces it (store figures refreshed first).
    async fn scrape(&self) -> String {
        self.metrics.refresh_from_store(self.state.store.as_ref()).await;
        self.metrics.render().expect("render")
    }

    async fn submit_event(&self, e: &kel::SignedEvent) -> Result<(), tonic::Status> {
        IdentityServiceClient::new(self.channel.clone())
            .submit_event(pb::SubmitEventRequest {
                signed_event_json: e.canonical_bytes().expect("json"),
            })
            .await
            .map(drop)
    }

    async fn agent(&self) -> Agent {
        let k = key();
        let next = key();
        let icp =
            kel::incept(&k, next.public_key_ref(), vec![], "2026-01-01T00:00:00Z").expect("incept");
        let did = format!("did:atp:{}", icp.event.scid().expect("scid"));
        self.submit_event(&icp).await.expect("inception accepted");
        let state = kel::verify_log(std::slice::from_ref(&icp)).expect("log");
        Agent { did, key: k, next, state }
    }

    async fn verify_envelope(&self, envelope: Vec<u8>) -> Result<(), tonic::Status> {
        MessageServiceClient::new(self.channel.clone())
            .verify_envelope(pb::VerifyEnvelopeRequest {
                envelope,
                verifier_did: VERIFIER.to_owned(),
            })
            .await
            .map(drop)
    }

    async fn submit_evidence(&self, e: &SignedEvidence) -> Result<(), tonic::Status> {
        TrustServiceClient::new(self.channel.clone())
            .submit_evidence(pb::SubmitEvidenceRequest {
                evidence_json: e.to_json().expect("json").into_bytes(),
            })
            .await
            .map(drop)
    }

    async fn verify_credential(&self, vc: &[u8]) -> Result<(), tonic::Status> {
        CredentialServiceClient::new(self.channel.clone())
            .verify_credential(pb::VerifyCredentialRequest {
                credential_json: vc.to_vec(),
                proof_policy: pb::ProofPolicy::QuantumSafe as i32,
                allow_unchecked_status: false,
            })
            .await
            .map(drop)
    }
}

fn bearer<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {ADMIN_TOKEN}").parse().unwrap());
    r
}

fn reason(s: &tonic::Status) -> String {
    atp_grpc::status::reason(s).unwrap_or_else(|| format!("<no reason: {s:?}>"))
}

fn envelope(sender: &Agent) -> Vec<u8> {
    let now = now_ms();
    let payload = b"hello".to_vec();
    Envelope::new(
        &sender.did,
        0,
        vec![VERIFIER.to_owned()],
        now,
        now + 60_000,
        "text/plain",
        payload,
    )
    .expect("envelope")
    .seal(&sender.key)
    .expect("seal")
    .to_bytes()
    .expect("bytes")
}

/// The value of the series written exactly as `series` (0 when absent).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap_or_else(|_| panic!("{series}: not a number: {v}")))
}

/// The sum of every series of `family` whose line contains all of `labels`.
fn sum(text: &str, family: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn signatures(kind: &str, algorithm: &str, result: &str) -> String {
    format!(
        "atp_signature_verifications_total{{algorithm=\"{algorithm}\",kind=\"{kind}\",\
         result=\"{result}\"}}"
    )
}

fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join("promtool")).find(|p| p.is_file())
    });
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "`promtool` is not installed (Debian package `prometheus`; scripts/test.sh)");
        eprintln!("\n!!! SKIPPED promtool: it is not installed (apt-get install prometheus) !!!\n");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_traffic_gives_exact_domain_metrics() {
    let node = Node::start().await;
    let before = node.scrape().await;
    let delta = |after: &str, series: &str| value(after, series) - value(&before, series);

    // --- Key events: three inceptions, one rotation, one deactivation, one forged rotation. --
    let alice = node.agent().await;
    let bob = node.agent().await;
    let carol = node.agent().await;
    let event_time = ts(now_ms() - 60_000);
    let alice_next = key();
    let rot =
        kel::rotate(&alice.state, &alice.next, alice_next.public_key_ref(), None, &event_time)
            .expect("rotate");
    node.submit_event(&rot).await.expect("rotation accepted");
    let dea = kel::deactivate(&carol.state, &carol.next, &event_time).expect("deactivate");
    node.submit_event(&dea).await.expect("deactivation accepted");
    let mut forged = kel::rotate(&bob.state, &bob.next, key().public_key_ref(), None, &event_time)
        .expect("rotate");
    forged.sig = rot.sig.clone();
    let e = node.submit_event(&forged).await.expect_err("a forged rotation is refused");
    assert_eq!(reason(&e), "KEL_BAD_SIGNATURE");

    // --- Envelopes from Bob: three good, one replayed (its signature is good), two forged. ---
    let good: Vec<Vec<u8>> = (0..3).map(|_| envelope(&bob)).collect();
    for env in &good {
        node.verify_envelope(env.clone()).await.expect("a good envelope verifies");
    }
    let e = node.verify_envelope(good[0].clone()).await.expect_err("replay");
    assert_eq!(reason(&e), "ENVELOPE_REPLAY");
    for _ in 0..2 {
        let mut forged = envelope(&bob);
        let n = forged.len();
        forged[n - 1] ^= 1;
        let e = node.verify_envelope(forged).await.expect_err("forged");
        assert_eq!(reason(&e), "ENVELOPE_BAD_SIGNATURE");
    }
    // Refused before the signature: not counted.
    let e = node.verify_envelope(b"not an envelope".to_vec()).await.expect_err("garbage");
    assert_ne!(reason(&e), "ENVELOPE_BAD_SIGNATURE");

    // --- Evidence: Bob endorses Alice (good), and a copy with another signature (forged). -----
    let created = ts(now_ms() - 1_000);
    let endorsement =
        EvidenceBody::endorsement(&bob.did, 0, &alice.did, &created, None).sign(&bob.key).unwrap();
    node.submit_evidence(&endorsement).await.expect("endorsement accepted");
    let other =
        EvidenceBody::endorsement(&bob.did, 0, &carol.did, &created, None).sign(&bob.key).unwrap();
    let mut forged_evidence = endorsement.clone();
    forged_evidence.sig = other.sig;
    let e = node.submit_evidence(&forged_evidence).await.expect_err("forged evidence");
    assert_eq!(reason(&e), "EVIDENCE_BAD_SIGNATURE");

    // --- Credentials: issue one, verify, revoke, verify (revoked), verify a tampered copy. ----
    let mut credentials = CredentialServiceClient::new(node.channel.clone());
    let unsigned = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "validFrom": ts(now_ms() - 60_000),
        "credentialSubject": {"id": alice.did, "role": "operator"},
    });
    let issued = credentials
        .issue_credential(bearer(pb::IssueCredentialRequest {
            credential_json: serde_json::to_vec(&unsigned).unwrap(),
            status_purposes: vec![pb::StatusPurpose::Revocation as i32],
        }))
        .await
        .expect("issue")
        .into_inner();
    let vc = issued.signed_credential_json;
    node.verify_credential(&vc).await.expect("the issued credential verifies");
    credentials
        .update_status(bearer(pb::UpdateStatusRequest {
            update: Some(pb::update_status_request::Update::NodeIssuer(
                pb::NodeIssuerStatusChange {
                    entry: Some(issued.status_entries[0].clone()),
                    action: pb::StatusAction::Revoke as i32,
                },
            )),
        }))
        .await
        .expect("revoke");
    let e = node.verify_credential(&vc).await.expect_err("revoked");
    assert_eq!(reason(&e), "CREDENTIAL_REVOKED");
    let mut tampered: Value = serde_json::from_slice(&vc).unwrap();
    tampered["credentialSubject"]["role"] = json!("admin");
    let first_suite = tampered["proof"][0]["cryptosuite"].as_str().expect("suite").to_owned();
    let e = node
        .verify_credential(&serde_json::to_vec(&tampered).unwrap())
        .await
        .expect_err("tampered");
    let tampered_reason = reason(&e);

    // --- A presentation by Bob of a second (status-free) credential about him. --------------
    let about_bob = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "validFrom": ts(now_ms() - 60_000),
        "credentialSubject": {"id": bob.did, "role": "auditor"},
    });
    let second = credentials
        .issue_credential(bearer(pb::IssueCredentialRequest {
            credential_json: serde_json::to_vec(&about_bob).unwrap(),
            status_purposes: vec![],
        }))
        .await
        .expect("issue")
        .into_inner();
    let second: Value = serde_json::from_slice(&second.signed_credential_json).unwrap();
    let vp = PresentationBuilder::new().holder(&bob.did).credential(second).build().unwrap();
    let (challenge, domain) = ("c-metrics-1", "verifier.example");
    let options = ProofSetOptions::authentication(
        format!("{}#mldsa65", bob.did),
        format!("{}#ed25519", bob.did),
        ts(now_ms() - 60_000),
        challenge,
        domain,
    );
    let vp = sign_quantum_safe_proof_set(&vp, &bob.key, &options).expect("sign the presentation");
    credentials
        .verify_presentation(pb::VerifyPresentationRequest {
            presentation_json: serde_json::to_vec(&vp).unwrap(),
            challenge: challenge.to_owned(),
            domain: domain.to_owned(),
            proof_policy: pb::ProofPolicy::QuantumSafe as i32,
            allow_unchecked_status: false,
        })
        .await
        .expect("the presentation verifies");

    // --- Sessions: Bob answers a challenge with Alice's key (bad), then with his own (good). --
    let mut messages = MessageServiceClient::new(node.channel.clone());
    let audience = "https://service.example";
    let challenge = messages
        .create_challenge(pb::CreateChallengeRequest {
            did: bob.did.clone(),
            audience: audience.to_owned(),
        })
        .await
        .expect("challenge")
        .into_inner();
    let authentication = Authentication {
        did: bob.did.clone(),
        key_seq: 0,
        node_did: challenge.node_did.clone(),
        audience: audience.to_owned(),
        challenge: challenge.challenge.clone().try_into().expect("32 bytes"),
    }
    .to_bytes();
    for (signer, want_ok) in [(&alice.key, false), (&bob.key, true)] {
        let signature = signer.sign(&authentication, SigningContext::Session.as_bytes()).unwrap();
        let r = messages
            .authenticate(pb::AuthenticateRequest {
                authentication: authentication.clone(),
                signature,
            })
            .await;
        assert_eq!(r.is_ok(), want_ok, "{r:?}");
    }

    // --- An external issuer (Bob) suspends two entries of his hosted list, reinstates one;
    // an update signed with Alice's key is refused. ----------------------------------------
    let hosted = credentials
        .host_status_list(bearer(pb::HostStatusListRequest {
            issuer: bob.did.clone(),
            status_purpose: pb::StatusPurpose::Suspension as i32,
            status_size: 0,
            entries: 0,
        }))
        .await
        .expect("host")
        .into_inner();
    let update = |update_seq: u64, changes: Vec<StatusChange>| StatusListUpdate {
        issuer: bob.did.clone(),
        issuer_key_seq: 0,
        status_list_credential: hosted.status_list_credential.clone(),
        status_purpose: StatusPurpose::Suspension,
        update_seq,
        issued_at_ms: now_ms(),
        changes,
    };
    let signed = |u: &StatusListUpdate, key: &SigningKey| {
        let (update, signature) = u.sign(key).expect("sign");
        pb::UpdateStatusRequest {
            update: Some(pb::update_status_request::Update::SignedUpdate(
                pb::SignedStatusListUpdate { update, signature },
            )),
        }
    };
    let suspend =
        update(1, vec![StatusChange { index: 3, value: 1 }, StatusChange { index: 4, value: 1 }]);
    credentials.update_status(signed(&suspend, &bob.key)).await.expect("suspend");
    let reinstate = update(2, vec![StatusChange { index: 3, value: 0 }]);
    let e = credentials.update_status(signed(&reinstate, &alice.key)).await.expect_err("forged");
    assert_eq!(reason(&e), "STATUS_UPDATE_BAD_SIGNATURE");
    credentials.update_status(signed(&reinstate, &bob.key)).await.expect("reinstate");

    // --- One trust computation. ---------------------------------------------------------------
    node.state.store.set_trust_anchors(vec![bob.did.clone()]).await.expect("anchors");
    let snapshot = atp_server::trust::recompute_now(&node.state).await.expect("recompute");
    let agents = snapshot.iter().count() as f64;
    assert!(agents >= 2.0, "the snapshot holds Bob and Alice at least: {agents}");

    let after = node.scrape().await;

    // Identities by state (from the store): the node, Alice and Bob are active; Carol is not.
    assert_eq!(value(&after, "atp_identities{state=\"active\"}"), 3.0, "{after}");
    assert_eq!(value(&after, "atp_identities{state=\"deactivated\"}"), 1.0);
    // Key events by type, and their signatures.
    assert_eq!(delta(&after, "atp_kel_events_total{type=\"icp\"}"), 3.0);
    assert_eq!(delta(&after, "atp_kel_events_total{type=\"rot\"}"), 1.0);
    assert_eq!(delta(&after, "atp_kel_events_total{type=\"dea\"}"), 1.0);
    assert_eq!(delta(&after, &signatures("key_event", ALGORITHM, "ok")), 5.0);
    assert_eq!(delta(&after, &signatures("key_event", ALGORITHM, "invalid")), 1.0);
    // Envelopes.
    assert_eq!(delta(&after, &signatures("envelope", ALGORITHM, "ok")), 4.0);
    assert_eq!(delta(&after, &signatures("envelope", ALGORITHM, "invalid")), 2.0);
    // Evidence.
    assert_eq!(delta(&after, &signatures("evidence", ALGORITHM, "ok")), 1.0);
    assert_eq!(delta(&after, &signatures("evidence", ALGORITHM, "invalid")), 1.0);
    // Credential proofs: the node signs with two (eddsa-jcs-2022 and an ML-DSA suite); both
    // verified twice for the first credential (before and after the revocation) and once for
    // the presented one; the tampered copy fails at its first. The presentation's own two.
    assert_eq!(delta(&after, &signatures("credential", "eddsa-jcs-2022", "ok")), 3.0);
    assert_eq!(
        sum(&after, "atp_signature_verifications_total", &["kind=\"credential\"", "\"ok\""]),
        6.0
    );
    assert_eq!(delta(&after, &signatures("presentation", "eddsa-jcs-2022", "ok")), 1.0);
    assert_eq!(
        sum(&after, "atp_signature_verifications_total", &["kind=\"presentation\"", "\"ok\""]),
        2.0
    );
    assert_eq!(delta(&after, &signatures("credential", &first_suite, "invalid")), 1.0);
    // Sessions and signed status updates.
    assert_eq!(delta(&after, &signatures("session", ALGORITHM, "ok")), 1.0);
    assert_eq!(delta(&after, &signatures("session", ALGORITHM, "invalid")), 1.0);
    assert_eq!(delta(&after, &signatures("status_update", ALGORITHM, "ok")), 2.0);
    assert_eq!(delta(&after, &signatures("status_update", ALGORITHM, "invalid")), 1.0);
    // Credentials issued, revoked, suspended and reinstated, and verified by result.
    assert_eq!(delta(&after, "atp_credentials_total{operation=\"issued\"}"), 2.0);
    assert_eq!(delta(&after, "atp_credentials_total{operation=\"revoked\"}"), 1.0);
    assert_eq!(delta(&after, "atp_credentials_total{operation=\"suspended\"}"), 2.0);
    assert_eq!(delta(&after, "atp_credentials_total{operation=\"reinstated\"}"), 1.0);
    let verified = |result: &str| {
        format!("atp_credentials_verified_total{{kind=\"credential\",result=\"{result}\"}}")
    };
    assert_eq!(delta(&after, &verified("OK")), 1.0);
    assert_eq!(delta(&after, &verified("CREDENTIAL_REVOKED")), 1.0);
    assert_eq!(delta(&after, &verified(&tampered_reason)), 1.0, "{tampered_reason}");
    assert_eq!(
        delta(&after, "atp_credentials_verified_total{kind=\"presentation\",result=\"OK\"}"),
        1.0
    );
    // The trust computation: one observation; the levels count every agent of the snapshot.
    assert_eq!(delta(&after, "atp_trust_recompute_duration_seconds_count"), 1.0);
    assert!(value(&after, "atp_trust_recompute_duration_seconds_sum") > 0.0);
    let by_level: f64 =
        (0..=4).map(|level| value(&after, &format!("atp_trust_agents{{level=\"{level}\"}}"))).sum();
    assert_eq!(by_level, agents, "{after}");
    assert!(!after.contains("did:atp:"), "a DID leaked into a label");
    assert!(!after.contains("did:example:"), "a DID leaked into a label");

    // promtool on the real output.
    let Some(promtool) = promtool() else { return };
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    check.stdin.take().unwrap().write_all(after.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
