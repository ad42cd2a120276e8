//! Serving cards in slots until the caller says stop.
//!
//! Each slot runs on a thread of its own with a single-threaded tokio runtime: the connection
//! to vpcd and the card's `transmit` share that thread, so an APDU crosses no thread boundary,
//! and a card that takes its time (persisting its image) holds up no other slot.

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
use crate::slot::serve_connection;
use crate::vpcd::Connection;

/// vpcd's port for its first slot; slot n is at this port + n.
pub const VPCD_PORT: u16 = 35963;

/// How long one try to connect to vpcd may take (it is local: a refusal is immediate).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Serves each card at its endpoint, slot 0 first, until `shutdown` completes; then stops every
/// slot and hands the cards back in the same order.
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
    let (stop, stop_rx) = watch::channel(false);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let mut cards: Vec<Option<C>> = slots.iter().map(|_| None).collect();
    let mut failure = None;
    for (index, (endpoint, card)) in slots.into_iter().enumerate() {
        if let Err(error) = start_slot(index, card, endpoint, stop_rx.clone(), done_tx.clone()) {
            failure = Some(error);
            break;
        }
    }
    drop(done_tx);

    let mut record =
        |index: usize, end: Result<C, ServeError>, failure: &mut Option<ServeError>| match end {
            Ok(card) => cards[index] = Some(card),
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
    tracing::debug!(slot = index, "slot stopped");
    Ok(card)
}

/// Connects to vpcd and serves it, again and again, backing off while vpcd is not there.
async fn connect_forever<C: VirtualCard>(
    slot: usize,
    card: &mut C,
    addr: SocketAddr,
    reply: &mut Vec<u8>,
) {
    let mut backoff = Backoff::new();
    loop {
        let connected = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        {
            Ok(connected) => connected,
            Err(elapsed) => Err(io::Error::new(io::ErrorKind::TimedOut, elapsed)),
        };
        match connected.and_then(Connection::new) {
            Ok(mut connection) => {
                backoff.succeeded();
                tracing::info!(slot, %addr, "connected to vpcd");
                match serve_connection(&mut connection, card, slot, reply).await {
                    Ok(()) => tracing::info!(slot, %addr, "vpcd closed the connection"),
                    Err(error) => tracing::warn!(slot, %addr, %error, "connection to vpcd lost"),
                }
            }
            Err(error) if backoff.failures() == 0 => {
                tracing::info!(slot, %addr, %error, "vpcd not reachable yet; retrying");
            }
            Err(error) => tracing::debug!(slot, %addr, %error, "vpcd still not reachable"),
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
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(slot, %addr, "waiting for vpcd");
    }
    loop {
        match listener
            .accept()
            .await
            .and_then(|(stream, peer)| Connection::new(stream).map(|connection| (connection, peer)))
        {
            Ok((mut connection, peer)) => {
                backoff.succeeded();
                tracing::info!(slot, %peer, "vpcd connected");
                match serve_connection(&mut connection, card, slot, reply).await {
                    Ok(()) => tracing::info!(slot, %peer, "vpcd closed the connection"),
                    Err(error) => tracing::warn!(slot, %peer, %error, "connection to vpcd lost"),
                }
            }
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(slot, %error, "cannot accept a connection");
                tokio::time::sleep(backoff.failed()).await;
            }
        }
    }
}
