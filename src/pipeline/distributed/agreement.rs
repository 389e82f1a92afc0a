//! Start-up agreement of a distributed run.
//!
//! Before any work, the processes connect to each other and trade a [`Fingerprint`] over every new
//! connection: the settings that shape the output, by name, and each input's name, size and
//! xxh3 hashes of its first and last MiB. Every process compares every peer's fingerprint with
//! its own once it holds them all, so when two differ, every process stops with the same kind of
//! one-line error (naming the first difference it sees) before it reads a record or creates an
//! output.
//!
//! The connections are made here rather than by timely's own connection code, which prints its
//! progress ("awaiting connections") to standard output; this code prints nothing. The connected
//! sockets are then handed to timely, which sees exactly what its own code would have given it.
//!
//! The wire format is this module's own and never fails to decode into something that can be
//! compared: a frame that is not a fingerprint is reported as such.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::error::Error;
use crate::read::Input;

/// How much of each end of an input is hashed.
const MIB: u64 = 1 << 20;

/// Opens every start-up message (and says which version of the exchange it is).
const MAGIC: &[u8; 8] = b"NDAGREE1";

/// The largest fingerprint accepted from a peer.
const MAX_FRAME: u64 = 64 << 20;

/// How long a connected peer may take to send its fingerprint (it sends it at once).
const ANSWER_TIME: Duration = Duration::from_secs(60);

/// How often an unreachable peer is tried again (it may not have started yet).
const RETRY: Duration = Duration::from_millis(200);

/// The name of the setting that holds the number of processes; a peer that counts differently
/// can never complete the connections, so it is reported as soon as it is met.
pub(super) const PROCESSES: &str = "processes";

/// One named setting and its value as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    pub name: String,
    pub value: String,
}

impl Setting {
    pub fn new(name: &str, value: impl ToString) -> Setting {
        Setting {
            name: name.to_string(),
            value: value.to_string(),
        }
    }
}

/// What one input looks like from one process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    /// A regular file: its size and the hashes of its first and last MiB (the whole file when
    /// it is smaller).
    File { size: u64, head: u64, tail: u64 },
    /// A directory (read as one document per file): its files, their total size, a hash of the
    /// relative names and sizes, and the hashes of the first and last MiB of the files' bytes
    /// one after the other.
    Dir {
        files: u64,
        size: u64,
        listing: u64,
        head: u64,
        tail: u64,
    },
    /// Standard input, or anything that is neither a regular file nor a directory (not read
    /// here: reading would consume it).
    Other(String),
    /// It could not be opened or read; why.
    Unreadable(String),
}

impl Content {
    fn describe(&self) -> String {
        match self {
            Content::File { size, .. } => format!("{} bytes", grouped(*size)),
            Content::Dir { files, size, .. } => {
                format!(
                    "a directory of {} files ({} bytes)",
                    grouped(*files),
                    grouped(*size)
                )
            }
            Content::Other(what) => what.clone(),
            Content::Unreadable(why) => format!("unreadable ({why})"),
        }
    }
}

/// One input: its name as given and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InputPrint {
    name: String,
    content: Content,
}

/// What a process would compute from: its settings and its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint {
    settings: Vec<Setting>,
    inputs: Vec<InputPrint>,
}

impl Fingerprint {
    /// The fingerprint of `settings` and of `inputs` as they are now (reads at most 2 MiB of
    /// each).
    pub fn new(settings: Vec<Setting>, inputs: &[Input]) -> Fingerprint {
        Fingerprint {
            settings,
            inputs: inputs
                .iter()
                .map(|input| InputPrint {
                    name: input.display_name(),
                    content: match input {
                        Input::Path(path) => {
                            content(path).unwrap_or_else(|e| Content::Unreadable(io_reason(&e)))
                        }
                        Input::Stdin => Content::Other("standard input".to_string()),
                    },
                })
                .collect(),
        }
    }

