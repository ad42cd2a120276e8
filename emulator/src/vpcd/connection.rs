//! A connection to vpcd: buffered frame reads, one write per reply, and the socket options
//! that keep an APDU round trip near 0.1 ms instead of 48 ms.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::frame::{self, FrameError, HEADER_LEN, Message};

/// The smallest free space offered to a read: a typical frame arrives in one read.
const READ_CHUNK: usize = 4096;

/// How long a frame may take to arrive once its first byte is here. vpcd sends a frame in two
/// writes microseconds apart; a peer that trickles a frame in slower than this is dropped, so
/// that it cannot hold its slot for ever.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection to vpcd ended other than by a clean close.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// vpcd closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame ({0} bytes of it received)")]
    ClosedMidFrame(usize),
    /// A frame began but did not end within [`FRAME_TIMEOUT`].
    #[error("a frame did not arrive whole within {limit} s ({0} bytes of it received)", limit = FRAME_TIMEOUT.as_secs())]
    Stalled(usize),
    /// A reply that does not fit a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One TCP connection to vpcd, in either direction (the card side connected, or vpcd did).
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// Received bytes; the front `consumed` bytes belong to the message last handed out.
    buffer: Vec<u8>,
    consumed: usize,
    /// When the first bytes of the frame being received arrived.
    frame_started: Option<Instant>,
    write_buffer: Vec<u8>,
}

impl Connection {
    /// Wraps a connected stream and sets its socket options.
    ///
    /// Debian's vpcd sends a frame's length and its body in two `send()` calls with Nagle's
    /// algorithm on; unless this side acknowledges at once, the body waits for the delayed-ACK
    /// timer (about 40 ms). So TCP_NODELAY for our own replies, and TCP_QUICKACK, which Linux
    /// clears again after a while, re-armed after every read.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        set_quickack(&stream)?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(READ_CHUNK),
            consumed: 0,
            frame_started: None,
            write_buffer: Vec::with_capacity(READ_CHUNK),
        })
    }

    /// The next message from vpcd, or `None` when vpcd closed the connection cleanly (between
    /// frames).
    ///
    /// Every frame is a message, those vpcd never sends included ([`Message::Unknown`]). Cancel
    /// safe: bytes already read stay buffered, and a frame's time limit keeps running.
    pub async fn read_message(&mut self) -> Result<Option<Message<'_>>, ConnectionError> {
        self.discard_consumed();
        let Some(frame_len) = self.read_frame().await? else {
            return Ok(None);
        };
        self.consumed = frame_len;
        Ok(Some(Message::from_body(
            &self.buffer[HEADER_LEN..frame_len],
        )))
    }

    /// Waits until a whole frame, the end of the connection or an error is there, without
    /// taking anything: the next [`Connection::read_message`] returns at once. Cancel safe.
    pub async fn ready(&mut self) -> Result<(), ConnectionError> {
        self.discard_consumed();
        self.read_frame().await.map(drop)
    }

    /// Whether part of a frame, not yet all of it, has arrived: the peer is sending.
    pub fn is_receiving(&self) -> bool {
        let rest = &self.buffer[self.consumed..];
        !rest.is_empty() && frame::frame_len(rest).is_none()
    }

    /// Sends one frame carrying `body` (an ATR or a response APDU), length and body in a single
    /// write so that vpcd gets them in one segment.
    pub async fn write_frame(&mut self, body: &[u8]) -> Result<(), ConnectionError> {
        self.write_buffer.clear();
        frame::encode(body, &mut self.write_buffer)?;
        self.stream.write_all(&self.write_buffer).await?;
        Ok(())
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.stream.peer_addr()
    }

    /// Reads until a whole frame is buffered; its length, or `None` on a clean close.
    ///
    /// The buffer holds at most one partial frame and a read's worth more, so a peer that
    /// floods the connection is held back by TCP, not buffered here.
    async fn read_frame(&mut self) -> Result<Option<usize>, ConnectionError> {
        loop {
            if let Some(frame_len) = frame::frame_len(&self.buffer) {
                self.frame_started = None;
                return Ok(Some(frame_len));
            }
            let missing = frame::announced_len(&self.buffer) - self.buffer.len();
            self.buffer.reserve(missing.max(READ_CHUNK));
            let read = if self.buffer.is_empty() {
                self.stream.read_buf(&mut self.buffer).await?
            } else {
                let started = *self.frame_started.get_or_insert_with(Instant::now);
                let reading = self.stream.read_buf(&mut self.buffer);
                match tokio::time::timeout_at(started + FRAME_TIMEOUT, reading).await {
                    Ok(read) => read?,
                    Err(_) => return Err(ConnectionError::Stalled(self.buffer.len())),
                }
            };
            set_quickack(&self.stream)?;
            if read == 0 {
                return match self.buffer.len() {
                    0 => Ok(None),
                    partial => Err(ConnectionError::ClosedMidFrame(partial)),
                };
            }
        }
    }

    fn discard_consumed(&mut self) {
        if self.consumed > 0 {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
    }
}

