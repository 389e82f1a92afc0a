//! Checkpoints of a distributed run: each worker's signed records, so that a rerun after a lost
//! process skips reading and signing what was already done.
//!
//! One file per worker, `DIR/sign-WWWW-of-NNNN.ckpt`, written atomically (temporary name, fsync,
//! rename) once the worker has signed its share: its records (a rejected one with its rejection)
//! and the byte-order marks its reading skipped, which the summary counts. It opens with a
//! fingerprint of everything the records depend on (the settings, the worker count, and each
//! input's name, size and modification time) and ends with a checksum; a file whose fingerprint
//! or checksum does not match is ignored and the worker signs again.

use std::io::Write;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::distributed::Own;
use crate::error::Error;
use crate::read::Input;

/// `04`: band keys of 64 bits, and the rejections and byte-order marks of the share (`02` stored
/// 32-bit keys and no rejections; a file of another version is ignored and the worker signs again).
const MAGIC: &[u8; 8] = b"NDCKPT04";
const END: &[u8; 8] = b"NDCKEND1";

/// The checkpoint file of `worker` of `workers` in `dir`.
pub(super) fn path(dir: &Path, worker: usize, workers: usize) -> PathBuf {
    dir.join(format!("sign-{worker:04}-of-{workers:04}.ckpt"))
}

/// A fingerprint of the settings (`settings`, any stable text) and the inputs as they are now.
pub(super) fn fingerprint(settings: &str, inputs: &[Input], workers: usize) -> u64 {
    let mut text = format!("{settings}\nworkers {workers}\n");
    for input in inputs {
        let (size, modified) = match input {
            Input::Path(p) => std::fs::metadata(p).map_or((0, 0), |m| {
                let modified = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                (m.len(), modified)
            }),
            Input::Stdin => (0, 0),
        };
        text.push_str(&format!("{} {size} {modified}\n", input.display_name()));
    }
    xxh3_64(text.as_bytes())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// What a checkpoint holds: one worker's signed records, and what reading them found besides.
#[derive(Debug)]
pub(super) struct Signed {
    pub records: Vec<(u64, Own)>,
    /// Byte-order marks skipped at the start of this worker's inputs.
    pub byte_order_marks: u64,
}

/// Writes `signed` to `path` atomically.
pub(super) fn write(path: &Path, fingerprint: u64, signed: &Signed) -> Result<(), Error> {
    let owned = &signed.records;
    let io = |source| Error::Output {
        what: path.display().to_string(),
        source,
    };
    let mut body = Vec::new();
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&fingerprint.to_le_bytes());
    body.extend_from_slice(&signed.byte_order_marks.to_le_bytes());
    body.extend_from_slice(&(owned.len() as u64).to_le_bytes());
    for (pos, own) in owned {
        body.extend_from_slice(&pos.to_le_bytes());
        match own {
            Own::Rejected { rejection } => {
                body.push(0);
                let json = serde_json::to_vec(rejection).expect("a rejection serializes");
                put_bytes(&mut body, &json);
            }
            Own::Empty => body.push(1),
            Own::Doc {
                id,
                hash,
                signature,
                keys,
                score,
            } => {
                body.push(2);
                body.extend_from_slice(&score.to_le_bytes());
                put_bytes(&mut body, id.as_bytes());
                body.extend_from_slice(&hash.0.to_le_bytes());
                body.extend_from_slice(&hash.1.to_le_bytes());
                put_bytes(&mut body, signature);
                body.extend_from_slice(&(keys.len() as u32).to_le_bytes());
                for key in keys {
                    body.extend_from_slice(&key.to_le_bytes());
                }
            }
        }
    }
    let mut hasher = Xxh3::new();
    hasher.update(&body);
    body.extend_from_slice(&hasher.digest().to_le_bytes());
    body.extend_from_slice(END);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-ckpt-")
        .tempfile_in(dir)
        .map_err(io)?;
    temp.write_all(&body).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Reads a byte slice cursor.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The records in `path`, if it is a complete checkpoint with this fingerprint.
pub(super) fn read(path: &Path, fingerprint: u64) -> Option<Signed> {
    parse(&std::fs::read(path).ok()?, fingerprint)
}

/// Parses checkpoint bytes as [`read`] parses a file, and says how many records they hold; `None`
/// when they are not a complete checkpoint with this fingerprint. For the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub fn parse_checkpoint_for_fuzzing(bytes: &[u8], fingerprint: u64) -> Option<usize> {
    parse(bytes, fingerprint).map(|signed| signed.records.len())
}

