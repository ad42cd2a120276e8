//! Serving cards in slots until the caller says stop.
//!
//! Each slot runs on a thread of its own with a single-threaded tokio runtime: the connection
//! to vpcd and the card's `transmit` share that thread, so an APDU crosses no thread boundary,
//! and a card that takes its time (persisting its image) holds up no other slot.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::backoff::Backoff;
use crate::card::VirtualCard;
use crate::slot::{End, Peer, serve_session};
use crate::vpcd::Connection;

/// vpcd's port for its first slot; slot n is at this port + n.
pub const VPCD_PORT: u16 = 35963;

/// How long one try to connect to vpcd may take (it is local: a refusal is immediate).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After this long without reaching vpcd (or, listening, without vpcd coming), the slot says
/// what is probably wrong.
pub const NO_VPCD_AFTER: Duration = Duration::from_secs(3);

/// Where a slot meets vpcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// vpcd listens (its default, `DEVICENAME /dev/null:PORT`): the slot connects, and connects
    /// again with backoff while vpcd is not there or after it drops the connection.
    Connect(SocketAddr),
    /// Reversed: the slot listens and vpcd connects (a reader configured with
    /// `DEVICENAME HOST:PORT`).
    Listen(SocketAddr),
}

impl Endpoint {
    /// The default: connect to vpcd's first slot on this machine.
    pub fn vpcd_default() -> Self {
        Endpoint::Connect(SocketAddr::from(([127, 0, 0, 1], VPCD_PORT)))
    }

    /// The endpoint of slot `index`, counting this one as slot 0: the port moves up by
    /// `index`, as vpcd's slots do. `None` past the last port.
    pub fn slot(self, index: usize) -> Option<Endpoint> {
        let shift = |mut addr: SocketAddr| {
            let port = u16::try_from(index).ok()?.checked_add(addr.port())?;
            addr.set_port(port);
            Some(addr)
        };
        match self {
            Endpoint::Connect(addr) => shift(addr).map(Endpoint::Connect),
            Endpoint::Listen(addr) => shift(addr).map(Endpoint::Listen),
        }
    }

    /// The address: vpcd's (connect) or the slot's own (listen).
    pub fn addr(self) -> SocketAddr {
        match self {
            Endpoint::Connect(addr) | Endpoint::Listen(addr) => addr,
        }
    }
}

impl fmt::Display for Endpoint {
    /// `vpcd at 127.0.0.1:35963`, or `listening on 127.0.0.1:36063 for vpcd`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Connect(addr) => write!(f, "vpcd at {addr}"),
            Endpoint::Listen(addr) => write!(f, "listening on {addr} for vpcd"),
        }
    }
}

/// Why serving stopped other than by the caller's shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listening slot could not bind its address (taken, or not this machine's).
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The slot's thread or runtime could not be started.
    #[error("cannot start slot {slot}")]
    Start {
        /// The slot.
        slot: usize,
        /// Why.
        source: io::Error,
    },
    /// The slot's card panicked; the other slots were stopped.
    #[error("slot {slot} stopped: its card panicked")]
    Panicked {
        /// The slot.
        slot: usize,
    },
}

/// Serves `card` at `endpoint` until `shutdown` completes, then hands the card back.
pub async fn serve<C>(
    card: C,
    endpoint: Endpoint,
    shutdown: impl Future<Output = ()>,
) -> Result<C, ServeError>
where
    C: VirtualCard + Send + 'static,
{
    let mut cards = serve_slots(vec![(endpoint, card)], shutdown).await?;
    cards.pop().ok_or(ServeError::Panicked { slot: 0 })
}

/// Serves each card at its endpoint, numbering the slots from 0, until `shutdown` completes;
/// then stops every slot and hands the cards back in the same order.
///
/// Listening slots bind before this returns its first `Poll::Pending`, so a taken port is an
/// error at once. If one slot's card panics, every slot stops and the error says which.
/// Dropping the future stops the slots too.
pub async fn serve_slots<C>(
    slots: Vec<(Endpoint, C)>,
    shutdown: impl Future<Output = ()>,
) -> Result<Vec<C>, ServeError>
where
    C: VirtualCard + Send + 'static,
{
    serve_slots_from(0, slots, shutdown).await
}

