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
//! What is agreed on is listed here ([`Dedup::agreement_settings`]); the fingerprint, its
//! comparison and its wire format are in [`crate::pipeline::fingerprint`], which never fails to decode
//! into something that can be compared: a frame that is not a fingerprint is reported as such.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::{ClusterConfig, DistributedOutputs};
use crate::error::Error;
use crate::pipeline::Dedup;
use crate::pipeline::fingerprint::{Fingerprint, PROCESSES, Setting, names_on, put_u64};
use crate::read::FormatChoice;

/// Opens every start-up message (and says which version of the exchange it is).
const MAGIC: &[u8; 8] = b"NDAGREE1";

/// The largest fingerprint accepted from a peer.
const MAX_FRAME: u64 = 64 << 20;

/// How long a connected peer may take to send its fingerprint (it sends it at once).
const ANSWER_TIME: Duration = Duration::from_secs(60);

/// How often an unreachable peer is tried again (it may not have started yet).
const RETRY: Duration = Duration::from_millis(200);

impl Dedup {
    /// Every setting that shapes the output of a distributed run or the steps its processes take
    /// together, by name and as text, for the start-up agreement. (Batch sizes, the memory
    /// budget, temporary and checkpoint directories are each process's own.)
    pub(super) fn agreement_settings(
        &self,
        format: FormatChoice,
        max_doc_bytes: usize,
        cluster: &ClusterConfig,
        outputs: &DistributedOutputs,
    ) -> Vec<Setting> {
        let mut settings = self.output_settings(format, max_doc_bytes);
        settings.splice(
            1..1,
            [
                Setting::new(PROCESSES, cluster.processes()),
                Setting::new("workers", cluster.workers),
            ],
        );
        settings.push(Setting::new(
            "outputs",
            names_on(&[
                (outputs.kept.is_some(), "kept"),
                (outputs.removed.is_some(), "removed"),
                (outputs.clusters.is_some(), "clusters"),
                (outputs.rejected.is_some(), "rejected"),
            ]),
        ));
        settings
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
    let outcome = meet_all(&rx, me, mine, &mut sockets, &mut prints);
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

/// Receives every peer's connection from `rx` into `sockets` and `prints` (by process), checking
/// that each says it is a process not met yet and sent a fingerprint that counts the processes
/// as `mine` does.
fn meet_all(
    rx: &mpsc::Receiver<Result<Met, Error>>,
    me: usize,
    mine: &Fingerprint,
    sockets: &mut [Option<TcpStream>],
    prints: &mut [Option<Fingerprint>],
) -> Result<(), Error> {
    let processes = sockets.len();
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
    use crate::error::Error;
    use crate::pipeline::distributed::agreement::connect;
    use crate::pipeline::fingerprint::{Fingerprint, Setting};

    fn print(threshold: &str) -> Fingerprint {
        let settings = vec![
            Setting::new("threshold", threshold),
            Setting::new("processes", 2),
        ];
        Fingerprint::new(settings, &[])
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
                        connect(&ports, me, &print(thresholds[me])).map(|s| s.len())
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
}
