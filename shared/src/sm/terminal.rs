//! The terminal side of the channel: protects plain commands and checks protected responses.

use std::fmt;

use super::data_objects::{
    self, PADDING_INDICATOR, TAG_CRYPTOGRAM, TAG_LE, TAG_MAC, TAG_PADDED_CRYPTOGRAM, TAG_STATUS,
    header_len, push_header,
};
use super::session::{MAC_LEN, Session, padded_header, padding_len};
use super::{ChannelKeys, SmError};
use crate::apdu::{
    ApduError, ClassKind, Command, LengthForm, MAX_NE, Response, SmIndication, Status,
};

/// The terminal (personalization) side of one channel, from the card's power-on or reset on.
///
/// Commands and responses alternate: [`TerminalChannel::wrap_command`], send, then
/// [`TerminalChannel::unwrap_response`] with the card's answer. Any error in a response closes
/// the channel for good, as the card closes its side on any error.
pub struct TerminalChannel {
    /// `None` once closed.
    session: Option<Session>,
    awaiting_response: bool,
}

impl TerminalChannel {
    /// A new channel: SSC zero, as the card has it after power-on or reset.
    pub fn new(keys: ChannelKeys) -> TerminalChannel {
        TerminalChannel {
            session: Some(Session::new(keys)),
            awaiting_response: false,
        }
    }

    /// Whether the channel is still open.
    pub fn is_open(&self) -> bool {
        self.session.is_some()
    }

    /// The protected form of a plain command: CLA with SM bits `11` (header authenticated), the
    /// data in DO`87` (even INS) or DO`85` (odd INS), Le in DO`97`, the MAC in DO`8E`, and Le
    /// `00` (`0000` in extended form).
    ///
    /// The plain command is checked before the SSC moves: a refused command leaves the channel
    /// as it was.
    pub fn wrap_command(&mut self, command: &Command) -> Result<Vec<u8>, SmError> {
        let Some(session) = self.session.as_mut() else {
            return Err(SmError::Closed);
        };
        if self.awaiting_response {
            return Err(SmError::OutOfOrder);
        }
        let plan = Plan::new(command)?;
        let protected = plan.protect(session, command);
        self.awaiting_response = true;
        Ok(protected)
    }

    /// The protected response a correct card sends to the last command, answering `data` and
    /// `status`, byte for byte: what a transcript expects. It takes the response's place in the
    /// channel (the next command follows it).
    pub fn expect_response(&mut self, data: &[u8], status: Status) -> Result<Vec<u8>, SmError> {
        let Some(session) = self.session.as_mut() else {
            return Err(SmError::Closed);
        };
        if !self.awaiting_response {
            return Err(SmError::OutOfOrder);
        }
        self.awaiting_response = false;
        Ok(super::card::protect_response(session, data, status))
    }

    /// The plain response in a protected one: the MAC is checked first, then DO`87` decrypted;
    /// the status is DO`99`'s (the trailing status word, a copy that no MAC covers, is not
    /// used).
    pub fn unwrap_response(&mut self, response: &[u8]) -> Result<Response, SmError> {
        let Some(session) = self.session.as_mut() else {
            return Err(SmError::Closed);
        };
        if !self.awaiting_response {
            return Err(SmError::OutOfOrder);
        }
        self.awaiting_response = false;
        let plain = open_response(session, response);
        if plain.is_err() {
            self.session = None;
        }
        plain
    }
}

impl fmt::Debug for TerminalChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalChannel")
            .field("open", &self.is_open())
            .field("awaiting_response", &self.awaiting_response)
            .finish_non_exhaustive()
    }
}

/// The sizes of a protected command, worked out (and checked) before anything is written.
struct Plan {
    /// The value length of DO`87`/`85` (indicator, if any, and cryptogram), 0 without data.
    cryptogram_len: usize,
    /// The value length of DO`97`: 0 without Le, 1 in short form, 2 in extended form.
    le_len: usize,
    /// Nc of the protected command.
    body_len: usize,
    /// Whether the protected command uses extended length.
    extended: bool,
}

