//! gzip members read from bytes in memory: [`inflate_at`] decompresses the one member starting at
//! an offset and checks it, and [`inflate_block`] finds the members of a block of a gzipped
//! WARC file and decompresses them in parallel.
//!
//! A gzipped WARC file (Common Crawl's `.warc.gz`, `.warc.wet.gz`) is one gzip member per record,
//! and a member says nothing of its compressed length: its end is found by inflating it. Inflating
//! member after member on the reader thread caps reading at one core (about 120 MB/s of output
//! here). So a block is read, every offset where gzip's magic bytes occur is inflated as if a
//! member started there, in parallel, and the chain is walked from the block's start: the member
//! at offset 0 ends where the next begins, and so on. An offset where the magic bytes occur by
//! chance inside a member is inflated for nothing (it fails or is never reached); the chain uses
//! only members that begin where the one before ended and pass their checksum, which are exactly
//! the members sequential reading finds. Where the chain cannot go on inside the block (a member
//! running past its end, a damaged one, one too large), the caller goes on sequentially.

use rayon::prelude::*;

/// gzip's magic bytes and its one compression method (deflate).
pub(super) const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// How much output is inflated at a time: the size of an [`Inflater`]'s scratch buffer.
const SCRATCH: usize = 1 << 16;

/// A deflate decoder and the buffer it inflates into, reused from member to member (a buffer
/// made for each member would be zeroed each time: 64 KiB for a member of a few KB).
pub(super) struct Inflater {
    decoder: flate2::Decompress,
    scratch: Vec<u8>,
}

impl Inflater {
    pub(super) fn new() -> Inflater {
        Inflater {
            decoder: flate2::Decompress::new(false),
            scratch: vec![0; SCRATCH],
        }
    }
}

/// What inflating the member at the start of some bytes gave.
#[derive(Debug)]
pub(super) enum Inflated {
    /// A whole member of `len` compressed bytes (header and trailer included), checked.
    Whole { len: usize, out: Vec<u8> },
    /// The bytes end before the member does.
    Incomplete,
    /// Its output passed `cap` bytes; it would need more input, or `len` is its whole length.
    TooLarge { len: Option<usize> },
    /// Not a member, or a damaged one (the reason).
    Bad(String),
}

