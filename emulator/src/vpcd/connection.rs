//! A connection to vpcd: buffered frame reads, one write per reply, and the socket options
//! that keep an APDU round trip near 0.1 ms instead of 48 ms.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{self, FrameError, HEADER_LEN, Message};

/// The smallest free space offered to a read: a typical frame arrives in one read.
const READ_CHUNK: usize = 4096;

/// Why a connection to vpcd ended other than by a clean close.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// vpcd closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame ({0} bytes of it received)")]
    ClosedMidFrame(usize),
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
            write_buffer: Vec::with_capacity(READ_CHUNK),
        })
    }

    /// The next message from vpcd, or `None` when vpcd closed the connection cleanly (between
    /// frames).
    ///
    /// A frame that is no message (empty, or an unknown control byte) is logged and skipped:
    /// the connection survives it. Cancel safe: bytes already read stay buffered.
    pub async fn read_message(&mut self) -> Result<Option<Message<'_>>, ConnectionError> {
        let frame_len = loop {
            self.discard_consumed();
            let Some(frame_len) = self.read_frame().await? else {
                return Ok(None);
            };
            self.consumed = frame_len;
            match Message::from_body(&self.buffer[HEADER_LEN..frame_len]) {
                Ok(_) => break frame_len,
                Err(error) => tracing::warn!(%error, "skipping a frame from vpcd"),
            }
        };
        Ok(Some(Message::from_body(
            &self.buffer[HEADER_LEN..frame_len],
        )?))
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
    async fn read_frame(&mut self) -> Result<Option<usize>, ConnectionError> {
        loop {
            if let Some(frame_len) = frame::frame_len(&self.buffer) {
                return Ok(Some(frame_len));
            }
            let missing = frame::announced_len(&self.buffer) - self.buffer.len();
            self.buffer.reserve(missing.max(READ_CHUNK));
            let read = self.stream.read_buf(&mut self.buffer).await?;
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
    async fn skips_empty_frames_and_unknown_control_bytes() {
        let (mut connection, mut vpcd) = pair().await;
        vpcd.write_all(&[0, 0, 0, 1, 0x03, 0, 1, 0xFF, 0, 1, 4])
            .await
            .unwrap();
        assert_eq!(next(&mut connection).await, Some(vec![4]));
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
