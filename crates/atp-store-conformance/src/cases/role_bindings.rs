//! RBAC role bindings: add and remove are idempotent and move the revision only when something
//! changed; seeding applies only to a policy never written; bad shapes store nothing; the policy
//! survives a reopen; concurrent adds count each binding once.

use atp_store::{RoleBinding, Store, StoreError};

use crate::Backend;

fn rb(subject: &str, role: &str, domain: &str) -> RoleBinding {
    RoleBinding { subject: subject.into(), role: role.into(), domain: domain.into() }
}

/// Add remove are idempotent and bump the revision only on change.
pub async fn add_remove_are_idempotent_and_bump_the_revision_only_on_change(backend: &dyn Backend) {
    let store = backend.open().await;
    let empty = store.list_role_bindings().await.unwrap();
    assert_eq!((empty.revision, empty.bindings.len()), (0, 0));

    let admins = rb("group:atp-admins", "role:admin", "*");
    let ops = rb("group:ops-a", "role:operator", "tenant-a");
    let added = store.add_role_bindings(vec![ops.clone(), admins.clone()]).await.unwrap();
    assert_eq!((added.changed, added.revision), (2, 1));
    // Again: nothing changes, the revision stays.
    let again = store.add_role_bindings(vec![admins.clone()]).await.unwrap();
    assert_eq!((again.changed, again.revision), (0, 1));
    assert_eq!(store.role_bindings_revision().await.unwrap(), 1);

    let listed = store.list_role_bindings().await.unwrap();
    assert_eq!(listed.revision, 1);
    assert_eq!(listed.bindings, vec![admins.clone(), ops.clone()], "sorted by subject");

    // The same subject and role in another domain is another binding.
    let ops_b = rb("group:ops-a", "role:operator", "tenant-b");
    assert_eq!(store.add_role_bindings(vec![ops_b.clone()]).await.unwrap().revision, 2);

    let removed = store.remove_role_bindings(vec![ops.clone()]).await.unwrap();
    assert_eq!((removed.changed, removed.revision), (1, 3));
    let gone = store.remove_role_bindings(vec![ops.clone()]).await.unwrap();
    assert_eq!((gone.changed, gone.revision), (0, 3));
    assert_eq!(store.list_role_bindings().await.unwrap().bindings, vec![admins.clone(), ops_b]);
    store.close().await.unwrap();

    // Durable: a reopened store has the same policy and revision.
    let reopened = backend.open().await;
    let after = reopened.list_role_bindings().await.unwrap();
    assert_eq!(after.revision, 3);
    assert_eq!(after.bindings.len(), 2);
    reopened.close().await.unwrap();
}

/// Every change of the policy is one `role-bindings` log leaf over the whole policy after it,
/// which anyone holding that policy can recompute; a write that changes nothing adds none.
pub async fn every_policy_change_is_one_log_leaf_over_the_whole_policy(backend: &dyn Backend) {
    use atp_core::log_entry::{LeafKind, role_bindings_data_hash};
    let store = backend.open().await;
    let policy_hash = async |store: &dyn Store| {
        let p = store.list_role_bindings().await.unwrap();
        let mut rows: Vec<(String, String, String)> =
            p.bindings.into_iter().map(|b| (b.subject, b.role, b.domain)).collect();
        rows.sort();
        role_bindings_data_hash(p.revision, &rows).unwrap()
    };
    let last_leaf = async |store: &dyn Store| {
        let size = store.log_size().await.unwrap();
        store.get_entries(size - 1, 1).await.unwrap().remove(0)
    };

    let admins = rb("group:atp-admins", "role:admin", "*");
    let ops = rb("group:ops-a", "role:operator", "tenant-a");
    assert_eq!(store.log_size().await.unwrap(), 0);
    store.add_role_bindings(vec![ops.clone(), admins.clone()]).await.unwrap();
    assert_eq!(store.log_size().await.unwrap(), 1);
    let leaf = last_leaf(&*store).await;
    assert_eq!(leaf.kind, LeafKind::RoleBindings);
    assert_eq!(leaf.data_hash, policy_hash(&*store).await);

    // Nothing changed: no leaf.
    store.add_role_bindings(vec![admins.clone()]).await.unwrap();
    store.remove_role_bindings(vec![rb("group:nobody", "role:viewer", "*")]).await.unwrap();
    assert_eq!(store.log_size().await.unwrap(), 1);

    store.remove_role_bindings(vec![ops]).await.unwrap();
    assert_eq!(store.log_size().await.unwrap(), 2);
    let leaf = last_leaf(&*store).await;
    assert_eq!(leaf.kind, LeafKind::RoleBindings);
    assert_eq!(leaf.data_hash, policy_hash(&*store).await);
    store.close().await.unwrap();
}

