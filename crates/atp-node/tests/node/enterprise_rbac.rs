//! The RBAC policy in the store, on the real node binary with `[sso]` + `[rbac]` against a real
//! OpenID provider (npm `oidc-provider` on loopback): the configured bindings seed the store;
//! `AddRoleBinding` / `RemoveRoleBinding` take effect on the next call; bad bindings are refused
//! with their field and nothing is stored; only `rbac.bindings.*` holders manage bindings; a
//! tenant operator (domain from `[rbac.tenants]` resource prefixes) may host status lists for
//! its own issuers and not for another tenant's, and cannot revoke in another tenant's status
//! list until bound in that tenant; the policy survives a restart.
//!
//! Without `node` / `node_modules/oidc-provider` the test fails under `CI=true` and is skipped
//! loudly otherwise. Bounded: every wait has a deadline; child processes are killed on drop.
#![cfg(all(unix, feature = "sso", feature = "rbac"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use crate::support::{NODE_RESOURCE, node_js, start_idp, start_node, with_bearer};
use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::credential_service_client::CredentialServiceClient;
use tonic::Code;
use tonic::transport::Channel;

/// A client-credentials token of `client` for the node.
async fn token(issuer: &str, client: &str) -> String {
    crate::support::token(issuer, client, NODE_RESOURCE).await
}

fn binding(subject: &str, role: &str, domain: &str) -> pb::RoleBinding {
    pb::RoleBinding { subject: subject.into(), role: role.into(), domain: domain.into() }
}

async fn list(
    channel: &Channel,
    bearer: &str,
) -> Result<pb::ListRoleBindingsResponse, tonic::Status> {
    AdminServiceClient::new(channel.clone())
        .list_role_bindings(with_bearer(pb::ListRoleBindingsRequest {}, bearer))
        .await
        .map(tonic::Response::into_inner)
}

async fn add(
    channel: &Channel,
    bearer: &str,
    bindings: Vec<pb::RoleBinding>,
) -> Result<pb::AddRoleBindingResponse, tonic::Status> {
    AdminServiceClient::new(channel.clone())
        .add_role_binding(with_bearer(pb::AddRoleBindingRequest { bindings }, bearer))
        .await
        .map(tonic::Response::into_inner)
}