/// The records in `bytes`, if they are a complete checkpoint with this fingerprint.
fn parse(bytes: &[u8], fingerprint: u64) -> Option<Signed> {
    if bytes.len() < 48 || &bytes[bytes.len() - 8..] != END {
        return None;
    }
    let body = &bytes[..bytes.len() - 16];
    let stored = u64::from_le_bytes(bytes[bytes.len() - 16..bytes.len() - 8].try_into().ok()?);
    if xxh3_64(body) != stored {
        return None;
    }
    let mut c = Cursor { bytes: body, at: 0 };
    if c.take(8)? != MAGIC || c.u64()? != fingerprint {
        return None;
    }
    let byte_order_marks = c.u64()?;
    let count = c.u64()?;
    // Every record takes at least 9 bytes: a crafted count reserves no more than the file holds.
    let mut owned = Vec::with_capacity(count.min(body.len() as u64 / 9) as usize);
    for _ in 0..count {
        let pos = c.u64()?;
        let own = match c.take(1)?[0] {
            0 => Own::Rejected {
                rejection: serde_json::from_slice(c.bytes()?).ok()?,
            },
            1 => Own::Empty,
            2 => {
                let score = f64::from_le_bytes(c.take(8)?.try_into().ok()?);
                let id = String::from_utf8(c.bytes()?.to_vec()).ok()?;
                let hash = (c.u64()?, c.u64()?);
                let signature = c.bytes()?.to_vec();
                let n = c.u32()? as usize;
                let keys = (0..n).map(|_| c.u64()).collect::<Option<Vec<u64>>>()?;
                Own::Doc {
                    id,
                    hash,
                    signature,
                    keys,
                    score,
                }
            }
            _ => return None,
        };
        owned.push((pos, own));
    }
    (c.at == body.len()).then_some(Signed {
        records: owned,
        byte_order_marks,
    })
}

#[cfg(test)]
mod tests {
    use crate::error::{Origin, RejectReason, Rejection};
    use crate::pipeline::checkpoint::{Signed, path, read, write};
    use crate::pipeline::distributed::Own;

    #[test]
    fn checkpoints_round_trip_and_refuse_damage_and_other_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), 1, 2);
        let owned = vec![
            (1, Own::Empty),
            (
                3,
                Own::Rejected {
                    rejection: Rejection {
                        origin: Origin {
                            file: "a".into(),
                            line: 2,
                            offset: None,
                        },
                        reason: RejectReason::MissingField {
                            field: "text".into(),
                            present: vec!["id".into()],
                        },
                    },
                },
            ),
            (
                5,
                Own::Doc {
                    id: "d5".into(),
                    hash: (7, 8),
                    signature: vec![1, 2, 3],
                    keys: vec![9, u64::MAX],
                    score: 2.5,
                },
            ),
        ];
        let signed = Signed {
            records: owned,
            byte_order_marks: 1,
        };
        write(&file, 42, &signed).unwrap();
        let back = read(&file, 42).unwrap();
        assert_eq!(format!("{back:?}"), format!("{signed:?}"));
        assert!(read(&file, 43).is_none());
        let bytes = std::fs::read(&file).unwrap();
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        std::fs::write(&file, &bad).unwrap();
        assert!(read(&file, 42).is_none());
        std::fs::write(&file, &bytes[..bytes.len() - 5]).unwrap();
        assert!(read(&file, 42).is_none());
    }
}
