#![no_main]
//! The envelope wire decoder: never panics, and whatever decodes re-encodes to the same bytes.
use atp_core::envelope::SealedEnvelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sealed) = SealedEnvelope::from_bytes(data) {
        let again = sealed.to_bytes().expect("a decoded envelope re-encodes");
        assert_eq!(again, data, "wire encoding is canonical");
    }
});