/// [`serve_slots`], numbering the slots from `first` in messages and errors: the numbers a user
/// gave (`--slot 1` is vpcd's second port, "Virtual PCD 00 01").
pub async fn serve_slots_from<C>(
    first: usize,
    slots: Vec<(Endpoint, C)>,
    shutdown: impl Future<Output = ()>,
) -> Result<Vec<C>, ServeError>
where
    C: VirtualCard + Send + 'static,
{
    let (stop, stop_rx) = watch::channel(false);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let mut cards: Vec<Option<C>> = slots.iter().map(|_| None).collect();
    let mut failure = None;
    for (index, (endpoint, card)) in slots.into_iter().enumerate() {
        let slot = first + index;
        if let Err(error) = start_slot(slot, card, endpoint, stop_rx.clone(), done_tx.clone()) {
            failure = Some(error);
            break;
        }
    }
    drop(done_tx);

    let mut record =
        |slot: usize, end: Result<C, ServeError>, failure: &mut Option<ServeError>| match end {
            Ok(card) => {
                if let Some(place) = cards.get_mut(slot - first) {
                    *place = Some(card);
                }
            }
            Err(error) => {
                failure.get_or_insert(error);
            }
        };
    if failure.is_none() {
        tokio::select! {
            () = shutdown => {}
            Some((index, end)) = done.recv() => record(index, end, &mut failure),
        }
    }
    stop.send_replace(true);
    while let Some((index, end)) = done.recv().await {
        record(index, end, &mut failure);
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(cards.into_iter().flatten().collect()),
    }
}

/// A slot's endpoint, bound (listening) or not yet reached (connecting).
enum Bound {
    Connect(SocketAddr),
    Listen(SocketAddr, std::net::TcpListener),
}

/// How a slot ended: with its card, or with the error that stopped it.
type SlotEnd<C> = (usize, Result<C, ServeError>);

/// Starts slot `index` on its own thread; it reports on `done` when it ends.
///
/// A listening slot binds here, so that a taken address is an error before anything starts.
fn start_slot<C>(
    index: usize,
    card: C,
    endpoint: Endpoint,
    stop: watch::Receiver<bool>,
    done: mpsc::UnboundedSender<SlotEnd<C>>,
) -> Result<(), ServeError>
where
    C: VirtualCard + Send + 'static,
{
    let bound = match endpoint {
        Endpoint::Connect(addr) => Bound::Connect(addr),
        Endpoint::Listen(addr) => Bound::Listen(addr, bind(addr)?),
    };
    thread::Builder::new()
        .name(format!("vsc-slot-{index}"))
        .spawn(move || {
            let end = run_slot_thread(index, card, bound, stop);
            let _ = done.send((index, end));
        })
        .map(drop)
        .map_err(|source| ServeError::Start {
            slot: index,
            source,
        })
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let listen_error = |source| ServeError::Listen { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    Ok(listener)
}

/// The body of a slot's thread: its own single-threaded runtime, serving until told to stop.
fn run_slot_thread<C: VirtualCard>(
    index: usize,
    card: C,
    endpoint: Bound,
    stop: watch::Receiver<bool>,
) -> Result<C, ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Start {
            slot: index,
            source,
        })?;
    let end = panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(run_slot(index, card, endpoint, stop))
    }));
    // The sockets close with the runtime, before the caller gets the card back.
    drop(runtime);
    end.unwrap_or(Err(ServeError::Panicked { slot: index }))
}

async fn run_slot<C: VirtualCard>(
    index: usize,
    mut card: C,
    endpoint: Bound,
    mut stop: watch::Receiver<bool>,
) -> Result<C, ServeError> {
    enum Ready {
        Connect(SocketAddr),
        Listen(TcpListener),
    }
    let ready = match endpoint {
        Bound::Connect(addr) => Ready::Connect(addr),
        Bound::Listen(addr, listener) => Ready::Listen(
            TcpListener::from_std(listener)
                .map_err(|source| ServeError::Listen { addr, source })?,
        ),
    };
    let mut reply = Vec::with_capacity(1024);
    let serving = async {
        match ready {
            Ready::Connect(addr) => connect_forever(index, &mut card, addr, &mut reply).await,
            Ready::Listen(listener) => accept_forever(index, &mut card, listener, &mut reply).await,
        }
    };
    tokio::select! {
        // A dropped sender means the server is gone: stop as well.
        _ = stop.wait_for(|stop| *stop) => {}
        () = serving => {}
    }
    // A session cut short by the shutdown ends like any other.
    card.power_off();
    tracing::debug!("slot {index}: stopped");
    Ok(card)
}

