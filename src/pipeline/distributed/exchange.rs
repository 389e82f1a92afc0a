//! How the workers of a run talk to each other: [`exchange`], one bulk-synchronous step in which
//! every worker sends items to the workers their keys route them to and receives what is routed
//! to it, and the flag that stops those steps when a peer process has gone away
//! ([`note_thread_panic`]).
//!
//! Every step of the run is a call to [`exchange`] made by every worker in the same order; the
//! items are small named structs (positions, hashes, signatures, ids), never texts.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::InputHandle;
use timely::dataflow::channels::pact::Exchange as ExchangePact;
use timely::dataflow::operators::Input as _;
use timely::dataflow::operators::generic::operator::Operator;
use timely::worker::Worker;

use crate::error::Error;

/// Set when one of timely's communication threads panics: a peer process died or went away.
/// Timely does not tell the workers, which would otherwise wait for it forever.
static PEER_FAILED: AtomicBool = AtomicBool::new(false);

/// Tells a distributed run that a thread panicked: call it from the program's panic hook (the
/// library installs none) with the panicking thread's name. When the thread is one of timely's
/// communication threads, a peer process died or went away, and the workers stop at their next
/// step instead of waiting for it forever.
pub fn note_thread_panic(thread_name: Option<&str>) {
    if thread_name.is_some_and(|name| name.starts_with("timely:")) {
        PEER_FAILED.store(true, Ordering::SeqCst);
    }
}

/// Set when a worker of this process stops with an error: the other workers stop at their next
/// step instead of waiting for it forever.
static WORKER_FAILED: AtomicBool = AtomicBool::new(false);

/// The messages of a worker that stopped because another one failed.
const PEER_FAILED_MESSAGE: &str = "a peer process failed or went away";
const OTHER_WORKER_MESSAGE: &str = "another worker of this process failed";

/// Forgets failed peers and workers of an earlier run in this process (before the workers start).
pub(super) fn forget_failed_peers() {
    PEER_FAILED.store(false, Ordering::SeqCst);
    WORKER_FAILED.store(false, Ordering::SeqCst);
}

/// Tells the other workers of this process that one of them stopped with an error.
pub(super) fn note_worker_failure() {
    WORKER_FAILED.store(true, Ordering::SeqCst);
}

/// Whether `error` only says that a worker stopped because another one failed.
pub(super) fn is_knock_on(error: &Error) -> bool {
    matches!(error, Error::Distributed(m) if m == PEER_FAILED_MESSAGE || m == OTHER_WORKER_MESSAGE)
}

/// Fails when a peer process has gone away or another worker of this process failed (checked
/// between batches of long local work too).
pub(super) fn peer_failed() -> Result<(), Error> {
    if WORKER_FAILED.load(Ordering::SeqCst) {
        return Err(Error::Distributed(OTHER_WORKER_MESSAGE.to_string()));
    }
    if PEER_FAILED.load(Ordering::SeqCst) {
        Err(Error::Distributed(PEER_FAILED_MESSAGE.to_string()))
    } else {
        Ok(())
    }
}

/// Sends each item to worker `route(item) mod workers`; returns what this worker received.
/// Every worker must call it, in the same order (a bulk-synchronous step). Fails when a peer
/// process has gone away.
pub(super) fn exchange<D: timely::ExchangeData + Clone>(
    worker: &mut Worker,
    data: Vec<D>,
    route: impl Fn(&D) -> u64 + 'static,
) -> Result<Vec<D>, Error> {
    let received: Rc<RefCell<Vec<D>>> = Rc::new(RefCell::new(Vec::new()));
    let store = received.clone();
    let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<D>>> = InputHandle::new();
    worker.dataflow::<u64, _, _>(|scope| {
        scope.input_from(&mut input).sink(
            ExchangePact::new(route),
            "Collect",
            move |(handle, _)| {
                handle.for_each(|_, data| store.borrow_mut().append(data));
            },
        );
    });
    for item in data {
        input.send(item);
    }
    drop(input);
    while worker.step_or_park(Some(Duration::from_millis(100))) {
        peer_failed()?;
    }
    peer_failed()?;
    Ok(received.take())
}

/// A step that carries nothing: returns once every worker has reached it.
pub(super) fn barrier(worker: &mut Worker) -> Result<(), Error> {
    exchange::<u8>(worker, Vec::new(), |_| 0).map(drop)
}
