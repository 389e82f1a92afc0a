//! Part files of a distributed run: `parts::merge` over one to eight fuzzed part files.
//!
//! Input: one mode byte (unused but for the count of copies: bit 0 adds the first part twice),
//! then the parts' bytes, one after another: a new part starts at each occurrence of the magic
//! `NDPART01` after the first byte.
//!
//! Checks, besides "never panics or runs out of memory": `merge` succeeds exactly when every part
//! is well formed (magic, records that fill the part up to its trailer, as many as the trailer
//! says, positions increasing within the part) and no position is in two parts; then its output is
//! every line in position order, each followed by a newline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use neardup::parts::merge;

const MAGIC: &[u8; 8] = b"NDPART01";
const END: &[u8; 8] = b"NDPEND01";
const MAX_PARTS: usize = 8;

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The lines of a well-formed part, by position; `None` when it is not one.
fn strict_parse(part: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    if part.len() < 24 || &part[..8] != MAGIC || &part[part.len() - 8..] != END {
        return None;
    }
    let end = part.len() - 16;
    let count = le_u64(part, end)?;
    let mut at = 8;
    let mut lines = Vec::new();
    while at < end {
        let position = le_u64(part, at)?;
        let len = le_u32(part, at + 8)? as usize;
        let line = part.get(at + 12..(at + 12).checked_add(len)?)?;
        at += 12 + len;
        if at > end || lines.last().is_some_and(|&(last, _)| last >= position) {
            return None;
        }
        lines.push((position, line));
    }
    (lines.len() as u64 == count).then_some(lines)
}

/// Splits `bytes` before each occurrence of the part magic (but the one at 0).
fn split_parts(bytes: &[u8]) -> Vec<&[u8]> {
    let mut starts: Vec<usize> = (1..bytes.len().saturating_sub(7))
        .filter(|&i| &bytes[i..i + 8] == MAGIC)
        .collect();
    starts.insert(0, 0);
    starts.truncate(MAX_PARTS);
    let mut parts = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
        parts.push(&bytes[start..end]);
    }
    parts
}

fuzz_target!(|data: &[u8]| {
    let (mode, payload) = neardup_fuzz::split_mode(data);
    let mut parts = split_parts(payload);
    if mode & 1 != 0 {
        parts.push(parts[0]);
    }
    let paths: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(n, bytes)| {
            let path = neardup_fuzz::scratch(&format!("out.part-{n:04}"));
            std::fs::write(&path, bytes).expect("scratch file written");
            path
        })
        .collect();
    let mut out = Vec::new();
    let merged = merge(&paths, &mut out);

    let expected: Option<Vec<(u64, &[u8])>> = parts
        .iter()
        .map(|p| strict_parse(p))
        .collect::<Option<Vec<_>>>()
        .map(|lists| lists.concat())
        .and_then(|mut all| {
            all.sort_by_key(|&(position, _)| position);
            all.windows(2).all(|w| w[0].0 < w[1].0).then_some(all)
        });
    match (merged, expected) {
        (Ok(n), Some(lines)) => {
            assert_eq!(n, lines.len() as u64, "merged line count");
            let mut want = Vec::new();
            for (_, line) in lines {
                want.extend_from_slice(line);
                want.push(b'\n');
            }
            assert!(
                out == want,
                "merged output differs from the lines in position order"
            );
        }
        (Err(_), None) => {}
        (Ok(n), None) => panic!("merge accepted {n} lines from damaged or inconsistent parts"),
        (Err(e), Some(_)) => panic!("merge refused well-formed parts: {e}"),
    }
});
