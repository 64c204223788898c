//! The conformance suite of [`atp_store::Store`]: one set of cases that every backend passes
//! against its real database, so that the embedded SQLite store and the PostgreSQL store of
//! the enterprise edition give the same answers, the same error codes, and store nothing on a
//! refused write.
//!
//! A backend's test file implements [`Backend`] (a fresh, empty database that can be opened
//! again) and invokes [`conformance_tests!`], which writes one `#[tokio::test]` per case.
//! Behaviour that belongs to one backend only (SQLite's group commit, say) is tested beside
//! that backend, not here. Test-support only: the workspace's tidy test allows this crate only
//! as a dev-dependency.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use atp_store::Store;

pub mod cases;
pub mod support;

/// What [`Backend::open`] returns.
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = Arc<dyn Store>> + Send + 'a>>;

/// A backend under test: one database, fresh for each case.
pub trait Backend: Send + Sync {
    /// Opens a store on this backend's database: empty the first time, and the same data on
    /// every later call (a reopen, or a second store beside the first, as a second node or
    /// process would have).
    fn open(&self) -> OpenFuture<'_>;

    /// Makes the database refuse every new row of `audit_events` from now on (a trigger: a
    /// full disk or a broken audit table, as the store sees it), behind the store's back.
    fn refuse_audit_inserts(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// The directories and files that hold this database's bytes on disk (data files and
    /// write-ahead log), after making the database write out what it has committed: what an
    /// attacker with the disk would read.
    fn raw_files(&self) -> Pin<Box<dyn Future<Output = Vec<PathBuf>> + Send + '_>>;

    /// The stored data key of `subject`, read behind the store's back.
    fn subject_key<'a>(
        &'a self,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'a>>;

    /// Whether a deleted row's bytes leave the files when the delete commits (SQLite's
    /// `secure_delete` and an emptied write-ahead log), or stay until the space is reused
    /// (PostgreSQL; docs/audit.md, "Erasure").
    fn shreds_in_place(&self) -> bool;
}

/// Writes one `#[tokio::test]` per conformance case. `$fresh` is an expression whose value is
/// a future of `Option<impl Backend>`, a fresh backend, evaluated once per case; `None` skips
/// the case (a backend whose server is not installed, outside CI, after printing a SKIP).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!(@cases $fresh;
            log_and_kel::kel_lifecycle_append_and_read,
            log_and_kel::stale_head_is_a_conflict_and_stores_nothing,
            log_and_kel::events_that_do_not_fit_are_refused_before_the_store,
            log_and_kel::concurrent_appenders_never_fork_a_kel,
            log_and_kel::identities_page_by_keyset,
            log_and_kel::status_lists_set_get_and_allocate,
            log_and_kel::signed_status_updates_apply_all_or_nothing,
            log_and_kel::trust_anchors_and_their_metadata_commit_together,
            log_and_kel::trust_anchors_meta_and_evidence,
            log_and_kel::checkpoints_must_match_the_log,
            log_and_kel::log_requests_beyond_the_log_are_refused,
            log_and_kel::large_log_roots_and_proofs_match_atp_core,
            log_and_kel::log_proofs_match_atp_core,
            log_and_kel::closed_store_refuses_writes,
            log_and_kel::a_failed_request_does_not_fail_the_others,
            log_and_kel::pipelined_events_of_one_did_all_commit,
            leases::a_lease_has_one_holder_and_fences_its_writes,
            leases::an_expired_lease_goes_to_the_next_holder_at_a_new_epoch,
            leases::racing_holders_get_one_lease,
            leases::lease_requests_are_checked,
            leases::the_first_claim_of_a_key_wins,
            leases::a_trust_snapshot_is_stored_under_its_lease,
            once::a_one_time_value_is_recorded_once_while_live,
            once::racing_recorders_record_once,
            once::concurrent_duplicates_record_each_digest_once,
            once::a_live_record_is_seen_without_recording,
            once::expired_records_are_purged_in_batches,
            role_bindings::add_remove_are_idempotent_and_bump_the_revision_only_on_change,
            role_bindings::every_policy_change_is_one_log_leaf_over_the_whole_policy,
            role_bindings::seeding_applies_only_to_a_policy_never_written,
            role_bindings::malformed_bindings_are_refused_and_nothing_is_stored,
            role_bindings::concurrent_adds_of_one_binding_count_it_once,
            trust_evidence::record_is_logged_and_idempotent,
            trust_evidence::refused_input_stores_nothing,
            trust_evidence::list_filters_pages_and_scan,
            audit::audited_writes_store_the_change_and_its_events_together,
            audit::a_change_whose_events_cannot_be_stored_is_not_made,
            audit::sealed_batches_chain_into_the_log,
            audit::event_pages_filter_by_code_time_and_batch,
            audit::expiry_removes_the_oldest_batches_and_keeps_the_rest_verifiable,
            erasure::erasure_destroys_the_key_and_the_evidence_and_keeps_the_log,
        );
    };
    (@cases $fresh:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(backend) = $fresh.await else { return };
                $crate::cases::$module::$case(&backend).await;
            }
        )*
    };
}
