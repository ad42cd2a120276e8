//! The vpcd wire format: a 2-byte big-endian length, then that many body bytes.
//!
//! vpcd sends the card side 1-byte control bodies (`00` power off, `01` power on, `02` reset,
//! `04` get ATR) and command APDUs (any longer body); the card side answers `04` with the ATR
//! and every APDU with the response APDU, in the same framing. An application's own 1-byte
//! command reaches the card side as a 1-byte body too: see `docs/emulator.md` for how the slot
//! tells the two apart.

use std::fmt;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 2;

/// The longest body a frame can carry.
pub const MAX_BODY_LEN: usize = u16::MAX as usize;

const POWER_OFF: u8 = 0x00;
const POWER_ON: u8 = 0x01;
const RESET: u8 = 0x02;
const GET_ATR: u8 = 0x04;

/// Why bytes are not a frame, or a frame is not a message from vpcd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the length prefix announces (or than the prefix itself).
    #[error("truncated frame: {got} of {expected} bytes")]
    Truncated {
        /// The frame's full length, prefix included (2 while the prefix itself is missing).
        expected: usize,
        /// The bytes present.
        got: usize,
    },
    /// More bytes after the frame the length prefix announces.
    #[error("{0} bytes after the end of the frame")]
    TrailingBytes(usize),
    /// A body longer than the 2-byte length can announce.
    #[error("a body of {0} bytes does not fit a frame")]
    TooLong(usize),
}

/// What vpcd says to the card side, in one frame.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `00`: the reader powers the card off. No answer.
    PowerOff,
    /// `01`: the reader powers the card on. No answer (vpcd asks for the ATR next).
    PowerOn,
    /// `02`: warm reset. No answer.
    Reset,
    /// `04`: answered with the ATR. pcscd polls with it about every 400 ms.
    GetAtr,
    /// A command APDU (2 bytes or more), answered with the response APDU.
    Apdu(&'a [u8]),
    /// A body that is neither: empty, or one byte that is no control message (an application's
    /// malformed 1-byte command, which vpcd passes on as it is). Answered with an error status
    /// word, so that the application is not left waiting.
    Unknown(&'a [u8]),
}

impl<'a> Message<'a> {
    /// Parses one whole frame (length prefix and body, nothing after it).
    pub fn decode(frame: &'a [u8]) -> Result<Self, FrameError> {
        Ok(Message::from_body(decode(frame)?))
    }

    /// Interprets a frame's body: every body is some message.
    pub fn from_body(body: &'a [u8]) -> Self {
        match body {
            [POWER_OFF] => Message::PowerOff,
            [POWER_ON] => Message::PowerOn,
            [RESET] => Message::Reset,
            [GET_ATR] => Message::GetAtr,
            [] | [_] => Message::Unknown(body),
            apdu => Message::Apdu(apdu),
        }
    }

    /// The frame's body.
    pub fn body(&self) -> &'a [u8] {
        match self {
            Message::PowerOff => &[POWER_OFF],
            Message::PowerOn => &[POWER_ON],
            Message::Reset => &[RESET],
            Message::GetAtr => &[GET_ATR],
            Message::Apdu(body) | Message::Unknown(body) => body,
        }
    }

    /// Appends the whole frame (length prefix and body) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        encode(self.body(), out)
    }
}

impl fmt::Debug for Message<'_> {
    /// Prints an APDU's length, never its bytes: it may carry a PIN or a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::PowerOff => f.write_str("PowerOff"),
            Message::PowerOn => f.write_str("PowerOn"),
            Message::Reset => f.write_str("Reset"),
            Message::GetAtr => f.write_str("GetAtr"),
            Message::Apdu(apdu) => write!(f, "Apdu({} bytes)", apdu.len()),
            Message::Unknown(body) => write!(f, "Unknown({} bytes)", body.len()),
        }
    }
}