    fn setting(&self, name: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_str())
    }

    /// The first way in which `self` (a peer's, "there") differs from `here` (this process's),
    /// as a short phrase; `None` when they agree.
    pub fn difference(&self, here: &Fingerprint) -> Option<String> {
        for mine in &here.settings {
            match self.setting(&mine.name) {
                None => return Some(format!("{} is not set there", mine.name)),
                Some(theirs) if theirs != mine.value => {
                    return Some(format!(
                        "{} is {theirs} there, {} here",
                        mine.name, mine.value
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = self
            .settings
            .iter()
            .find(|s| here.setting(&s.name).is_none())
        {
            return Some(format!(
                "{} is {} there, not set here",
                extra.name, extra.value
            ));
        }
        if self.inputs.len() != here.inputs.len() {
            return Some(format!(
                "{} inputs there, {} here",
                self.inputs.len(),
                here.inputs.len()
            ));
        }
        for (i, (there, here)) in self.inputs.iter().zip(&here.inputs).enumerate() {
            if there.name != here.name {
                return Some(format!(
                    "input {} is {} there, {} here",
                    i + 1,
                    there.name,
                    here.name
                ));
            }
            if let Some(difference) = content_difference(&there.content, &here.content) {
                return Some(format!("input {} {difference}", here.name));
            }
        }
        None
    }

    /// The bytes sent to the peers.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u64(&mut out, self.settings.len() as u64);
        for setting in &self.settings {
            put_str(&mut out, &setting.name);
            put_str(&mut out, &setting.value);
        }
        put_u64(&mut out, self.inputs.len() as u64);
        for input in &self.inputs {
            put_str(&mut out, &input.name);
            match &input.content {
                Content::File { size, head, tail } => {
                    out.push(0);
                    for v in [size, head, tail] {
                        put_u64(&mut out, *v);
                    }
                }
                Content::Dir {
                    files,
                    size,
                    listing,
                    head,
                    tail,
                } => {
                    out.push(1);
                    for v in [files, size, listing, head, tail] {
                        put_u64(&mut out, *v);
                    }
                }
                Content::Other(what) => {
                    out.push(2);
                    put_str(&mut out, what);
                }
                Content::Unreadable(why) => {
                    out.push(3);
                    put_str(&mut out, why);
                }
            }
        }
        out
    }

    /// Reads what [`Fingerprint::encode`] wrote; `None` for anything else (never panics).
    fn decode(bytes: &[u8]) -> Option<Fingerprint> {
        let mut r = Reader { bytes, at: 0 };
        let count = r.u64()?;
        let mut settings = Vec::new();
        for _ in 0..count {
            settings.push(Setting {
                name: r.string()?,
                value: r.string()?,
            });
        }
        let count = r.u64()?;
        let mut inputs = Vec::new();
        for _ in 0..count {
            let name = r.string()?;
            let content = match r.byte()? {
                0 => Content::File {
                    size: r.u64()?,
                    head: r.u64()?,
                    tail: r.u64()?,
                },
                1 => Content::Dir {
                    files: r.u64()?,
                    size: r.u64()?,
                    listing: r.u64()?,
                    head: r.u64()?,
                    tail: r.u64()?,
                },
                2 => Content::Other(r.string()?),
                3 => Content::Unreadable(r.string()?),
                _ => return None,
            };
            inputs.push(InputPrint { name, content });
        }
        (r.at == bytes.len()).then_some(Fingerprint { settings, inputs })
    }
}

/// How the same input differs between two processes, as a phrase after "input NAME".
fn content_difference(there: &Content, here: &Content) -> Option<String> {
    let other =
        |which: &str| format!("has other content there (same size; its {which} MiB differs)");
    match (there, here) {
        (a, b) if a == b => None,
        (
            Content::File {
                size: a,
                head: head_a,
                ..
            },
            Content::File {
                size: b,
                head: head_b,
                ..
            },
        ) => Some(if a != b {
            format!("is {} bytes there, {} here", grouped(*a), grouped(*b))
        } else if head_a != head_b {
            other("first")
        } else {
            other("last")
        }),
        (
            Content::Dir {
                files: files_a,
                size: size_a,
                listing: listing_a,
                head: head_a,
                ..
            },
            Content::Dir {
                files: files_b,
                size: size_b,
                listing: listing_b,
                head: head_b,
                ..
            },
        ) if (files_a, size_a) == (files_b, size_b) => Some(if listing_a != listing_b {
            "holds other file names or sizes there".to_string()
        } else if head_a != head_b {
            other("first")
        } else {
            other("last")
        }),
        (a, b) => Some(format!("is {} there, {} here", a.describe(), b.describe())),
    }
}

/// What `path` holds, hashed.
fn content(path: &Path) -> io::Result<Content> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        let size = meta.len();
        let mut file = std::fs::File::open(path)?;
        let head = xxh3_64(&read_at(&mut file, 0, size.min(MIB))?);
        let tail_len = size.min(MIB);
        let tail = xxh3_64(&read_at(&mut file, size - tail_len, tail_len)?);
        Ok(Content::File { size, head, tail })
    } else if meta.is_dir() {
        let files = walk(path)?;
        let size: u64 = files.iter().map(|f| f.1).sum();
        let mut listing = Xxh3::new();
        for (file, len) in &files {
            let relative = file.strip_prefix(path).unwrap_or(file);
            listing.update(relative.as_os_str().as_encoded_bytes());
            listing.update(&[0]);
            listing.update(&len.to_le_bytes());
        }
        let ends = size.min(MIB);
        Ok(Content::Dir {
            files: files.len() as u64,
            size,
            listing: listing.digest(),
            head: xxh3_64(&read_joined(&files, 0, ends)?),
            tail: xxh3_64(&read_joined(&files, size - ends, ends)?),
        })
    } else {
        Ok(Content::Other(
            "neither a regular file nor a directory".to_string(),
        ))
    }
}

/// `len` bytes of `file` from `start` (fewer when it is shorter now).
fn read_at(file: &mut std::fs::File, start: u64, len: u64) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `len` bytes from `start` of the files' bytes one after the other.
fn read_joined(files: &[(PathBuf, u64)], start: u64, len: u64) -> io::Result<Vec<u8>> {
    let end = start + len;
    let mut bytes = Vec::with_capacity(len as usize);
    let mut offset = 0;
    for (path, size) in files {
        let (from, to) = (start.max(offset), end.min(offset + size));
        if from < to {
            let mut file = std::fs::File::open(path)?;
            bytes.extend(read_at(&mut file, from - offset, to - from)?);
        }
        offset += size;
        if offset >= end {
            break;
        }
    }
    Ok(bytes)
}

/// The regular files under `root` with their sizes, in sorted order (as the reader walks a
/// directory input: symbolic links are not followed).
fn walk(root: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push((entry.path(), entry.metadata()?.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// An I/O error as a short reason (the same text on every machine for the same cause).
fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => "not found".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string(),
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads a peer's bytes; every read is checked against what is there.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Option<&[u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u64()?;
        self.take(len)
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
    }
}

/// One side's start-up message: who it is and its fingerprint.
fn write_hello(stream: &mut TcpStream, process: usize, fingerprint: &[u8]) -> io::Result<()> {
    let mut message = Vec::with_capacity(24 + fingerprint.len());
    message.extend_from_slice(MAGIC);
    put_u64(&mut message, process as u64);
    put_u64(&mut message, fingerprint.len() as u64);
    message.extend_from_slice(fingerprint);
    stream.write_all(&message)?;
    stream.flush()
}

/// The other side's start-up message: the process it says it is, and its fingerprint's bytes.
/// Reads exactly the message, so what follows on the stream is timely's.
fn read_hello(stream: &mut TcpStream) -> Result<(usize, Vec<u8>), String> {
    let mut head = [0u8; 24];
    stream.read_exact(&mut head).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            "it sent no start-up message".to_string()
        }
        io::ErrorKind::UnexpectedEof => "it closed the connection".to_string(),
        _ => e.to_string(),
    })?;
    if &head[..8] != MAGIC {
        return Err("it is not a neardup process of this version".to_string());
    }
    let word = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().expect("8 bytes"));
    let (process, len) = (word(8), word(16));
    if len > MAX_FRAME {
        return Err(format!("its start-up message is too large ({len} bytes)"));
    }
    let mut fingerprint = vec![0u8; len as usize];
    stream
        .read_exact(&mut fingerprint)
        .map_err(|e| format!("its start-up message broke off ({e})"))?;
    Ok((usize::try_from(process).unwrap_or(usize::MAX), fingerprint))
}

