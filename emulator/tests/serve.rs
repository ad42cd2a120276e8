//! Serving through the library API against a stand-in for vpcd on the loopback interface: the
//! protocol, 1-byte bodies that are no control message, reconnection (and the session ending
//! with each connection), reversed mode, shutdown, and slots that do not wait for each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vsc_emulator::vpcd::{self, Message};
use vsc_emulator::{
    CONTROL_FOLLOW_UP, Endpoint, NOT_AN_APDU, NULL_CARD_ATR, NullCard, POWER_OFF_FOLLOW_UP,
    ServeError, VirtualCard, serve, serve_slots,
};

const ATR: [u8; 4] = [0x3B, 0x00, 0x12, 0x34];
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    PowerOn,
    PowerOff,
    Reset,
    Apdu(Vec<u8>),
}

/// Answers each APDU with its own bytes and `9000`, and records what reaches it.
#[derive(Debug, Clone, Default)]
struct RecordingCard {
    events: Arc<Mutex<Vec<Event>>>,
}

impl RecordingCard {
    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

impl VirtualCard for RecordingCard {
    fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Apdu(command.to_vec()));
        response.extend_from_slice(command);
        response.extend_from_slice(&[0x90, 0x00]);
    }

    fn reset(&mut self) {
        self.events.lock().unwrap().push(Event::Reset);
    }

    fn power_on(&mut self) {
        self.events.lock().unwrap().push(Event::PowerOn);
    }

    fn power_off(&mut self) {
        self.events.lock().unwrap().push(Event::PowerOff);
    }
}

/// The vpcd end of a connection. Like Debian's vpcd, it sends the length and the body of a
/// frame in two writes.
struct FakeVpcd(TcpStream);

impl FakeVpcd {
    async fn send(&mut self, message: Message<'_>) {
        let mut frame = Vec::new();
        message.encode(&mut frame).unwrap();
        self.0.write_all(&frame[..2]).await.unwrap();
        self.0.write_all(&frame[2..]).await.unwrap();
    }

    /// The next frame's body; a test fails rather than hangs when none comes.
    async fn receive(&mut self) -> Vec<u8> {
        tokio::time::timeout(LIMIT, async {
            let mut len = [0; 2];
            self.0.read_exact(&mut len).await.unwrap();
            let mut frame = len.to_vec();
            frame.resize(2 + usize::from(u16::from_be_bytes(len)), 0);
            self.0.read_exact(&mut frame[2..]).await.unwrap();
            vpcd::decode(&frame).unwrap().to_vec()
        })
        .await
        .expect("an answer within the limit")
    }

    async fn exchange(&mut self, message: Message<'_>) -> Vec<u8> {
        self.send(message).await;
        self.receive().await
    }

    /// Sends any body, as vpcd passes an application's command on.
    async fn exchange_body(&mut self, body: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        vpcd::encode(body, &mut frame).unwrap();
        self.0.write_all(&frame).await.unwrap();
        self.receive().await
    }

    /// True once the other end has closed the connection.
    async fn closed(&mut self) -> bool {
        let mut byte = [0];
        matches!(self.0.read(&mut byte).await, Ok(0) | Err(_))
    }
}

async fn vpcd_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn accept(listener: &TcpListener) -> FakeVpcd {
    let (stream, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .expect("the slot connects")
        .unwrap();
    FakeVpcd(stream)
}

/// A port nobody listens on (bound and released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve_in_background<C: VirtualCard + Send + 'static>(
    slots: Vec<(Endpoint, C)>,
) -> (oneshot::Sender<()>, JoinHandle<Result<Vec<C>, ServeError>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_slots(slots, async {
        let _ = stopped.await;
    }));
    (stop, server)
}