/// Appends a frame carrying `body` to `out`.
pub fn encode(body: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = u16::try_from(body.len()).map_err(|_| FrameError::TooLong(body.len()))?;
    out.reserve(HEADER_LEN + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// The body of `frame`, which must be exactly one whole frame.
pub fn decode(frame: &[u8]) -> Result<&[u8], FrameError> {
    let expected = frame_len(frame).ok_or(FrameError::Truncated {
        expected: announced_len(frame),
        got: frame.len(),
    })?;
    match frame.len() - expected {
        0 => Ok(&frame[HEADER_LEN..]),
        trailing => Err(FrameError::TrailingBytes(trailing)),
    }
}

/// The length (prefix included) of the frame at the start of `buffer`, once all of it is there.
///
/// This is the cheap check a reader makes after every read: it looks at two bytes.
pub fn frame_len(buffer: &[u8]) -> Option<usize> {
    let expected = announced_len(buffer);
    (buffer.len() >= expected).then_some(expected)
}

/// The length (prefix included) the prefix at the start of `buffer` announces, or the prefix's
/// own length while it is incomplete.
pub(super) fn announced_len(buffer: &[u8]) -> usize {
    match buffer {
        [hi, lo, ..] => HEADER_LEN + usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => HEADER_LEN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(vec![POWER_OFF]),
            Just(vec![POWER_ON]),
            Just(vec![RESET]),
            Just(vec![GET_ATR]),
            Just(vec![]),
            any::<u8>().prop_map(|byte| vec![byte]),
            proptest::collection::vec(any::<u8>(), 2..600),
        ]
    }

    #[test]
    fn control_messages_and_apdus() {
        assert_eq!(Message::decode(&[0, 1, 0]), Ok(Message::PowerOff));
        assert_eq!(Message::decode(&[0, 1, 1]), Ok(Message::PowerOn));
        assert_eq!(Message::decode(&[0, 1, 2]), Ok(Message::Reset));
        assert_eq!(Message::decode(&[0, 1, 4]), Ok(Message::GetAtr));
        assert_eq!(
            Message::decode(&hex::decode("000500A4000C00").unwrap()),
            Ok(Message::Apdu(&[0x00, 0xA4, 0x00, 0x0C, 0x00]))
        );
    }

    #[test]
    fn bodies_vpcd_never_sends() {
        assert_eq!(Message::decode(&[0, 0]), Ok(Message::Unknown(&[])));
        assert_eq!(Message::decode(&[0, 1, 3]), Ok(Message::Unknown(&[3])));
        assert_eq!(
            Message::decode(&[0, 1, 0xFF]),
            Ok(Message::Unknown(&[0xFF]))
        );
    }

    #[test]
    fn malformed_frames() {
        assert_eq!(
            decode(&[0]),
            Err(FrameError::Truncated {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            decode(&[0, 4, 1, 2]),
            Err(FrameError::Truncated {
                expected: 6,
                got: 4
            })
        );
        assert_eq!(decode(&[0, 1, 4, 0]), Err(FrameError::TrailingBytes(1)));
        assert_eq!(
            encode(&vec![0; MAX_BODY_LEN + 1], &mut Vec::new()),
            Err(FrameError::TooLong(MAX_BODY_LEN + 1))
        );
    }

    #[test]
    fn largest_body_fits() {
        let body = vec![0x5A; MAX_BODY_LEN];
        let mut frame = Vec::new();
        encode(&body, &mut frame).unwrap();
        assert_eq!(&frame[..2], [0xFF, 0xFF]);
        assert_eq!(decode(&frame).unwrap(), body);
    }

    #[test]
    fn apdu_debug_hides_the_bytes() {
        let debug = format!("{:?}", Message::Apdu(&[0x00, 0x20, 0x00, 0x81, 0x31, 0x32]));
        assert_eq!(debug, "Apdu(6 bytes)");
    }

    proptest! {
        #[test]
        fn frames_round_trip(body in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut frame = Vec::new();
            encode(&body, &mut frame).unwrap();
            prop_assert_eq!(frame_len(&frame), Some(frame.len()));
            prop_assert_eq!(decode(&frame).unwrap(), &body[..]);
        }

        #[test]
        fn messages_round_trip(body in message()) {
            let message = Message::from_body(&body);
            let mut frame = Vec::new();
            message.encode(&mut frame).unwrap();
            prop_assert_eq!(Message::decode(&frame).unwrap(), message);
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::decode(&bytes);
            let _ = frame_len(&bytes);
        }

        #[test]
        fn a_prefix_of_a_frame_is_never_whole(body in message(), cut in 0usize..600) {
            let mut frame = Vec::new();
            encode(&body, &mut frame).unwrap();
            let cut = cut % frame.len();
            prop_assert_eq!(frame_len(&frame[..cut]), None);
        }
    }
}
