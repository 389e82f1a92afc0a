//! The parallel half of the first pass: a batch of frames prepared (parsed, stripped, normalized,
//! exact-hashed, shingled), MinHash-signed and band-keyed, a chunk of records at a time so that
//! each chunk's shingles are signed while they are still in cache and freed at once.
//!
//! The sequential half (exact copies, per-document facts and band records, in input order) is
//! `analyse`'s: it enters one batch while the next one is signed here, so on two cores neither
//! waits for the other. Every record is signed, exact copies included (about one in twenty on a
//! crawl): which ones are copies is only known in input order, and signing a copy costs less than
//! making the parallel half wait for the sequential one.

use std::time::Instant;

use rayon::prelude::*;

use super::{Dedup, Prepared};
use crate::lsh::BandKey;
use crate::read::{Frame, Parser};

/// Records prepared and signed together: small enough that their shingles stay in cache between
/// the two steps, large enough that timing each step costs nothing measurable.
const CHUNK_RECORDS: usize = 64;

/// One batch after its parallel stages.
pub(super) struct SignedBatch {
    /// The batch's chunks, in input order.
    pub chunks: Vec<SignedChunk>,
    /// How far the reader had read when the batch was handed over.
    pub bytes_read: u64,
    /// Wall time of the parallel stages, shared between preparing and signing by the CPU time
    /// each took.
    pub prepare_seconds: f64,
    pub sign_seconds: f64,
}

/// A chunk of records, prepared and signed.
#[derive(Default)]
pub(super) struct SignedChunk {
    /// Each record as prepared; a document's shingles are already signed and freed.
    pub records: Vec<SignedRecord>,
    /// `num_perm` values for each signed record, in order.
    pub signatures: Vec<u32>,
    /// `num_bands` keys for each signed record, in order.
    pub keys: Vec<BandKey>,
    /// Distinct shingles of each signed record, when the measure needs them.
    pub sizes: Vec<u32>,
    prepare_cpu: f64,
    sign_cpu: f64,
}

/// One record of a [`SignedChunk`].
pub(super) struct SignedRecord {
    pub prepared: Prepared,
    /// Whether the record is a document with shingles, whose signature, keys and size come next
    /// in its chunk.
    pub signed: bool,
}

impl Dedup {
    /// Prepares, signs and band-keys `frames` in parallel (see the module documentation).
    pub(super) fn sign_batch(
        &self,
        parser: &Parser,
        frames: &[Frame],
        bytes_read: u64,
        with_sizes: bool,
    ) -> SignedBatch {
        let started = Instant::now();
        let chunks: Vec<SignedChunk> = frames
            .par_chunks(CHUNK_RECORDS)
            .map(|frames| self.sign_chunk(parser, frames, with_sizes))
            .collect();
        let wall = started.elapsed().as_secs_f64();
        let (prepare_cpu, sign_cpu) = chunks.iter().fold((0.0, 0.0), |(p, s), chunk| {
            (p + chunk.prepare_cpu, s + chunk.sign_cpu)
        });
        let prepare_share = match prepare_cpu + sign_cpu {
            0.0 => 1.0,
            total => prepare_cpu / total,
        };
        SignedBatch {
            chunks,
            bytes_read,
            prepare_seconds: wall * prepare_share,
            sign_seconds: wall * (1.0 - prepare_share),
        }
    }

    fn sign_chunk(&self, parser: &Parser, frames: &[Frame], with_sizes: bool) -> SignedChunk {
        let num_perm = self.num_perm();
        let started = Instant::now();
        let prepared: Vec<Prepared> = frames.iter().map(|f| self.prepare(parser, f)).collect();
        let prepared_at = Instant::now();
        let mut chunk = SignedChunk {
            records: Vec::with_capacity(prepared.len()),
            ..SignedChunk::default()
        };
        let mut keys = Vec::with_capacity(self.params.num_bands);
        for mut prepared in prepared {
            let signed = match &mut prepared {
                Prepared::Doc { shingles, .. } if !shingles.is_empty() => {
                    let at = chunk.signatures.len();
                    chunk.signatures.resize(at + num_perm, 0);
                    let signature = &mut chunk.signatures[at..];
                    self.hasher.sign_into(shingles, signature);
                    self.params.band_keys(signature, &mut keys);
                    chunk.keys.extend_from_slice(&keys);
                    if with_sizes {
                        shingles.sort_unstable();
                        shingles.dedup();
                        chunk
                            .sizes
                            .push(u32::try_from(shingles.len()).unwrap_or(u32::MAX));
                    }
                    *shingles = Vec::new();
                    true
                }
                _ => false,
            };
            chunk.records.push(SignedRecord { prepared, signed });
        }
        chunk.prepare_cpu = (prepared_at - started).as_secs_f64();
        chunk.sign_cpu = prepared_at.elapsed().as_secs_f64();
        chunk
    }
}
