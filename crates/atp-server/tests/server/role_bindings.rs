//! The AdminService role-binding RPCs on a real server (SQLite store, 127.0.0.1:0) through the
//! extension seam: a node whose authorizer has no role policy answers ENTERPRISE_REQUIRED
//! (after authentication); with a policy, every binding is checked before anything happens,
//! the change is audited before it is written (an audit failure stores nothing), refusals are
//! audited, and the policy is told of a change only when something changed.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use atp_core::audit::AuditEvent;
use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_server::extensions::{AdminOnlyAuthorizer, AuditSink, Authorizer, RolePolicy, SeamFuture};
use atp_server::{Extensions, ServerError};
use atp_store::{AuditEntry, AuditQuery, RoleBinding, Store};
use tonic::Code;
use tonic::transport::Channel;

const TOKEN: &str = "role-bindings-admin-token";

/// Admin-only authorization with a role policy over the built-in role names.
#[derive(Default)]
struct Policy {
    changes: Mutex<Vec<u64>>,
}

impl Authorizer for Policy {
    fn authorize_user<'a>(
        &'a self,
        id: &'a str,
        roles: &'a [String],
        operation: &'a str,
        resource: &'a str,
    ) -> SeamFuture<'a, Result<(), ServerError>> {
        AdminOnlyAuthorizer.authorize_user(id, roles, operation, resource)
    }

    fn role_policy(&self) -> Option<&dyn RolePolicy> {
        Some(self)
    }
}

impl RolePolicy for Policy {
    fn check_binding(&self, b: &RoleBinding) -> Result<(), ServerError> {
        if !["role:viewer", "role:operator", "role:admin", "role:auditor"]
            .contains(&b.role.as_str())
        {
            return Err(ServerError::field("bindings.role", "unknown role"));
        }
        Ok(())
    }

    fn permissions(&self) -> Vec<[String; 4]> {
        vec![["role:admin", "*", "*", "*"].map(str::to_owned)]
    }

    fn bindings_changed(&self, revision: u64) -> SeamFuture<'_, Result<(), ServerError>> {
        self.changes.lock().unwrap().push(revision);
        Box::pin(async { Ok(()) })
    }
}

/// Stores every event as it is; refuses while `fail` is set.
#[derive(Default)]
struct Audit {
    fail: Mutex<bool>,
}

impl AuditSink for Audit {
    fn entry(&self, event: &AuditEvent) -> Result<Option<AuditEntry>, ServerError> {
        if *self.fail.lock().unwrap() {
            return Err(ServerError::Unavailable("audit trail down".into()));
        }
        Ok(Some(AuditEntry::new(event)?))
    }
}

/// The stored events, parsed, apart from the node's own key events (stored at start).
async fn stored_events(store: &dyn Store) -> Vec<AuditEvent> {
    let query = AuditQuery { limit: 1000, ..AuditQuery::default() };
    let events = store.list_audit_events(query).await.unwrap();
    let events = events.iter().map(|e| AuditEvent::parse(&e.body).unwrap());
    events.filter(|e| e.code != "key_event.accepted").collect()
}

struct Node {
    node: atp_test_node::TestNode,
    channel: Channel,
}

impl std::ops::Deref for Node {
    type Target = atp_test_node::TestNode;
    fn deref(&self) -> &Self::Target {
        &self.node
    }
}

async fn start(extensions: Extensions) -> Node {
    let node = atp_test_node::TestNode::start_with(atp_test_node::NodeOptions {
        extensions: Some(extensions),
        checkpointer: false,
        ..atp_test_node::NodeOptions::default()
    })
    .await;
    let channel = node.channel().await;
    Node { node, channel }
}

