//! The `[audit]` section's limits: every value outside its range is refused with the key named.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use atp_enterprise_audit::{AuditConfig, RETENTION_DAYS_RANGE};

#[test]
fn retention_is_whole_days_within_its_range() {
    let with = |days| AuditConfig { retention_days: Some(days), ..AuditConfig::default() };
    for days in [0, RETENTION_DAYS_RANGE.end() + 1] {
        let e = with(days).validate().unwrap_err().to_string();
        assert!(e.contains("retention_days"), "{e}");
    }
    let six_years = with(2190);
    six_years.validate().unwrap();
    assert_eq!(six_years.retention(), Some(Duration::from_secs(2190 * 86_400)));
    assert_eq!(AuditConfig::default().retention(), None, "kept for ever by default");
    let e = AuditConfig { seal_interval_ms: Some(99), ..AuditConfig::default() }.validate();
    assert!(e.unwrap_err().to_string().contains("seal_interval_ms"));
}
