//! The card side of the channel: checks and opens protected commands, protects responses.

use std::fmt;

use zeroize::Zeroizing;

use super::ChannelKeys;
use super::data_objects::{
    self, PADDING_INDICATOR, TAG_CRYPTOGRAM, TAG_LE, TAG_MAC, TAG_PADDED_CRYPTOGRAM, TAG_STATUS,
    header_len, push_header,
};
use super::session::{MAC_LEN, Session, padded_header, padding_len};
use crate::apdu::{ClassKind, Command, LengthForm, MAX_NE, SmIndication, Status};

/// The card side of one channel. The card makes a new one at every power-on and reset.
///
/// For each protected command: [`CardChannel::unwrap_command`], process the plain command, then
/// [`CardChannel::wrap_response`]. On any error the channel closes for good: every later command
/// gets `6988` until the card makes a new channel.
pub struct CardChannel {
    /// `None` once closed.
    session: Option<Session>,
    awaiting_response: bool,
}

impl CardChannel {
    /// A new channel: SSC zero.
    pub fn new(keys: ChannelKeys) -> CardChannel {
        CardChannel {
            session: Some(Session::new(keys)),
            awaiting_response: false,
        }
    }

    /// Whether the channel is still open.
    pub fn is_open(&self) -> bool {
        self.session.is_some()
    }

    /// The plain command APDU inside a protected one.
    ///
    /// DO`8E` is checked before anything is decrypted or interpreted. Errors, after which the
    /// channel is closed:
    /// - `6987` ([`Status::SmDataObjectsMissing`]): a plain interindustry class (`00`..`03`,
    ///   `10`..`13`: no SM at all), or no DO`8E`;
    /// - `6988` ([`Status::SmDataObjectsIncorrect`]): a wrong MAC, malformed or unexpected data
    ///   objects, bad padding, any other class without "SM, header authenticated", an outer Le
    ///   other than `00`/`0000`, a command while a response was due, or a closed channel.
    ///
    /// The plain command has the class byte without its SM bits, Le from DO`97` (its length
    /// gives the length form: two bytes mean extended), and extended form also when Nc > 255.
    pub fn unwrap_command(&mut self, command: &Command) -> Result<Zeroizing<Vec<u8>>, Status> {
        let Some(session) = self.session.as_mut() else {
            return Err(Status::SmDataObjectsIncorrect);
        };
        let plain = if self.awaiting_response {
            Err(Status::SmDataObjectsIncorrect)
        } else {
            open_command(session, command)
        };
        match plain {
            Ok(_) => self.awaiting_response = true,
            Err(_) => self.session = None,
        }
        plain
    }

    /// The full protected response APDU: DO`87` with the encrypted data (when there is data),
    /// DO`99` with the status, DO`8E`, then the status word itself.
    ///
    /// Without a successfully unwrapped command to answer (or on a closed channel) the answer is
    /// a bare `6988`, never `data` in clear, and the channel closes.
    pub fn wrap_response(&mut self, data: &[u8], status: Status) -> Vec<u8> {
        let refused = Status::SmDataObjectsIncorrect.to_bytes().to_vec();
        let Some(session) = self.session.as_mut() else {
            return refused;
        };
        if !self.awaiting_response {
            self.session = None;
            return refused;
        }
        self.awaiting_response = false;
        protect_response(session, data, status)
    }
}

/// A protected response under the session's next SSC: DO`87` (when there is data), DO`99`,
/// DO`8E`, the status word. What a card sends, and what a terminal expecting it computes.
pub(super) fn protect_response(session: &mut Session, data: &[u8], status: Status) -> Vec<u8> {
    let ssc = session.next_ssc();
    let cryptogram_len = match data.len() {
        0 => 0,
        n => 1 + n + padding_len(n),
    };
    let mut out = Vec::with_capacity(header_len(cryptogram_len) + cryptogram_len + 16);
    if cryptogram_len > 0 {
        push_header(&mut out, TAG_PADDED_CRYPTOGRAM, cryptogram_len);
        out.push(PADDING_INDICATOR);
        session.encrypt_into(&ssc, data, &mut out);
    }
    let status_word = status.to_bytes();
    push_header(&mut out, TAG_STATUS, status_word.len());
    out.extend_from_slice(&status_word);
    let mac = session.mac(&ssc, &[], &out);
    push_header(&mut out, TAG_MAC, MAC_LEN);
    out.extend_from_slice(&mac);
    out.extend_from_slice(&status_word);
    out
}

impl fmt::Debug for CardChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardChannel")
            .field("open", &self.is_open())
            .field("awaiting_response", &self.awaiting_response)
            .finish_non_exhaustive()
    }
}