#[tokio::test]
async fn answers_vpcd_and_passes_power_and_reset_to_the_card() {
    let (listener, addr) = vpcd_listener().await;
    let card = RecordingCard::default();
    let (stop, server) = serve_in_background(vec![(Endpoint::Connect(addr), card.clone())]);
    let mut vpcd = accept(&listener).await;

    // As vpcd does: a power-on or reset is followed at once by GET ATR.
    assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);
    vpcd.send(Message::PowerOn).await;
    assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);
    let select = [0x00, 0xA4, 0x04, 0x00, 0x02, 0xF0, 0x01];
    assert_eq!(
        vpcd.exchange(Message::Apdu(&select)).await,
        [&select[..], &[0x90, 0x00]].concat()
    );
    vpcd.send(Message::Reset).await;
    assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);
    vpcd.send(Message::PowerOff).await;
    assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);

    stop.send(()).unwrap();
    let cards = server.await.unwrap().unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(
        card.events(),
        [
            Event::PowerOn,
            Event::Apdu(select.to_vec()),
            Event::Reset,
            Event::PowerOff,
            // The shutdown ends the session too.
            Event::PowerOff,
        ]
    );
    assert!(vpcd.closed().await, "shutdown closes the connection");
}

/// vpcd passes an application's 1-byte command on as it is: before, `03` got no answer at all
/// (SCardTransmit hung for 15 s) and `01` powered the card on and got none either.
#[tokio::test]
async fn one_byte_commands_get_6700_and_leave_the_card_alone() {
    let (listener, addr) = vpcd_listener().await;
    let card = RecordingCard::default();
    let (stop, server) = serve_in_background(vec![(Endpoint::Connect(addr), card.clone())]);
    let mut vpcd = accept(&listener).await;
    vpcd.send(Message::PowerOn).await;
    assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);

    for body in [&[0x03][..], &[0xFF], &[]] {
        let started = Instant::now();
        assert_eq!(vpcd.exchange_body(body).await, NOT_AN_APDU, "{body:02X?}");
        assert!(started.elapsed() < CONTROL_FOLLOW_UP, "at once");
    }
    for body in [[0x01], [0x02]] {
        let started = Instant::now();
        assert_eq!(vpcd.exchange_body(&body).await, NOT_AN_APDU, "{body:02X?}");
        let took = started.elapsed();
        assert!(
            took >= CONTROL_FOLLOW_UP && took < Duration::from_secs(1),
            "{body:02X?} answered after {took:?}"
        );
    }
    // The reader works on, in step.
    assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);
    assert_eq!(
        vpcd.exchange(Message::Apdu(&[0x00, 0xB0])).await,
        [0x00, 0xB0, 0x90, 0x00]
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert_eq!(
        card.events(),
        [
            Event::PowerOn,
            Event::Apdu(vec![0x00, 0xB0]),
            Event::PowerOff
        ],
        "neither 01 nor 02 reached the card"
    );
}

/// A power-off that nothing follows may have been an application's `00`, waiting for an answer:
/// it gets one, and the connection ends, so that vpcd and the slot cannot fall out of step
/// whichever it was.
#[tokio::test]
async fn a_lone_power_off_is_answered_and_ends_the_connection() {
    let (listener, addr) = vpcd_listener().await;
    let card = RecordingCard::default();
    let (stop, server) = serve_in_background(vec![(Endpoint::Connect(addr), card.clone())]);
    let mut vpcd = accept(&listener).await;
    vpcd.send(Message::PowerOn).await;
    assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);
    let started = Instant::now();
    assert_eq!(vpcd.exchange(Message::PowerOff).await, NOT_AN_APDU);
    let took = started.elapsed();
    assert!(
        took >= POWER_OFF_FOLLOW_UP && took < Duration::from_secs(1),
        "{took:?}"
    );
    assert!(vpcd.closed().await);
    // The slot comes back, and serves.
    let mut vpcd = accept(&listener).await;
    assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert_eq!(card.events()[..2], [Event::PowerOn, Event::PowerOff]);
}