fn authed<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(t) = token {
        r.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

fn rb(subject: &str, role: &str) -> pb::RoleBinding {
    pb::RoleBinding { subject: subject.into(), role: role.into(), domain: "*".into() }
}

fn reason_and_meta(e: &tonic::Status, key: &str) -> (Code, String, Option<String>) {
    let info = atp_grpc::status::error_info(e).expect("ErrorInfo");
    (e.code(), info.reason.clone(), info.metadata.get(key).cloned())
}

#[tokio::test]
async fn without_a_role_policy_the_rpcs_answer_enterprise_required() {
    let node = start(Extensions::community(|t: &str| t == TOKEN)).await;
    let mut admin = AdminServiceClient::new(node.channel.clone());
    let add = || pb::AddRoleBindingRequest { bindings: vec![rb("group:a", "role:admin")] };
    let e = admin.add_role_binding(authed(add(), None)).await.unwrap_err();
    assert_eq!(reason_and_meta(&e, "feature").1, "AUTH_REQUIRED");
    let e = admin.add_role_binding(authed(add(), Some(TOKEN))).await.unwrap_err();
    assert_eq!(
        reason_and_meta(&e, "feature"),
        (Code::Unimplemented, "ENTERPRISE_REQUIRED".to_owned(), Some("rbac".to_owned()))
    );
    let e = admin
        .list_role_bindings(authed(pb::ListRoleBindingsRequest {}, Some(TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(reason_and_meta(&e, "feature").1, "ENTERPRISE_REQUIRED");
    let e = admin
        .remove_role_binding(authed(
            pb::RemoveRoleBindingRequest { bindings: vec![rb("group:a", "role:admin")] },
            Some(TOKEN),
        ))
        .await
        .unwrap_err();
    assert_eq!(reason_and_meta(&e, "feature").1, "ENTERPRISE_REQUIRED");
    assert_eq!(node.state.store.role_bindings_revision().await.unwrap(), 0);
    node.node.stop().await;
}

#[tokio::test]
async fn changes_are_checked_audited_before_writing_and_announced() {
    let policy = Arc::new(Policy::default());
    let audit = Arc::new(Audit::default());
    let mut extensions = Extensions::community(|t: &str| t == TOKEN);
    extensions.authorizer = policy.clone();
    extensions.audit = audit.clone();
    let node = start(extensions).await;
    let mut admin = AdminServiceClient::new(node.channel.clone());
    let store = node.state.store.clone();

    // Refused: anonymous (audited with its reason), empty, too many, an unknown role.
    let add = |bindings: Vec<pb::RoleBinding>| pb::AddRoleBindingRequest { bindings };
    let e = admin.add_role_binding(authed(add(vec![rb("group:a", "role:admin")]), None)).await;
    assert_eq!(e.unwrap_err().code(), Code::Unauthenticated);
    {
        let events = stored_events(&*store).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let denied = &events[0];
        assert_eq!(
            (denied.code.as_str(), denied.rule.as_deref(), denied.outcome.reason.as_deref()),
            ("authz.denied", Some("rbac.bindings.write"), Some("AUTH_REQUIRED"))
        );
        assert_eq!(
            (denied.actor.kind.as_str(), denied.outcome.result.as_str()),
            ("anonymous", "DENIED")
        );
    }
    let e = admin.add_role_binding(authed(add(Vec::new()), Some(TOKEN))).await.unwrap_err();
    assert_eq!(
        reason_and_meta(&e, "field"),
        (Code::InvalidArgument, "FIELD_INVALID".to_owned(), Some("bindings".to_owned()))
    );
    let many: Vec<pb::RoleBinding> = (0..=atp_server::admin::MAX_BINDINGS_PER_CALL)
        .map(|i| rb(&format!("user:{i}"), "role:viewer"))
        .collect();
    let e = admin.add_role_binding(authed(add(many), Some(TOKEN))).await.unwrap_err();
    assert_eq!(reason_and_meta(&e, "field").2.as_deref(), Some("bindings"));
    let e = admin
        .add_role_binding(authed(
            add(vec![rb("group:a", "role:admin"), rb("group:b", "role:root")]),
            Some(TOKEN),
        ))
        .await
        .unwrap_err();
    assert_eq!(reason_and_meta(&e, "field").2.as_deref(), Some("bindings.role"));
    // The store's own shape check: a comma in a subject.
    let e = admin
        .add_role_binding(authed(add(vec![rb("group:a,b", "role:admin")]), Some(TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(reason_and_meta(&e, "field").1, "FIELD_INVALID");
    assert_eq!(store.role_bindings_revision().await.unwrap(), 0, "nothing stored");

    // The audit trail is down: nothing is written.
    *audit.fail.lock().unwrap() = true;
    let e = admin
        .add_role_binding(authed(add(vec![rb("group:a", "role:admin")]), Some(TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(store.role_bindings_revision().await.unwrap(), 0, "not audited, not done");
    *audit.fail.lock().unwrap() = false;

    // Accepted: audited with the bindings, written, announced.
    let r = admin
        .add_role_binding(authed(add(vec![rb("group:a", "role:admin")]), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.added, r.revision), (1, 1));
    {
        // Refused requests stored nothing but the first denial; the accepted one stored its
        // authentication and its change, in that order, with the change.
        let events = stored_events(&*store).await;
        let codes: Vec<&str> = events.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes, ["authz.denied", "authn.succeeded", "role_bindings.changed"]);
        let last = events.last().unwrap();
        assert_eq!(
            (last.actor.id.as_str(), last.rule.as_deref()),
            ("admin", Some("rbac.bindings.write"))
        );
        let targets: Vec<&str> = last.target.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(targets, ["add", "group:a role:admin *"]);
    }
    // Idempotent: nothing changed, nothing announced.
    let r = admin
        .add_role_binding(authed(add(vec![rb("group:a", "role:admin")]), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.added, r.revision), (0, 1));
    let r = admin
        .remove_role_binding(authed(
            pb::RemoveRoleBindingRequest { bindings: vec![rb("group:a", "role:admin")] },
            Some(TOKEN),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.removed, r.revision), (1, 2));
    assert_eq!(*policy.changes.lock().unwrap(), vec![1, 2]);

    let listed = admin
        .list_role_bindings(authed(pb::ListRoleBindingsRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((listed.revision, listed.bindings.len(), listed.permissions.len()), (2, 0, 1));
    node.node.stop().await;
}

/// A refusal is recorded whatever the caller sent: a resource name far over an event's limits is
/// kept as its hash, and the refusal is answered as a refusal (never as an audit error that
/// would tell a token guesser which tokens are valid).
#[tokio::test]
async fn a_refusal_with_an_oversized_resource_is_still_recorded() {
    let mut extensions = Extensions::community(|t: &str| t == TOKEN);
    extensions.audit = Arc::new(Audit::default());
    let node = start(extensions).await;
    let mut credentials =
        atp_grpc::v1::credential_service_client::CredentialServiceClient::new(node.channel.clone());
    let huge = format!("https://node.test/status/{}", "x".repeat(4000));
    let update = |bearer: Option<&str>| {
        authed(
            pb::UpdateStatusRequest {
                update: Some(pb::update_status_request::Update::NodeIssuer(
                    pb::NodeIssuerStatusChange {
                        entry: Some(pb::StatusEntryRef {
                            status_list_credential: huge.clone(),
                            status_list_index: 0,
                            status_purpose: pb::StatusPurpose::Revocation as i32,
                        }),
                        action: pb::StatusAction::Revoke as i32,
                    },
                )),
            },
            bearer,
        )
    };
    let e = credentials.update_status(update(None)).await.unwrap_err();
    assert_eq!(reason_and_meta(&e, "x").1, "AUTH_REQUIRED");
    let e = credentials.update_status(update(Some("wrong-token"))).await.unwrap_err();
    assert_eq!(reason_and_meta(&e, "x").1, "AUTH_INVALID");
    let events = stored_events(&*node.state.store).await;
    let codes: Vec<&str> = events.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["authz.denied", "authn.failed"]);
    for event in &events {
        let resource = &event.target[0];
        assert_eq!(resource.kind, "resource");
        assert!(resource.id.starts_with("sha256:") && resource.id.len() == 71, "{resource:?}");
    }
    node.node.stop().await;
}