fn open_command(session: &mut Session, command: &Command) -> Result<Zeroizing<Vec<u8>>, Status> {
    const MISSING: Status = Status::SmDataObjectsMissing;
    const INCORRECT: Status = Status::SmDataObjectsIncorrect;
    match (command.class.kind(), command.class.secure_messaging()) {
        (_, SmIndication::HeaderAuthenticated) => {}
        (ClassKind::FirstInterindustry, SmIndication::None) => return Err(MISSING),
        _ => return Err(INCORRECT),
    }
    // ICAO's protected command always ends with Le `00` (`0000` in extended form); the MAC
    // does not cover it, so only that one value is accepted.
    let le_is_zero = match command.form {
        LengthForm::Short => command.ne == Some(256),
        LengthForm::Extended => command.ne == Some(MAX_NE),
    };
    if !le_is_zero {
        return Err(INCORRECT);
    }
    let ssc = session.next_ssc();
    let odd_ins = command.ins & 1 == 1;
    let cryptogram_tag = if odd_ins {
        TAG_CRYPTOGRAM
    } else {
        TAG_PADDED_CRYPTOGRAM
    };
    let objects = data_objects::parse(command.data, &[cryptogram_tag, TAG_LE, TAG_MAC])
        .map_err(|_| INCORRECT)?;
    let (mac, before_mac) = match objects.split_last() {
        Some((last, before)) if last.tag == TAG_MAC => (last, before),
        _ if objects.iter().any(|o| o.tag == TAG_MAC) => return Err(INCORRECT),
        _ => return Err(MISSING),
    };
    if mac.value.len() != MAC_LEN
        || !session.verify_mac(
            &ssc,
            &padded_header(command.header()),
            &command.data[..mac.start],
            mac.value,
        )
    {
        return Err(INCORRECT);
    }

    // Authentic from here on; only now are the other objects interpreted.
    let (cryptogram, le) = match before_mac {
        [] => (None, None),
        [a] if a.tag == TAG_LE => (None, Some(a.value)),
        [a] if a.tag == cryptogram_tag => (Some(a.value), None),
        [a, b] if a.tag == cryptogram_tag && b.tag == TAG_LE => (Some(a.value), Some(b.value)),
        _ => return Err(INCORRECT),
    };
    let data = match cryptogram {
        None => None,
        Some(value) => {
            let encrypted = if odd_ins {
                value
            } else {
                match value {
                    [PADDING_INDICATOR, encrypted @ ..] => encrypted,
                    _ => return Err(INCORRECT),
                }
            };
            let plain = session.decrypt(&ssc, encrypted).ok_or(INCORRECT)?;
            if plain.is_empty() {
                return Err(INCORRECT);
            }
            Some(plain)
        }
    };
    let (ne, le_extended) = match le {
        None => (None, false),
        Some(&[le]) => (Some(if le == 0 { 256 } else { usize::from(le) }), false),
        Some(&[hi, lo]) => (
            Some(match u16::from_be_bytes([hi, lo]) {
                0 => MAX_NE,
                n => usize::from(n),
            }),
            true,
        ),
        Some(_) => return Err(INCORRECT),
    };
    let data: &[u8] = data.as_deref().map_or(&[], |plain| plain.as_slice());
    let plain = Command {
        class: command.class.with_secure_messaging(SmIndication::None),
        ins: command.ins,
        p1: command.p1,
        p2: command.p2,
        data,
        ne,
        form: if le_extended || data.len() > 0xFF {
            LengthForm::Extended
        } else {
            LengthForm::Short
        },
    };
    // Sized up front so the plain bytes are never reallocated (and left behind unzeroized).
    let mut bytes = Zeroizing::new(Vec::with_capacity(4 + 3 + data.len() + 3));
    plain.encode_into(&mut bytes).map_err(|_| INCORRECT)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AesKey;

    fn channel() -> CardChannel {
        CardChannel::new(ChannelKeys::from_keys(
            AesKey::aes256(&[1; 32]),
            AesKey::aes256(&[2; 32]),
        ))
    }

    fn unwrap(channel: &mut CardChannel, hex: &str) -> Result<Zeroizing<Vec<u8>>, Status> {
        let bytes = hex::decode(hex).unwrap();
        channel.unwrap_command(&Command::parse(&bytes).unwrap())
    }

    #[test]
    fn plain_class_is_missing_sm_and_closes() {
        let mut channel = channel();
        assert_eq!(
            unwrap(&mut channel, "00A4000C023F00"),
            Err(Status::SmDataObjectsMissing)
        );
        assert!(!channel.is_open());
        assert_eq!(
            unwrap(&mut channel, "0CA4000C00"),
            Err(Status::SmDataObjectsIncorrect)
        );
    }

    #[test]
    fn missing_mac_object_is_6987() {
        let mut channel = channel();
        assert_eq!(
            unwrap(&mut channel, "0CB000000397010000"),
            Err(Status::SmDataObjectsMissing)
        );
        let mut channel = self::channel();
        assert_eq!(
            unwrap(&mut channel, "0CB0000000"),
            Err(Status::SmDataObjectsMissing)
        );
    }

    #[test]
    fn objects_after_the_mac_or_unknown_tags_are_6988() {
        for hex in [
            "0CB000000D8E08010203040506070897010000",
            "0CB000000371010000",
            "0CB000000B8E0901020304050607080900",
            "0CB00000098E070102030405060700",
        ] {
            let mut channel = channel();
            assert_eq!(
                unwrap(&mut channel, hex),
                Err(Status::SmDataObjectsIncorrect),
                "{hex}"
            );
        }
    }

    #[test]
    fn outer_le_must_be_zero() {
        for hex in [
            "0CB000000A8E080102030405060708",
            "0CB000000A8E08010203040506070801",
            "0CB0000000000A8E0801020304050607080100",
        ] {
            let mut channel = channel();
            assert_eq!(
                unwrap(&mut channel, hex),
                Err(Status::SmDataObjectsIncorrect),
                "{hex}"
            );
        }
    }

    #[test]
    fn header_not_authenticated_or_proprietary_sm_is_6988() {
        for hex in [
            "08B000000A8E08010203040506070800",
            "04B000000A8E08010203040506070800",
            "8CB000000A8E08010203040506070800",
            "4CB000000A8E08010203040506070800",
        ] {
            let mut channel = channel();
            assert_eq!(
                unwrap(&mut channel, hex),
                Err(Status::SmDataObjectsIncorrect)
            );
        }
    }

    #[test]
    fn responses_need_an_unwrapped_command() {
        let mut channel = channel();
        assert_eq!(
            channel.wrap_response(b"secret", Status::Success),
            [0x69, 0x88]
        );
        assert!(!channel.is_open());
        assert_eq!(
            channel.wrap_response(b"secret", Status::Success),
            [0x69, 0x88]
        );
    }
}