#[cfg(target_os = "linux")]
fn set_quickack(stream: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_quickack(true)
}

/// Delayed ACKs cannot be switched off per read elsewhere; TCP_NODELAY is all there is.
#[cfg(not(target_os = "linux"))]
fn set_quickack(_stream: &TcpStream) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A connected pair: our connection and the raw peer standing in for vpcd.
    async fn pair() -> (Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        (Connection::new(ours).unwrap(), peer)
    }

    async fn next(connection: &mut Connection) -> Option<Vec<u8>> {
        connection
            .read_message()
            .await
            .unwrap()
            .map(|message| message.body().to_vec())
    }

    #[tokio::test]
    async fn reads_frames_split_anywhere_and_glued_together() {
        let (mut connection, mut vpcd) = pair().await;
        let mut stream = Vec::new();
        for body in [
            &[4u8][..],
            &[0x00, 0xA4, 0x04, 0x00],
            &[1],
            &[0x80, 0xCA, 0x9F, 0x7F, 0x00],
        ] {
            frame::encode(body, &mut stream).unwrap();
        }
        // Byte by byte, as slowly as a peer can send.
        for byte in &stream {
            vpcd.write_all(&[*byte]).await.unwrap();
        }
        // And all at once.
        vpcd.write_all(&stream).await.unwrap();
        vpcd.shutdown().await.unwrap();
        for _ in 0..2 {
            assert_eq!(next(&mut connection).await, Some(vec![4]));
            assert_eq!(
                next(&mut connection).await,
                Some(vec![0x00, 0xA4, 0x04, 0x00])
            );
            assert_eq!(next(&mut connection).await, Some(vec![1]));
            assert_eq!(
                next(&mut connection).await,
                Some(vec![0x80, 0xCA, 0x9F, 0x7F, 0x00])
            );
        }
        assert_eq!(next(&mut connection).await, None);
    }

    #[tokio::test]
    async fn empty_frames_and_unknown_control_bytes_are_messages_too() {
        let (mut connection, mut vpcd) = pair().await;
        vpcd.write_all(&[0, 0, 0, 1, 0x03, 0, 1, 0xFF, 0, 1, 4])
            .await
            .unwrap();
        for body in [&[][..], &[3], &[0xFF], &[4]] {
            assert_eq!(next(&mut connection).await, Some(body.to_vec()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_that_does_not_end_is_dropped() {
        let (mut connection, mut vpcd) = pair().await;
        vpcd.write_all(&[0, 5, 0x00, 0xA4]).await.unwrap();
        let outcome = tokio::time::timeout(FRAME_TIMEOUT * 2, connection.read_message()).await;
        assert!(
            matches!(outcome, Ok(Err(ConnectionError::Stalled(4)))),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_slow_frame_within_the_limit_arrives() {
        let (mut connection, mut vpcd) = pair().await;
        let writer = tokio::spawn(async move {
            for byte in [0u8, 4, 0x00, 0xA4, 0x00, 0x00] {
                vpcd.write_all(&[byte]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            vpcd
        });
        assert_eq!(
            next(&mut connection).await,
            Some(vec![0x00, 0xA4, 0x00, 0x00])
        );
        assert!(!connection.is_receiving());
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn a_close_mid_frame_is_an_error() {
        let (mut connection, mut vpcd) = pair().await;
        vpcd.write_all(&[0, 5, 0x00, 0xA4]).await.unwrap();
        vpcd.shutdown().await.unwrap();
        assert!(matches!(
            connection.read_message().await,
            Err(ConnectionError::ClosedMidFrame(4))
        ));
    }

    #[tokio::test]
    async fn a_large_apdu_arrives_whole() {
        let (mut connection, mut vpcd) = pair().await;
        let body: Vec<u8> = (0..frame::MAX_BODY_LEN).map(|i| i as u8).collect();
        let mut stream = Vec::new();
        frame::encode(&body, &mut stream).unwrap();
        let writer = tokio::spawn(async move {
            vpcd.write_all(&stream).await.unwrap();
            vpcd
        });
        assert_eq!(next(&mut connection).await, Some(body));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn writes_length_and_body() {
        let (mut connection, mut vpcd) = pair().await;
        connection.write_frame(&[0x90, 0x00]).await.unwrap();
        let mut reply = [0; 4];
        vpcd.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, [0, 2, 0x90, 0x00]);
    }
}