async fn remove(
    channel: &Channel,
    bearer: &str,
    bindings: Vec<pb::RoleBinding>,
) -> Result<pb::RemoveRoleBindingResponse, tonic::Status> {
    AdminServiceClient::new(channel.clone())
        .remove_role_binding(with_bearer(pb::RemoveRoleBindingRequest { bindings }, bearer))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_anchors(channel: &Channel, bearer: &str) -> Result<(), tonic::Status> {
    AdminServiceClient::new(channel.clone())
        .list_trust_anchors(with_bearer(pb::ListTrustAnchorsRequest {}, bearer))
        .await
        .map(|_| ())
}

async fn host_list(channel: &Channel, bearer: &str, issuer: &str) -> Result<(), tonic::Status> {
    let request = pb::HostStatusListRequest {
        issuer: issuer.into(),
        status_purpose: pb::StatusPurpose::Revocation as i32,
        ..Default::default()
    };
    CredentialServiceClient::new(channel.clone())
        .host_status_list(with_bearer(request, bearer))
        .await
        .map(|_| ())
}

async fn revoke(
    channel: &Channel,
    bearer: &str,
    entry: &pb::StatusEntryRef,
) -> Result<(), tonic::Status> {
    let request = pb::UpdateStatusRequest {
        update: Some(pb::update_status_request::Update::NodeIssuer(pb::NodeIssuerStatusChange {
            entry: Some(entry.clone()),
            action: pb::StatusAction::Revoke as i32,
        })),
    };
    CredentialServiceClient::new(channel.clone())
        .update_status(with_bearer(request, bearer))
        .await
        .map(|_| ())
}

fn field_of(e: &tonic::Status) -> (Code, String, String) {
    let info = atp_grpc::status::error_info(e).expect("ErrorInfo");
    (e.code(), info.reason.clone(), info.metadata.get("field").cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_bindings_live_in_the_store_and_apply_on_the_next_call() {
    let Some(node) = node_js() else { return };
    let (_idp, issuer) = start_idp(&node).await;
    let dir = tempfile::tempdir().unwrap();
    // Tenant B's issuers: a prefix no `did:atp` can have (base58 has no `0`); every other
    // `did:atp` is tenant A's.
    let config = format!(
        "public_url = \"https://node.test\"\n\
         [sso]\nissuer = \"{issuer}\"\naudience = \"urn:atp:node\"\nallow_admin_token = false\n\
         [rbac]\nbindings = [\"g, group:atp-admins, role:admin, *\"]\n\
         refresh_interval_seconds = 300\n\
         [rbac.tenants]\ntenant-a = [\"did:atp:\"]\ntenant-b = [\"did:atp:0b\", \"https://node.test/status/\"]\n"
    );
    let (node_proc, channel) = start_node(dir.path(), &config).await;
    let admin = token(&issuer, "atp-admin-bot").await;
    let viewer = token(&issuer, "atp-viewer-bot").await;

    // The configured binding seeded the store (revision 1); the permissions come along.
    let listed = list(&channel, &admin).await.expect("an admin lists the bindings");
    assert_eq!(listed.revision, 1);
    assert_eq!(listed.bindings, vec![binding("group:atp-admins", "role:admin", "*")]);
    assert!(
        listed.permissions.iter().any(|p| p.role == "role:operator"
            && p.object == "credentials"
            && p.action == "revoke")
    );

    // The viewer bot's group has no binding: denied everything, bindings included.
    let e = list_anchors(&channel, &viewer).await.expect_err("no binding yet");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = list(&channel, &viewer).await.expect_err("viewer lists bindings");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = add(&channel, &viewer, vec![binding("group:atp-viewers", "role:admin", "*")])
        .await
        .expect_err("self-promotion");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // A binding added through the RPC applies on the next call, without a restart.
    let added = add(&channel, &admin, vec![binding("group:atp-viewers", "role:viewer", "*")])
        .await
        .expect("add");
    assert_eq!((added.added, added.revision), (1, 2));
    list_anchors(&channel, &viewer).await.expect("the viewer reads on the next call");
    let again = add(&channel, &admin, vec![binding("group:atp-viewers", "role:viewer", "*")])
        .await
        .expect("idempotent");
    assert_eq!((again.added, again.revision), (0, 2));

    // Bad input: refused with the field, nothing stored (the good binding in the same call
    // neither).
    let good = binding("user:someone", "role:auditor", "*");
    for (bad, field) in [
        (binding("group:atp-viewers", "role:root", "*"), "bindings.role"),
        (binding("atp-viewers", "role:viewer", "*"), "bindings.subject"),
        (binding("group:", "role:viewer", "*"), "bindings.subject"),
        (binding("group:atp-viewers", "role:viewer", ""), "bindings.domain"),
        (binding("group:atp-viewers", "role:viewer", "tenant a"), "bindings.domain"),
    ] {
        let e = add(&channel, &admin, vec![good.clone(), bad.clone()]).await.expect_err("bad");
        assert_eq!(
            field_of(&e),
            (Code::InvalidArgument, "FIELD_INVALID".to_owned(), field.to_owned()),
            "{bad:?}: {e:?}"
        );
    }
    let e = add(&channel, &admin, Vec::new()).await.expect_err("empty");
    assert_eq!(field_of(&e).2, "bindings");
    let e = remove(&channel, &admin, vec![binding("group:x", "role:nope", "*")])
        .await
        .expect_err("remove with an unknown role");
    assert_eq!(field_of(&e).2, "bindings.role");
    let after = list(&channel, &admin).await.unwrap();
    assert_eq!(after.revision, 2, "nothing stored");
    assert_eq!(after.bindings.len(), 2);

    // Tenants: the viewer bot's group operates in tenant A only.
    add(&channel, &admin, vec![binding("group:atp-viewers", "role:operator", "tenant-a")])
        .await
        .unwrap();
    let info = AdminServiceClient::new(channel.clone())
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    host_list(&channel, &viewer, &info.node_did).await.expect("tenant A's issuer");
    let e = host_list(&channel, &viewer, "did:atp:0b-tenant-b-issuer")
        .await
        .expect_err("tenant B's issuer");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The node's status lists are tenant B's: the operator of tenant A cannot revoke there.
    let issued = CredentialServiceClient::new(channel.clone())
        .issue_credential(with_bearer(
            pb::IssueCredentialRequest {
                credential_json: serde_json::to_vec(&serde_json::json!({
                    "@context": ["https://www.w3.org/ns/credentials/v2"],
                    "type": ["VerifiableCredential"],
                    "credentialSubject": {"id": info.node_did},
                }))
                .unwrap(),
                status_purposes: vec![pb::StatusPurpose::Revocation as i32],
            },
            &admin,
        ))
        .await
        .expect("the admin issues")
        .into_inner();
    let entry = issued.status_entries[0].clone();
    assert!(entry.status_list_credential.starts_with("https://node.test/status/"), "{entry:?}");
    let e = revoke(&channel, &viewer, &entry).await.expect_err("tenant A's operator, B's list");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let r = add(&channel, &admin, vec![binding("group:atp-viewers", "role:operator", "tenant-b")])
        .await
        .unwrap();
    assert_eq!(r.revision, 4);
    revoke(&channel, &viewer, &entry).await.expect("now an operator of tenant B too");

    // Removal applies on the next call too.
    let removed = remove(
        &channel,
        &admin,
        vec![
            binding("group:atp-viewers", "role:viewer", "*"),
            binding("group:atp-viewers", "role:operator", "tenant-a"),
            binding("group:atp-viewers", "role:operator", "tenant-b"),
        ],
    )
    .await
    .expect("remove");
    assert_eq!((removed.removed, removed.revision), (3, 5));
    let e = list_anchors(&channel, &viewer).await.expect_err("removed");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let gone = remove(&channel, &admin, vec![binding("group:atp-viewers", "role:viewer", "*")])
        .await
        .unwrap();
    assert_eq!((gone.removed, gone.revision), (0, 5));
    add(&channel, &admin, vec![binding("user:atp-viewer-bot", "role:viewer", "*")]).await.unwrap();

    // A restart with other configured bindings: the store's policy stays.
    drop(channel);
    drop(node_proc);
    let config2 = config.replace("group:atp-admins, role:admin", "group:atp-viewers, role:admin");
    let (_node2, channel) = start_node(dir.path(), &config2).await;
    let listed = list(&channel, &admin).await.expect("the stored admin binding holds");
    assert_eq!(listed.revision, 6);
    assert_eq!(
        listed.bindings,
        vec![
            binding("group:atp-admins", "role:admin", "*"),
            binding("user:atp-viewer-bot", "role:viewer", "*"),
        ]
    );
    list_anchors(&channel, &viewer).await.expect("the user binding (sub) holds");
    let e = list(&channel, &viewer).await.expect_err("the config did not make it admin");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
}