/// A connection made, and what came over it.
struct Met {
    /// The process that connected to us (or the one we reached), as it says.
    process: usize,
    stream: TcpStream,
    fingerprint: Vec<u8>,
}

/// Connects this process (`me`) to every other one of `addresses`, as timely would (each
/// process connects to the ones before it and accepts the ones after it), trading fingerprints
/// on every connection. Returns the connected sockets in process order (`None` at `me`) once
/// every peer's fingerprint equals `mine`; otherwise an error naming the first difference.
/// Waits for peers that have not started yet; prints nothing.
pub(super) fn connect(
    addresses: &[String],
    me: usize,
    mine: &Fingerprint,
) -> Result<Vec<Option<TcpStream>>, Error> {
    let processes = addresses.len();
    let encoded = Arc::new(mine.encode());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Result<Met, Error>>();

    // Listen first (the last process too, as timely does), so that a bad address or a second
    // process with this number on this machine is an error here and now.
    let listeners = addresses[me]
        .split_whitespace()
        .map(|address| {
            let listener = TcpListener::bind(address).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            });
            listener.map_err(|e| Error::Distributed(format!("cannot listen on {address}: {e}")))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut threads = Vec::new();
    if me + 1 < processes {
        let (tx, stop, encoded) = (tx.clone(), stop.clone(), encoded.clone());
        let expected = processes - me - 1;
        threads.push(std::thread::spawn(move || {
            accept(listeners, expected, me, &encoded, &stop, &tx)
        }));
    }
    if me > 0 {
        let (tx, stop, encoded) = (tx.clone(), stop.clone(), encoded.clone());
        let earlier = addresses[..me].to_vec();
        threads.push(std::thread::spawn(move || {
            reach(&earlier, me, &encoded, &stop, &tx)
        }));
    }
    drop(tx);

    let mut sockets: Vec<Option<TcpStream>> = (0..processes).map(|_| None).collect();
    let mut prints: Vec<Option<Fingerprint>> = (0..processes).map(|_| None).collect();
    let outcome = (|| {
        for _ in 1..processes {
            let met = rx.recv().map_err(|_| {
                Error::Distributed("the connections to the other processes broke off".to_string())
            })??;
            let p = met.process;
            if p >= processes || p == me || prints[p].is_some() {
                return Err(Error::Distributed(format!(
                    "a peer says it is process {p}, which is {}: the processes' host lists or process numbers differ",
                    if p == me {
                        "this process".to_string()
                    } else if p < processes {
                        "already connected".to_string()
                    } else {
                        format!("not among the {processes} processes")
                    }
                )));
            }
            let print = Fingerprint::decode(&met.fingerprint).ok_or_else(|| {
                Error::Distributed(format!(
                    "process {p} sent a start-up message this version of neardup cannot read"
                ))
            })?;
            // A peer that counts the processes differently may never let the rest connect.
            if print.setting(PROCESSES) != mine.setting(PROCESSES) {
                return Err(Error::Disagreement {
                    process: p,
                    difference: print.difference(mine).unwrap_or_default(),
                });
            }
            sockets[p] = Some(met.stream);
            prints[p] = Some(print);
        }
        Ok(())
    })();
    stop.store(true, Ordering::SeqCst);
    outcome?;
    for thread in threads {
        let _ = thread.join();
    }
    for (process, print) in prints.iter().enumerate() {
        if let Some(difference) = print.as_ref().and_then(|p| p.difference(mine)) {
            return Err(Error::Disagreement {
                process,
                difference,
            });
        }
    }
    for socket in sockets.iter().flatten() {
        socket
            .set_read_timeout(None)
            .and_then(|()| socket.set_write_timeout(None))
            .map_err(|e| Error::Distributed(format!("cannot set up a connection: {e}")))?;
    }
    Ok(sockets)
}

