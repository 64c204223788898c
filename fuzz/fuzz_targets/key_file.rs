#![no_main]
//! Key file decoding (plain files only: the KDF makes encrypted inputs too slow to fuzz).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = atp_crypto::keyfile::decode(text, None);
    }
});