impl Plan {
    fn new(command: &Command) -> Result<Plan, SmError> {
        let class = command.class;
        if class.kind() != ClassKind::FirstInterindustry
            || class.secure_messaging() != SmIndication::None
        {
            return Err(SmError::UnsupportedClass(class.byte()));
        }
        let nc = command.data.len();
        let short = command.form == LengthForm::Short;
        if nc > 0xFFFF
            || command.ne.is_some_and(|ne| ne == 0 || ne > MAX_NE)
            || (short && (nc > 0xFF || command.ne.is_some_and(|ne| ne > 256)))
        {
            return Err(ApduError::TooLong.into());
        }
        let cryptogram_len = match nc {
            0 => 0,
            _ if is_odd(command.ins) => nc + padding_len(nc),
            _ => 1 + nc + padding_len(nc),
        };
        let le_len = match (command.ne, short) {
            (None, _) => 0,
            (Some(_), true) => 1,
            (Some(_), false) => 2,
        };
        let mut body_len = 2 + MAC_LEN;
        if cryptogram_len > 0 {
            body_len += header_len(cryptogram_len) + cryptogram_len;
        }
        if le_len > 0 {
            body_len += 2 + le_len;
        }
        if body_len > 0xFFFF {
            return Err(ApduError::TooLong.into());
        }
        Ok(Plan {
            cryptogram_len,
            le_len,
            body_len,
            extended: !short || body_len > 0xFF,
        })
    }

    fn protect(&self, session: &mut Session, command: &Command) -> Vec<u8> {
        let ssc = session.next_ssc();
        let header = [
            command
                .class
                .with_secure_messaging(SmIndication::HeaderAuthenticated)
                .byte(),
            command.ins,
            command.p1,
            command.p2,
        ];
        let mut out = Vec::with_capacity(4 + 3 + self.body_len + 2);
        out.extend_from_slice(&header);
        if self.extended {
            out.push(0);
            out.extend_from_slice(&(self.body_len as u16).to_be_bytes());
        } else {
            out.push(self.body_len as u8);
        }
        let body_start = out.len();
        if self.cryptogram_len > 0 {
            if is_odd(command.ins) {
                push_header(&mut out, TAG_CRYPTOGRAM, self.cryptogram_len);
            } else {
                push_header(&mut out, TAG_PADDED_CRYPTOGRAM, self.cryptogram_len);
                out.push(PADDING_INDICATOR);
            }
            session.encrypt_into(&ssc, command.data, &mut out);
        }
        if let Some(ne) = command.ne {
            push_header(&mut out, TAG_LE, self.le_len);
            // Ne 256 is Le `00`, Ne 65 536 is `0000`, as in a plain command.
            let le = (ne as u16).to_be_bytes();
            out.extend_from_slice(&le[2 - self.le_len..]);
        }
        let mac = session.mac(&ssc, &padded_header(header), &out[body_start..]);
        push_header(&mut out, TAG_MAC, MAC_LEN);
        out.extend_from_slice(&mac);
        out.extend_from_slice(if self.extended { &[0, 0] } else { &[0] });
        out
    }
}

fn is_odd(ins: u8) -> bool {
    ins & 1 == 1
}

fn open_response(session: &mut Session, response: &[u8]) -> Result<Response, SmError> {
    let (objects_bytes, status_word) = match response {
        [data @ .., sw1, sw2] => (data, Status::from([*sw1, *sw2])),
        _ => return Err(SmError::Malformed),
    };
    if objects_bytes.is_empty() {
        return Err(SmError::Unprotected(status_word));
    }
    let ssc = session.next_ssc();
    let objects = data_objects::parse(objects_bytes, &[TAG_PADDED_CRYPTOGRAM, TAG_STATUS, TAG_MAC])
        .map_err(|_| SmError::Malformed)?;
    let (mac, before_mac) = match objects.split_last() {
        Some((last, before)) if last.tag == TAG_MAC => (last, before),
        _ if objects.iter().any(|o| o.tag == TAG_MAC) => return Err(SmError::Malformed),
        _ => return Err(SmError::MissingDataObjects),
    };
    let (cryptogram, status) = match before_mac {
        [a] if a.tag == TAG_STATUS => (None, a.value),
        [a, b] if a.tag == TAG_PADDED_CRYPTOGRAM && b.tag == TAG_STATUS => (Some(a.value), b.value),
        _ if before_mac.iter().all(|o| o.tag != TAG_STATUS) => {
            return Err(SmError::MissingDataObjects);
        }
        _ => return Err(SmError::Malformed),
    };
    if mac.value.len() != MAC_LEN {
        return Err(SmError::Malformed);
    }
    if !session.verify_mac(&ssc, &[], &objects_bytes[..mac.start], mac.value) {
        return Err(SmError::BadMac);
    }
    let &[sw1, sw2] = status else {
        return Err(SmError::Malformed);
    };
    let data = match cryptogram {
        None => Vec::new(),
        Some([PADDING_INDICATOR, cryptogram @ ..]) => {
            let mut plain = session
                .decrypt(&ssc, cryptogram)
                .filter(|plain| !plain.is_empty())
                .ok_or(SmError::Malformed)?;
            std::mem::take(&mut *plain)
        }
        Some(_) => return Err(SmError::Malformed),
    };
    Ok(Response {
        data,
        status: Status::from([sw1, sw2]),
    })
}