/// The length of the gzip header at the start of `bytes`, `Ok(None)` when they end first.
fn header_len(bytes: &[u8]) -> Result<Option<usize>, String> {
    if bytes.len() < 10 {
        return Ok(None);
    }
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Err("not a gzip member".to_string());
    }
    let flags = bytes[3];
    let mut at = 10;
    if flags & 0x04 != 0 {
        if bytes.len() < at + 2 {
            return Ok(None);
        }
        at += 2 + u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            match bytes.get(at..).and_then(|rest| memchr::memchr(0, rest)) {
                Some(nul) => at += nul + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    Ok((bytes.len() >= at).then_some(at))
}

/// Inflates the gzip member at the start of `bytes` with `inflater` and checks its CRC and
/// length. Output beyond `cap` bytes is not kept (the member is then `TooLarge`).
pub(super) fn inflate_at(bytes: &[u8], cap: usize, inflater: &mut Inflater) -> Inflated {
    let mut at = match header_len(bytes) {
        Ok(Some(at)) => at,
        Ok(None) => return Inflated::Incomplete,
        Err(reason) => return Inflated::Bad(reason),
    };
    let Inflater { decoder, scratch } = inflater;
    decoder.reset(false);
    let mut out: Vec<u8> = Vec::new();
    let mut crc = crc32fast::Hasher::new();
    let mut size: u64 = 0;
    let mut too_large = false;
    loop {
        let before_in = decoder.total_in();
        let before_out = decoder.total_out();
        let status = decoder.decompress(&bytes[at..], scratch, flate2::FlushDecompress::None);
        at += (decoder.total_in() - before_in) as usize;
        let produced = (decoder.total_out() - before_out) as usize;
        crc.update(&scratch[..produced]);
        size += produced as u64;
        if !too_large {
            if out.len() + produced > cap {
                too_large = true;
                out = Vec::new();
            } else {
                out.extend_from_slice(&scratch[..produced]);
            }
        }
        if produced == 0 && decoder.total_in() == before_in && at < bytes.len() {
            return Inflated::Bad("corrupt gzip member: it makes no progress".to_string());
        }
        match status {
            Ok(flate2::Status::StreamEnd) => break,
            Err(e) => return Inflated::Bad(format!("corrupt gzip member: {e}")),
            // Stuck with input left and room for output cannot happen; with no input left and
            // the scratch not filled, more input is needed.
            Ok(_) if at >= bytes.len() && produced < SCRATCH => {
                return match too_large {
                    true => Inflated::TooLarge { len: None },
                    false => Inflated::Incomplete,
                };
            }
            Ok(_) => {}
        }
    }
    let Some(trailer) = bytes.get(at..at + 8) else {
        return match too_large {
            true => Inflated::TooLarge { len: None },
            false => Inflated::Incomplete,
        };
    };
    let want_crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
    let want_size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
    if crc.finalize() != want_crc || size as u32 != want_size {
        return Inflated::Bad("gzip member fails its checksum".to_string());
    }
    let len = at + 8;
    match too_large {
        true => Inflated::TooLarge { len: Some(len) },
        false => Inflated::Whole { len, out },
    }
}

/// One member of a block: where it starts in the block, its compressed length, its output.
#[derive(Debug)]
pub(super) struct BlockMember {
    pub start: usize,
    pub len: usize,
    pub out: Vec<u8>,
}

impl BlockMember {
    /// Where it ends in the block.
    pub fn end(&self) -> usize {
        self.start + self.len
    }
}

/// The whole members that follow one another from the start of `block`, each checked, inflated
/// in parallel (each output at most `cap` bytes). The chain stops before the first member that
/// is not whole and checked inside the block: the caller reads from there on itself.
pub(super) fn inflate_block(block: &[u8], cap: usize) -> Vec<BlockMember> {
    let starts: Vec<usize> = memchr::memmem::find_iter(block, &GZIP_MAGIC).collect();
    if starts.first() != Some(&0) {
        return Vec::new();
    }
    let mut inflated: Vec<(usize, Inflated)> = starts
        .par_iter()
        .map_init(Inflater::new, |inflater, &start| {
            (start, inflate_at(&block[start..], cap, inflater))
        })
        .collect();
    let mut chain = Vec::new();
    let mut next = 0;
    for (start, result) in inflated.iter_mut() {
        if *start < next {
            continue;
        }
        if *start > next {
            // The member before ended where no member begins: damage, for the caller.
            break;
        }
        match std::mem::replace(result, Inflated::Incomplete) {
            Inflated::Whole { len, out } => {
                chain.push(BlockMember {
                    start: *start,
                    len,
                    out,
                });
                next = *start + len;
            }
            _ => break,
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::{Inflated, Inflater, inflate_at, inflate_block};

    fn member(data: &[u8], level: u32) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    /// What sequential reading finds: member after member from the start while they are whole.
    fn sequential(bytes: &[u8], cap: usize) -> Vec<(usize, usize, Vec<u8>)> {
        let mut inflater = Inflater::new();
        let mut at = 0;
        let mut out = Vec::new();
        while let Inflated::Whole {
            len,
            out: bytes_out,
        } = inflate_at(&bytes[at..], cap, &mut inflater)
        {
            out.push((at, len, bytes_out));
            at += len;
        }
        out
    }

    #[test]
    fn issue12_a_member_is_inflated_checked_and_measured() {
        let data = b"WARC/1.0\r\n".repeat(50_000);
        let one = member(&data, 9);
        let mut inflater = Inflater::new();
        match inflate_at(&one, usize::MAX, &mut inflater) {
            Inflated::Whole { len, out } => {
                assert_eq!(len, one.len());
                assert_eq!(out, data);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            inflate_at(&one[..one.len() - 3], usize::MAX, &mut inflater),
            Inflated::Incomplete
        ));
        assert!(matches!(
            inflate_at(&one, 1000, &mut inflater),
            Inflated::TooLarge { len: Some(n) } if n == one.len()
        ));
        let mut damaged = one.clone();
        let crc_at = damaged.len() - 8;
        damaged[crc_at] ^= 1;
        assert!(matches!(
            inflate_at(&damaged, usize::MAX, &mut inflater),
            Inflated::Bad(_)
        ));
        assert!(matches!(
            inflate_at(b"not gzip at all", 10, &mut inflater),
            Inflated::Bad(_)
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The parallel chain is a prefix of what sequential reading finds, and all of it when
        /// every member is whole; magic bytes inside the data (stored blocks copy them
        /// verbatim) change nothing.
        #[test]
        fn issue12_members_inflated_in_parallel_are_the_sequential_ones(
            payloads in prop::collection::vec(
                prop::collection::vec(prop_oneof![Just(0x1fu8), Just(0x8b), Just(0x08), any::<u8>()], 0..3000),
                1..12,
            ),
            level in 0u32..10,
            cut in any::<prop::sample::Index>(),
        ) {
            let mut file = Vec::new();
            for payload in &payloads {
                file.extend(member(payload, level));
            }
            let whole = inflate_block(&file, usize::MAX);
            let expected = sequential(&file, usize::MAX);
            prop_assert_eq!(expected.len(), payloads.len());
            let got: Vec<(usize, usize, Vec<u8>)> =
                whole.into_iter().map(|m| (m.start, m.len, m.out)).collect();
            prop_assert_eq!(&got, &expected);
            // Cut anywhere: the chain stops before the member that runs past the cut.
            let end = cut.index(file.len() + 1);
            let part: Vec<(usize, usize, Vec<u8>)> = inflate_block(&file[..end], usize::MAX)
                .into_iter()
                .map(|m| (m.start, m.len, m.out))
                .collect();
            let whole_before: Vec<_> =
                expected.iter().filter(|(s, l, _)| s + l <= end).cloned().collect();
            prop_assert_eq!(part, whole_before);
        }
    }
}