/// Accepts the `expected` later processes on `listeners`, answering each with this process's
/// fingerprint after reading theirs.
fn accept(
    listeners: Vec<TcpListener>,
    expected: usize,
    me: usize,
    encoded: &[u8],
    stop: &AtomicBool,
    tx: &mpsc::Sender<Result<Met, Error>>,
) {
    let mut accepted = 0;
    while accepted < expected && !stop.load(Ordering::SeqCst) {
        let mut any = false;
        for listener in &listeners {
            match listener.accept() {
                Ok((mut stream, from)) => {
                    any = true;
                    accepted += 1;
                    let met = prepare(&stream)
                        .and_then(|()| {
                            read_hello(&mut stream).map_err(|why| {
                                io::Error::other(format!("a peer connecting from {from}: {why}"))
                            })
                        })
                        .and_then(|(process, fingerprint)| {
                            write_hello(&mut stream, me, encoded)?;
                            Ok(Met {
                                process,
                                stream,
                                fingerprint,
                            })
                        })
                        .map_err(|e| Error::Distributed(e.to_string()));
                    let failed = met.is_err();
                    if tx.send(met).is_err() || failed {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    let _ = tx.send(Err(Error::Distributed(format!(
                        "cannot accept a connection: {e}"
                    ))));
                    return;
                }
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Connects to the earlier processes at `earlier`, in order, sending this process's
/// fingerprint and reading theirs.
fn reach(
    earlier: &[String],
    me: usize,
    encoded: &[u8],
    stop: &AtomicBool,
    tx: &mpsc::Sender<Result<Met, Error>>,
) {
    for (process, address) in earlier.iter().enumerate() {
        let mut stream = loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match TcpStream::connect(address.as_str()) {
                Ok(stream) => break stream,
                // Not started yet (or not listening yet): try again, as timely does.
                Err(_) => std::thread::sleep(RETRY),
            }
        };
        let met = prepare(&stream)
            .and_then(|()| write_hello(&mut stream, me, encoded))
            .map_err(|e| e.to_string())
            .and_then(|()| read_hello(&mut stream))
            .map_err(|why| Error::Distributed(format!("process {process} at {address}: {why}")))
            .and_then(|(says, fingerprint)| {
                if says == process {
                    Ok(Met {
                        process,
                        stream,
                        fingerprint,
                    })
                } else {
                    Err(Error::Distributed(format!(
                        "the process at {address} says it is process {says}, not {process}: the processes' host lists or process numbers differ"
                    )))
                }
            });
        let failed = met.is_err();
        if tx.send(met).is_err() || failed {
            return;
        }
    }
}

/// A connection as timely wants it (blocking, no delay), with a limit on the start-up exchange.
fn prepare(stream: &TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(ANSWER_TIME))?;
    stream.set_write_timeout(Some(ANSWER_TIME))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Content, Fingerprint, InputPrint, Setting, connect, grouped};
    use crate::error::Error;
    use crate::read::Input;

    fn print(threshold: &str, inputs: &[(&str, Content)]) -> Fingerprint {
        Fingerprint {
            settings: vec![
                Setting::new("threshold", threshold),
                Setting::new("processes", 2),
            ],
            inputs: inputs
                .iter()
                .map(|(name, content)| InputPrint {
                    name: name.to_string(),
                    content: content.clone(),
                })
                .collect(),
        }
    }

    fn file(size: u64, head: u64, tail: u64) -> Content {
        Content::File { size, head, tail }
    }

    #[test]
    fn differences_are_named_there_then_here() {
        let here = print("0.8", &[("r.jsonl", file(3_402_001, 1, 2))]);
        assert_eq!(here.difference(&here), None);
        let cases = [
            (
                print("0.9", &[("r.jsonl", file(3_402_001, 1, 2))]),
                "threshold is 0.9 there, 0.8 here",
            ),
            (
                print("0.8", &[("r.jsonl", file(3_457_120, 1, 2))]),
                "input r.jsonl is 3,457,120 bytes there, 3,402,001 here",
            ),
            (
                print("0.8", &[("r.jsonl", file(3_402_001, 7, 2))]),
                "input r.jsonl has other content there (same size; its first MiB differs)",
            ),
            (
                print("0.8", &[("r.jsonl", file(3_402_001, 1, 7))]),
                "input r.jsonl has other content there (same size; its last MiB differs)",
            ),
            (
                print("0.8", &[("s.jsonl", file(3_402_001, 1, 2))]),
                "input 1 is s.jsonl there, r.jsonl here",
            ),
            (print("0.8", &[]), "0 inputs there, 1 here"),
            (
                print(
                    "0.8",
                    &[("r.jsonl", Content::Unreadable("not found".to_string()))],
                ),
                "input r.jsonl is unreadable (not found) there, 3,402,001 bytes here",
            ),
        ];
        for (there, want) in cases {
            assert_eq!(there.difference(&here).as_deref(), Some(want));
        }
        let mut fewer = here.clone();
        fewer.settings.pop();
        assert_eq!(
            fewer.difference(&here).as_deref(),
            Some("processes is not set there")
        );
        assert_eq!(
            here.difference(&fewer).as_deref(),
            Some("processes is 2 there, not set here")
        );
    }

    #[test]
    fn inputs_are_hashed_at_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let big = vec![b'x'; 3 << 20];
        let input = [Input::Path(path.clone())];
        let fingerprint = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            Fingerprint::new(Vec::new(), &input)
        };
        let base = fingerprint(&big);
        let mut changed = big.clone();
        changed[10] = b'y';
        let first = fingerprint(&changed);
        changed[10] = b'x';
        changed[(3 << 20) - 10] = b'y';
        let last = fingerprint(&changed);
        changed[(3 << 20) - 10] = b'x';
        changed[(3 << 20) / 2] = b'y';
        let middle = fingerprint(&changed);
        assert!(first.difference(&base).unwrap().contains("first MiB"));
        assert!(last.difference(&base).unwrap().contains("last MiB"));
        // The middle is not read: size and ends are the check.
        assert_eq!(middle.difference(&base), None);
        let missing = Fingerprint::new(Vec::new(), &[Input::Path(dir.path().join("no"))]);
        assert_eq!(
            missing.inputs[0].content,
            Content::Unreadable("not found".to_string())
        );
    }

    #[test]
    fn directories_compare_names_sizes_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
            std::fs::write(d.join("one.txt"), "first document").unwrap();
            std::fs::write(d.join("sub/two.txt"), "second document").unwrap();
        }
        let of = |d: &std::path::Path| {
            let mut f = Fingerprint::new(Vec::new(), &[Input::Path(d.to_path_buf())]);
            f.inputs[0].name = "docs".to_string();
            f
        };
        assert_eq!(of(&b).difference(&of(&a)), None);
        std::fs::write(b.join("sub/two.txt"), "second documenT").unwrap();
        assert_eq!(
            of(&b).difference(&of(&a)).as_deref(),
            Some("input docs has other content there (same size; its first MiB differs)")
        );
        std::fs::rename(b.join("sub/two.txt"), b.join("sub/zwei.txt")).unwrap();
        assert_eq!(
            of(&b).difference(&of(&a)).as_deref(),
            Some("input docs holds other file names or sizes there")
        );
        std::fs::write(b.join("three.txt"), "third").unwrap();
        assert_eq!(
            of(&b).difference(&of(&a)).as_deref(),
            Some(
                "input docs is a directory of 3 files (34 bytes) there, a directory of 2 files (29 bytes) here"
            )
        );
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(3_457_120), "3,457,120");
    }

    /// Two processes on 127.0.0.1 connect and agree, or both name their difference.
    #[test]
    fn two_processes_agree_or_both_name_the_difference() {
        let ports: Vec<String> = (0..2)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().to_string()
            })
            .collect();
        let run = |thresholds: [&'static str; 2]| {
            let handles: Vec<_> = (0..2)
                .map(|me| {
                    let ports = ports.clone();
                    std::thread::spawn(move || {
                        connect(&ports, me, &print(thresholds[me], &[])).map(|s| s.len())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        };
        let agreed = run(["0.8", "0.8"]);
        assert!(agreed.iter().all(|r| matches!(r, Ok(2))), "{agreed:?}");
        let differ = run(["0.8", "0.9"]);
        let messages: Vec<String> = differ
            .into_iter()
            .map(|r| match r {
                Err(e @ Error::Disagreement { .. }) => e.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            messages,
            [
                "process 1 differs: threshold is 0.9 there, 0.8 here",
                "process 0 differs: threshold is 0.8 there, 0.9 here"
            ]
        );
    }

    fn arbitrary_print() -> impl Strategy<Value = Fingerprint> {
        let content = prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>())
                .prop_map(|(size, head, tail)| Content::File { size, head, tail }),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>()
            )
                .prop_map(|(files, size, listing, head, tail)| Content::Dir {
                    files,
                    size,
                    listing,
                    head,
                    tail
                }),
            ".*".prop_map(Content::Other),
            ".*".prop_map(Content::Unreadable),
        ];
        (
            proptest::collection::vec((".*", ".*"), 0..8),
            proptest::collection::vec((".*", content), 0..8),
        )
            .prop_map(|(settings, inputs)| Fingerprint {
                settings: settings
                    .into_iter()
                    .map(|(name, value)| Setting { name, value })
                    .collect(),
                inputs: inputs
                    .into_iter()
                    .map(|(name, content)| InputPrint { name, content })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn a_fingerprint_survives_the_wire(print in arbitrary_print()) {
            prop_assert_eq!(Fingerprint::decode(&print.encode()), Some(print));
        }

        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Fingerprint::decode(&bytes);
        }

        #[test]
        fn a_cut_or_extended_fingerprint_is_refused(print in arbitrary_print(), cut in 1usize..64) {
            let bytes = print.encode();
            let cut = cut.min(bytes.len());
            prop_assert_eq!(Fingerprint::decode(&bytes[..bytes.len() - cut]), None);
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert_eq!(Fingerprint::decode(&longer), None);
        }
    }
}
