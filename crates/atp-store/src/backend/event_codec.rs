//! The stored form of a signed key event: its canonical JSON, raw DEFLATE (RFC 1951).
//!
//! The JSON is mostly base64url and base58 text of composite keys and signatures (6 bits of
//! entropy per byte), so DEFLATE stores it in about 76 % of the bytes (migration 0006). The fast
//! level compresses as well as the best one on this input. Inflation is bounded by
//! [`MAX_EVENT_BYTES`]: a stored row never inflates past the largest event the store accepts.

use std::io::{Read, Write};

use atp_core::kel::MAX_EVENT_BYTES;
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use crate::{Result, StoreError};

/// Compresses a canonical event.
pub fn deflate(canonical: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = DeflateEncoder::new(Vec::with_capacity(canonical.len()), Compression::fast());
    encoder
        .write_all(canonical)
        .and_then(|()| encoder.finish())
        .map_err(|e| StoreError::corrupt(format!("compressing an event: {e}")))
}

/// Inflates a stored event; refuses one that inflates past [`MAX_EVENT_BYTES`].
pub fn inflate(stored: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(stored.len() * 2);
    let limit = u64::try_from(MAX_EVENT_BYTES).unwrap_or(u64::MAX) + 1;
    DeflateDecoder::new(stored)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::corrupt(format!("stored event does not inflate: {e}")))?;
    if out.len() > MAX_EVENT_BYTES {
        return Err(StoreError::corrupt("stored event inflates past the event size limit"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds_inflation() {
        let json = br#"{"event":{"k":"uAAAA"},"sig":"zBBBB"}"#.repeat(50);
        let stored = deflate(&json).expect("deflate");
        assert!(stored.len() < json.len());
        assert_eq!(inflate(&stored).expect("inflate"), json);

        let bomb = deflate(&vec![b'a'; MAX_EVENT_BYTES + 1]).expect("deflate");
        assert!(matches!(inflate(&bomb), Err(StoreError::Corrupt(_))), "over the limit");
        assert!(inflate(b"\xff\xff not deflate").is_err());
    }
}