/// Logs how a session ended.
fn log_end(peer: Peer, end: Result<End, crate::vpcd::ConnectionError>) {
    let Peer { slot, addr } = peer;
    match end {
        Ok(End::Closed) => tracing::info!("slot {slot}: vpcd at {addr} closed the connection"),
        Ok(End::LonePowerOff) => {}
        Err(error) => tracing::warn!("slot {slot}: connection to vpcd at {addr} lost: {error}"),
    }
}

/// Connects to vpcd and serves it, again and again, backing off while vpcd is not there.
async fn connect_forever<C: VirtualCard>(
    slot: usize,
    card: &mut C,
    addr: SocketAddr,
    reply: &mut Vec<u8>,
) {
    let mut backoff = Backoff::new();
    // Since when vpcd has not been reached, and whether the user was told.
    let mut unreachable: Option<(tokio::time::Instant, bool)> = None;
    loop {
        let connected = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        {
            Ok(connected) => connected,
            Err(elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, elapsed)),
        };
        match connected.and_then(Connection::new) {
            Ok(mut connection) => {
                backoff.succeeded();
                unreachable = None;
                tracing::info!("slot {slot}: connected to vpcd at {addr}");
                let peer = Peer { slot, addr };
                log_end(
                    peer,
                    serve_session(&mut connection, card, peer, reply).await,
                );
            }
            Err(error) => {
                let (since, told) =
                    unreachable.get_or_insert_with(|| (tokio::time::Instant::now(), false));
                if !*told && since.elapsed() >= NO_VPCD_AFTER {
                    *told = true;
                    tracing::warn!(
                        "slot {slot}: no vpcd reader on {addr} ({error}): is pcscd running with \
                         the vpcd driver (Debian package vsmartcard-vpcd)? See `vsc-emulator \
                         serve --help`, Troubleshooting. Still trying"
                    );
                } else {
                    tracing::debug!("slot {slot}: vpcd at {addr} not reachable: {error}");
                }
            }
        }
        tokio::time::sleep(backoff.failed()).await;
    }
}

/// Accepts vpcd's connections one after another and serves each.
async fn accept_forever<C: VirtualCard>(
    slot: usize,
    card: &mut C,
    listener: TcpListener,
    reply: &mut Vec<u8>,
) {
    let mut backoff = Backoff::new();
    let local = listener.local_addr().ok();
    if let Some(addr) = local {
        tracing::info!("slot {slot}: listening on {addr} for vpcd");
    }
    let mut ever_connected = false;
    loop {
        let accepted = if ever_connected {
            listener.accept().await
        } else {
            match tokio::time::timeout(NO_VPCD_AFTER, listener.accept()).await {
                Ok(accepted) => accepted,
                Err(_) => {
                    ever_connected = true;
                    if let Some(addr) = local {
                        tracing::warn!(
                            "slot {slot}: no vpcd has connected to {addr} in {} s: is pcscd \
                             running with a reader entry `DEVICENAME {addr}` (reversed vpcd)?",
                            NO_VPCD_AFTER.as_secs()
                        );
                    }
                    continue;
                }
            }
        };
        match accepted
            .and_then(|(stream, peer)| Connection::new(stream).map(|connection| (connection, peer)))
        {
            Ok((mut connection, addr)) => {
                backoff.succeeded();
                ever_connected = true;
                tracing::info!("slot {slot}: vpcd connected from {addr}");
                let peer = Peer { slot, addr };
                log_end(
                    peer,
                    serve_session(&mut connection, card, peer, reply).await,
                );
            }
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("slot {slot}: cannot accept a connection: {error}");
                tokio::time::sleep(backoff.failed()).await;
            }
        }
    }
}
