//! Checkpoints of a distributed run: a checkpoint file's bytes parsed as a rerun loads them
//! (`neardup::pipeline::parse_checkpoint_for_fuzzing`, the same code as reading the file).
//!
//! Input: one mode byte, then the payload. With bit 0 of the mode clear, the payload is the whole
//! file; set ("repair"), it is the body, and the checksum and end marker are added, so that fuzzing
//! reaches past the checksum. The fingerprint asked for is the one the payload holds (bytes 8..16),
//! or, with bit 1 set, another one (which must be refused).
//!
//! Checks, besides "never panics or runs out of memory": a wrong fingerprint is refused; a
//! checkpoint never yields more records than its bytes can hold (9 bytes at least each).
#![no_main]

use libfuzzer_sys::fuzz_target;
use neardup::pipeline::parse_checkpoint_for_fuzzing;
use xxhash_rust::xxh3::xxh3_64;

const END: &[u8; 8] = b"NDCKEND1";

fuzz_target!(|data: &[u8]| {
    let (mode, payload) = neardup_fuzz::split_mode(data);
    let bytes = if mode & 1 != 0 {
        let mut file = payload.to_vec();
        file.extend_from_slice(&xxh3_64(payload).to_le_bytes());
        file.extend_from_slice(END);
        file
    } else {
        payload.to_vec()
    };
    let stored = payload
        .get(8..16)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    let wrong = mode & 2 != 0;
    let fingerprint = if wrong { stored ^ 1 } else { stored };
    if let Some(records) = parse_checkpoint_for_fuzzing(&bytes, fingerprint) {
        assert!(!wrong, "a checkpoint with another fingerprint was loaded");
        assert!(
            records <= bytes.len() / 9,
            "{records} records from {} bytes",
            bytes.len()
        );
    }
});