/// Seeding applies only to a policy never written.
pub async fn seeding_applies_only_to_a_policy_never_written(backend: &dyn Backend) {
    let store = backend.open().await;
    // Seeding nothing leaves the policy unwritten.
    let none = store.seed_role_bindings(Vec::new()).await.unwrap().unwrap();
    assert_eq!((none.changed, none.revision), (0, 0));
    let seed = vec![rb("group:atp-admins", "role:admin", "*")];
    let seeded = store.seed_role_bindings(seed.clone()).await.unwrap().unwrap();
    assert_eq!((seeded.changed, seeded.revision), (1, 1));
    // Once written, a seed (say from a second node's configuration) changes nothing.
    assert_eq!(
        store.seed_role_bindings(vec![rb("user:x", "role:viewer", "*")]).await.unwrap(),
        None
    );
    // Even when an operator removed every binding: the empty policy is the operator's.
    store.remove_role_bindings(seed.clone()).await.unwrap();
    assert_eq!(store.seed_role_bindings(seed).await.unwrap(), None);
    let listed = store.list_role_bindings().await.unwrap();
    assert_eq!((listed.revision, listed.bindings.len()), (2, 0));
    store.close().await.unwrap();
}

/// Malformed bindings are refused and nothing is stored.
pub async fn malformed_bindings_are_refused_and_nothing_is_stored(backend: &dyn Backend) {
    let store = backend.open().await;
    let good = rb("group:a", "role:admin", "*");
    let long = "x".repeat(atp_store::MAX_ROLE_BINDING_FIELD_BYTES + 1);
    for (bad, field) in [
        (rb("", "role:admin", "*"), "subject"),
        (rb("group:a,b", "role:admin", "*"), "subject"),
        (rb("group:a", " role:admin", "*"), "role"),
        (rb("group:a", "role:admin", ""), "domain"),
        (rb("group:a", "role:admin", "t\n1"), "domain"),
        (rb("group:a", "role:admin", &long), "domain"),
    ] {
        // The good binding in the same write is not stored either.
        let e = store.add_role_bindings(vec![good.clone(), bad.clone()]).await.unwrap_err();
        assert!(matches!(&e, StoreError::InvalidArgument(m) if m.contains(field)), "{bad:?}: {e}");
        assert_eq!(e.code(), "STORE_INVALID_ARGUMENT");
    }
    let too_many: Vec<RoleBinding> = (0..=atp_store::MAX_ROLE_BINDINGS)
        .map(|i| rb(&format!("user:{i}"), "role:viewer", "*"))
        .collect();
    assert!(matches!(
        store.add_role_bindings(too_many).await.unwrap_err(),
        StoreError::InvalidArgument(_)
    ));
    let listed = store.list_role_bindings().await.unwrap();
    assert_eq!((listed.revision, listed.bindings.len()), (0, 0));
    store.close().await.unwrap();
}

/// Concurrent adds of one binding count it once.
pub async fn concurrent_adds_of_one_binding_count_it_once(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every task adds the shared binding and one of its own.
            s.add_role_bindings(vec![
                rb("group:shared", "role:viewer", "*"),
                rb(&format!("user:u{i}"), "role:auditor", "*"),
            ])
            .await
            .unwrap()
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap().changed;
    }
    assert_eq!(total, 17, "16 own bindings and the shared one once");
    let listed = store.list_role_bindings().await.unwrap();
    assert_eq!(listed.bindings.len(), 17);
    assert_eq!(listed.revision, 16, "every write changed something");
    store.close().await.unwrap();
}
