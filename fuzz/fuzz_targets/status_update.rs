#![no_main]
//! Signed status-list updates (the ATPSTL1 layout of UpdateStatus): parsing is exact, so
//! whatever parses must encode back to the same bytes.
use atp_core::status_update::StatusListUpdate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(update) = StatusListUpdate::parse(data) else { return };
    assert_eq!(update.to_bytes().expect("a parsed update encodes"), data);
});
