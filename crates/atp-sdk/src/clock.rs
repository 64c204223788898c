//! The wall clock as the SDK reads it, and the RFC 3339 form that KEL events and proofs carry.

use std::time::Duration;

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An RFC 3339 UTC timestamp with milliseconds, as KEL events and proofs carry.
pub(crate) fn timestamp(ms: i64) -> String {
    let base = atp_core::vc::DateTimeStamp::from_unix(ms.div_euclid(1000)).to_string();
    let millis = ms.rem_euclid(1000);
    match base.strip_suffix('Z') {
        Some(head) if millis != 0 => format!("{head}.{millis:03}Z"),
        _ => base,
    }
}
