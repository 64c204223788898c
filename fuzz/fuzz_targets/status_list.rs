#![no_main]
//! Status list decoding (base64url + GZIP, bounded) for every status size.
use atp_core::status_list::BitstringStatusList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else { return };
    if let Ok(text) = std::str::from_utf8(rest) {
        if let Ok(list) = BitstringStatusList::decode(text, size % 10) {
            let _ = list.get(0);
        }
    }
});
