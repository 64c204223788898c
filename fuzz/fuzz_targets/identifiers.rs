#![no_main]
//! DIDs, did:key and Multikey strings.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = atp_core::did::parse_did_atp(text);
        let _ = atp_core::did_key::parse_did_key(text);
        let _ = atp_crypto::PublicKey::from_multikey(text);
        let _ = atp_core::kel::parse_timestamp(text);
    }
});
