//! The enterprise node with `[sso]` against a real OpenID provider (npm `oidc-provider`, started
//! here on loopback by enterprise/sso/tests/support/provider.mjs): an admin call without a token
//! is refused with UNAUTHENTICATED, a token of the admin group is allowed, a token of another
//! group gets PERMISSION_DENIED, a token for another audience UNAUTHENTICATED.
//!
//! Without `node` / `node_modules/oidc-provider` the test fails under `CI=true` and is skipped
//! loudly otherwise. Bounded: every wait has a deadline; child processes are killed on drop.
#![cfg(all(unix, feature = "sso"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use crate::support::{NODE_RESOURCE, node_js, start_idp, start_node, token, with_bearer};
use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

async fn list_anchors(
    channel: &Channel,
    bearer: Option<&str>,
) -> Result<pb::ListTrustAnchorsResponse, tonic::Status> {
    let request = match bearer {
        Some(t) => with_bearer(pb::ListTrustAnchorsRequest {}, t),
        None => tonic::Request::new(pb::ListTrustAnchorsRequest {}),
    };
    AdminServiceClient::new(channel.clone())
        .list_trust_anchors(request)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_node_honours_sso_groups_on_admin_calls() {
    let Some(node) = node_js() else { return };
    let (_idp, issuer) = start_idp(&node).await;

    let dir = tempfile::tempdir().unwrap();
    let sso = format!(
        "[sso]\nissuer = \"{issuer}\"\naudience = \"urn:atp:node\"\n\
         admin_groups = [\"atp-admins\"]\nallow_admin_token = false\n"
    );
    let (_node, channel) = start_node(dir.path(), &sso).await;

    let e = list_anchors(&channel, None).await.expect_err("no token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    let admin = token(&issuer, "atp-admin-bot", NODE_RESOURCE).await;
    list_anchors(&channel, Some(&admin)).await.expect("the admin group is allowed");

    let viewer = token(&issuer, "atp-viewer-bot", NODE_RESOURCE).await;
    let e = list_anchors(&channel, Some(&viewer)).await.expect_err("viewer");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");

    let other = token(&issuer, "atp-admin-bot", "urn:other:service").await;
    let e = list_anchors(&channel, Some(&other)).await.expect_err("wrong audience");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let info = atp_grpc::status::error_info(&e).expect("ErrorInfo");
    assert_eq!(info.metadata.get("cause").map(String::as_str), Some("TOKEN_WRONG_AUDIENCE"));

    let e = list_anchors(&channel, Some("not-a-jwt-and-no-admin-token")).await.expect_err("junk");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
}

async fn set_anchors(channel: &Channel, bearer: &str) -> Result<(), tonic::Status> {
    AdminServiceClient::new(channel.clone())
        .set_trust_anchors(with_bearer(pb::SetTrustAnchorsRequest::default(), bearer))
        .await
        .map(|_| ())
}

/// With `[rbac]`: roles come from the IdP's groups through the bindings.
#[cfg(feature = "rbac")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_node_honours_rbac_roles_from_idp_groups() {
    let Some(node) = node_js() else { return };
    let (_idp, issuer) = start_idp(&node).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[sso]\nissuer = \"{issuer}\"\naudience = \"urn:atp:node\"\nallow_admin_token = false\n\
         [rbac]\nbindings = [\"g, group:atp-admins, role:admin, *\", \
         \"g, group:atp-viewers, role:viewer, *\"]\n"
    );
    let (_node, channel) = start_node(dir.path(), &config).await;
    let admin = token(&issuer, "atp-admin-bot", NODE_RESOURCE).await;
    let viewer = token(&issuer, "atp-viewer-bot", NODE_RESOURCE).await;

    list_anchors(&channel, Some(&viewer)).await.expect("a viewer reads the trust anchors");
    let e = set_anchors(&channel, &viewer).await.expect_err("a viewer may not write them");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    set_anchors(&channel, &admin).await.expect("an admin writes them");
    let e = list_anchors(&channel, None).await.expect_err("no token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
}