/// A frame still arriving when a control message's time is up is what follows it.
#[tokio::test]
async fn a_get_atr_arriving_slowly_still_completes_a_power_on() {
    let (listener, addr) = vpcd_listener().await;
    let card = RecordingCard::default();
    let (stop, server) = serve_in_background(vec![(Endpoint::Connect(addr), card.clone())]);
    let mut vpcd = accept(&listener).await;
    vpcd.send(Message::PowerOn).await;
    vpcd.0.write_all(&[0x00]).await.unwrap();
    tokio::time::sleep(CONTROL_FOLLOW_UP * 2).await;
    vpcd.0.write_all(&[0x01, 0x04]).await.unwrap();
    assert_eq!(vpcd.receive().await, ATR);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert_eq!(card.events()[0], Event::PowerOn);
}

#[tokio::test]
async fn survives_malformed_frames() {
    let (listener, addr) = vpcd_listener().await;
    let (stop, server) = serve_in_background(vec![(Endpoint::Connect(addr), NullCard)]);
    let mut vpcd = accept(&listener).await;
    // An empty frame and an unknown control byte, answered.
    vpcd.0.write_all(&[0, 0, 0, 1, 0x07]).await.unwrap();
    assert_eq!(vpcd.receive().await, NOT_AN_APDU);
    assert_eq!(vpcd.receive().await, NOT_AN_APDU);
    assert_eq!(vpcd.exchange(Message::GetAtr).await, NULL_CARD_ATR);
    assert_eq!(
        vpcd.exchange(Message::Apdu(&[0x00, 0xB0, 0x00, 0x00]))
            .await,
        [0x90, 0x00]
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn reconnects_when_vpcd_drops_and_keeps_the_card() {
    let (listener, addr) = vpcd_listener().await;
    let card = RecordingCard::default();
    let (stop, server) = serve_in_background(vec![(Endpoint::Connect(addr), card.clone())]);

    let mut vpcd = accept(&listener).await;
    assert_eq!(
        vpcd.exchange(Message::Apdu(&[0x00, 0x01])).await,
        [0, 1, 0x90, 0]
    );
    drop(vpcd);
    // vpcd goes away altogether (pcscd stopped), then comes back on the same port.
    drop(listener);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut vpcd = accept(&listener).await;
    assert_eq!(
        vpcd.exchange(Message::Apdu(&[0x00, 0x02])).await,
        [0, 2, 0x90, 0]
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // The card's state lives on; its session ended with the connection.
    assert_eq!(
        card.events(),
        [
            Event::Apdu(vec![0, 1]),
            Event::PowerOff,
            Event::Apdu(vec![0, 2]),
            Event::PowerOff
        ]
    );
}

#[tokio::test]
async fn waits_for_vpcd_to_appear() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (stop, server) = serve_in_background(vec![(Endpoint::Connect(addr), NullCard)]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut vpcd = accept(&listener).await;
    assert_eq!(vpcd.exchange(Message::GetAtr).await, NULL_CARD_ATR);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn reversed_mode_accepts_vpcd_again_and_again() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let card = RecordingCard::default();
    let (stop, server) = serve_in_background(vec![(Endpoint::Listen(addr), card.clone())]);
    for round in 0..3u8 {
        let mut vpcd = FakeVpcd(connect_with_retry(addr).await);
        assert_eq!(vpcd.exchange(Message::GetAtr).await, ATR);
        assert_eq!(
            vpcd.exchange(Message::Apdu(&[0x80, round])).await,
            [0x80, round, 0x90, 0x00]
        );
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // Each connection is a session: it ends with a power-off (the last one's may come from the
    // shutdown, or from both the close and the shutdown).
    let mut events = card.events();
    events.dedup();
    let expected: Vec<Event> = (0..3u8)
        .flat_map(|round| [Event::Apdu(vec![0x80, round]), Event::PowerOff])
        .collect();
    assert_eq!(events, expected);
}

async fn connect_with_retry(addr: SocketAddr) -> TcpStream {
    for _ in 0..100 {
        if let Ok(stream) = TcpStream::connect(addr).await {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nothing listens on {addr}");
}

#[tokio::test]
async fn a_taken_listen_port_is_an_error_at_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let error = serve(NullCard, Endpoint::Listen(addr), std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(error, ServeError::Listen { addr: a, .. } if a == addr));
    let source = std::error::Error::source(&error).expect("the cause is kept");
    assert_eq!(
        source
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind),
        Some(std::io::ErrorKind::AddrInUse)
    );
    assert_eq!(error.to_string(), format!("cannot listen on {addr}"));
}

#[tokio::test]
async fn an_address_of_another_machine_cannot_be_listened_on() {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine.
    let addr = SocketAddr::from(([192, 0, 2, 1], 35963));
    let error = serve(NullCard, Endpoint::Listen(addr), std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(error, ServeError::Listen { .. }), "{error}");
}

/// Blocks in `transmit` until told to go on, like a card persisting its image on a slow disk.
struct SlowCard {
    entered: mpsc::Sender<()>,
    go_on: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl VirtualCard for SlowCard {
    fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }

    fn transmit(&mut self, _command: &[u8], response: &mut Vec<u8>) {
        self.entered.send(()).unwrap();
        self.go_on.lock().unwrap().recv().unwrap();
        response.extend_from_slice(&[0x90, 0x00]);
    }

    fn reset(&mut self) {}
}

#[tokio::test]
async fn a_slow_card_does_not_hold_up_another_slot() {
    let (slow_listener, slow_addr) = vpcd_listener().await;
    let (fast_listener, fast_addr) = vpcd_listener().await;
    let (entered_tx, entered) = mpsc::channel();
    let (go_on, go_on_rx) = mpsc::channel();
    let slow: Box<dyn VirtualCard + Send> = Box::new(SlowCard {
        entered: entered_tx,
        go_on: Arc::new(Mutex::new(go_on_rx)),
    });
    let fast: Box<dyn VirtualCard + Send> = Box::new(NullCard);
    let (stop, server) = serve_in_background(vec![
        (Endpoint::Connect(slow_addr), slow),
        (Endpoint::Connect(fast_addr), fast),
    ]);
    let mut slow_vpcd = accept(&slow_listener).await;
    let mut fast_vpcd = accept(&fast_listener).await;

    slow_vpcd
        .send(Message::Apdu(&[0x00, 0xD6, 0x00, 0x00]))
        .await;
    tokio::task::spawn_blocking(move || entered.recv().unwrap())
        .await
        .unwrap();
    // The slow card is inside transmit; the other slot answers all the same.
    for _ in 0..10 {
        let answer = tokio::time::timeout(LIMIT, fast_vpcd.exchange(Message::Apdu(&[0, 0xB0])))
            .await
            .expect("the other slot answers while one card is busy");
        assert_eq!(answer, [0x90, 0x00]);
    }
    go_on.send(()).unwrap();
    assert_eq!(slow_vpcd.receive().await, [0x90, 0x00]);

    stop.send(()).unwrap();
    assert_eq!(server.await.unwrap().unwrap().len(), 2);
}

/// Panics on its first APDU.
struct PanickingCard;

impl VirtualCard for PanickingCard {
    fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }

    fn transmit(&mut self, _command: &[u8], _response: &mut Vec<u8>) {
        panic!("the card failed");
    }

    fn reset(&mut self) {}
}

#[tokio::test]
async fn a_panicking_card_stops_every_slot_with_an_error() {
    let (listener, addr) = vpcd_listener().await;
    let (other_listener, other_addr) = vpcd_listener().await;
    let panicking: Box<dyn VirtualCard + Send> = Box::new(PanickingCard);
    let other: Box<dyn VirtualCard + Send> = Box::new(NullCard);
    let (_stop, server) = serve_in_background(vec![
        (Endpoint::Connect(addr), panicking),
        (Endpoint::Connect(other_addr), other),
    ]);
    let mut vpcd = accept(&listener).await;
    let mut other_vpcd = accept(&other_listener).await;
    vpcd.send(Message::Apdu(&[0x00, 0x00])).await;
    let outcome = tokio::time::timeout(LIMIT, server)
        .await
        .expect("serving ends")
        .unwrap();
    let Err(error) = outcome else {
        panic!("serving ended without an error")
    };
    assert!(matches!(error, ServeError::Panicked { slot: 0 }), "{error}");
    assert!(other_vpcd.closed().await, "the other slot stopped too");
}
