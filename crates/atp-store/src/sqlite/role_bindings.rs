//! The RBAC policy's role bindings (migration 0005): shape checks, the writer's statements and
//! the reads.

use sqlx::{SqliteConnection, SqlitePool};

use crate::backend::{BindingWrite, Frontier, check_policy_size, to_i64, to_u64};
use crate::error::Result;
use crate::model::{RoleBinding, RoleBindingChange, RoleBindings};

async fn revision_on(conn: &mut SqliteConnection) -> Result<u64> {
    let r: i64 =
        sqlx::query_scalar("SELECT revision FROM role_bindings_revision WHERE singleton = 1")
            .fetch_one(&mut *conn)
            .await?;
    to_u64(r, "role bindings revision")
}

/// Runs inside the writer's savepoint: the rows, the revision and the `role-bindings` log leaf
/// (the whole policy after the change) change together.
pub(super) async fn write(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    kind: BindingWrite,
    bindings: Vec<RoleBinding>,
    now: i64,
) -> Result<Option<RoleBindingChange>> {
    let revision = revision_on(conn).await?;
    if kind == BindingWrite::Seed && revision != 0 {
        return Ok(None);
    }
    let mut changed: u64 = 0;
    for b in &bindings {
        let q = match kind {
            BindingWrite::Add | BindingWrite::Seed => sqlx::query(
                "INSERT INTO role_bindings (subject, role, domain, added_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (subject, role, domain) DO NOTHING",
            )
            .bind(&b.subject)
            .bind(&b.role)
            .bind(&b.domain)
            .bind(now),
            BindingWrite::Remove => sqlx::query(
                "DELETE FROM role_bindings WHERE subject = $1 AND role = $2 AND domain = $3",
            )
            .bind(&b.subject)
            .bind(&b.role)
            .bind(&b.domain),
        };
        changed += q.execute(&mut *conn).await?.rows_affected();
    }
    if changed == 0 {
        return Ok(Some(RoleBindingChange { changed, revision }));
    }
    if kind != BindingWrite::Remove {
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM role_bindings").fetch_one(&mut *conn).await?;
        // On refusal the savepoint is rolled back: nothing of this write stays.
        check_policy_size(to_u64(total, "role binding count")?)?;
    }
    let next = revision + 1;
    sqlx::query("UPDATE role_bindings_revision SET revision = $1 WHERE singleton = 1")
        .bind(to_i64(next, "role bindings revision")?)
        .execute(&mut *conn)
        .await?;
    // Admin actions are in the transparency log (docs/design.md §8): an auditor holding the policy at
    // this revision can recompute the leaf, and no change can be made without one.
    let policy: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT subject, role, domain FROM role_bindings ORDER BY subject, role, domain",
    )
    .fetch_all(&mut *conn)
    .await?;
    let data_hash = atp_core::log_entry::role_bindings_data_hash(next, &policy)?;
    super::log_append::append_leaf(
        conn,
        frontier,
        atp_core::log_entry::LeafKind::RoleBindings,
        &data_hash,
        Some("role-bindings".into()),
        now,
    )
    .await?;
    Ok(Some(RoleBindingChange { changed, revision: next }))
}

/// The bindings and their revision, in one read transaction (one snapshot).
pub(super) async fn list(pool: &SqlitePool) -> Result<RoleBindings> {
    let mut tx = pool.begin().await?;
    let revision = revision_on(&mut tx).await?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT subject, role, domain FROM role_bindings ORDER BY subject, role, domain",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let bindings =
        rows.into_iter().map(|(subject, role, domain)| RoleBinding { subject, role, domain });
    Ok(RoleBindings { revision, bindings: bindings.collect() })
}

/// The policy's revision (one point read).
pub(super) async fn revision(pool: &SqlitePool) -> Result<u64> {
    let mut conn = pool.acquire().await?;
    revision_on(&mut conn).await
}
