//! One session of a slot: vpcd's messages on one connection answered by the slot's card, until
//! the connection ends; then the card is powered off, so that nothing of the session (a
//! verified PIN, the secure messaging channel, selected files, a pending response) carries
//! over to the next connection.
//!
//! vpcd's control messages are 1-byte bodies, and so is an application's 1-byte command, which
//! vpcd passes on unchanged: an application's `01` looks like a power-on. What follows tells
//! them apart. vpcd sends a power-on or a reset and the GET ATR after it in one driver call,
//! microseconds apart, and reads no answer in between; after an application's command it sends
//! nothing until it has the answer. So a power-on or reset takes effect only when the GET ATR
//! follows within [`CONTROL_FOLLOW_UP`]; otherwise it was a command, and it gets
//! [`NOT_AN_APDU`] with the card untouched. A power-off comes alone at times
//! (`SCardDisconnect` with `SCARD_UNPOWER_CARD`; pcscd's next poll follows within about
//! 400 ms): it takes effect at once, and when nothing at all follows within
//! [`POWER_OFF_FOLLOW_UP`] the slot answers [`NOT_AN_APDU`] and ends the connection. Whichever
//! it was, nobody is left waiting and the two ends cannot fall out of step (a frame answered
//! that vpcd did not wait for would answer its next request instead, and every one after it).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use vsc_core::apdu::Status;

use crate::card::VirtualCard;
use crate::trace;
use crate::vpcd::{Connection, ConnectionError, MAX_BODY_LEN, Message};

/// What a slot answers in place of a response the card got wrong (shorter than a status word,
/// or too long for a frame): `6F00`, no precise diagnosis.
const BROKEN_RESPONSE: [u8; 2] = [0x6F, 0x00];

/// What a slot answers a frame that is neither a control message nor a command APDU (empty,
/// one byte that is no control message, or an application's 1-byte command): `6700`, wrong
/// length, as a card answers any command shorter than its 4-byte header.
pub const NOT_AN_APDU: [u8; 2] = [0x67, 0x00];

/// How soon after `01` (power on) or `02` (reset) the GET ATR must come for them to be vpcd's.
pub const CONTROL_FOLLOW_UP: Duration = Duration::from_millis(250);

/// How long after a `00` (power off) with nothing following the slot answers it and ends the
/// connection: longer than pcscd's poll interval (about 400 ms), with room for a late poll.
pub const POWER_OFF_FOLLOW_UP: Duration = Duration::from_millis(700);

/// A connection on which vpcd sends nothing at all for this long gets a warning: vpcd polls
/// every reader it serves about every 400 ms, so it is not serving this one.
pub const SILENT_AFTER: Duration = Duration::from_secs(3);

/// A connection on which vpcd polls but never powers the card on for this long gets a hint
/// (pcscd powers a card on as soon as it sees it).
pub const NO_POWER_ON_AFTER: Duration = Duration::from_secs(5);

/// Who is at the other end of a slot's connection, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    /// The slot's number.
    pub slot: usize,
    /// vpcd's address.
    pub addr: SocketAddr,
}

/// How a session ended, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// vpcd closed the connection.
    Closed,
    /// The slot ended it after a power-off that nothing followed (see the module doc).
    LonePowerOff,
}

/// Serves one connection until it ends, then powers the card off.
///
/// `reply` is the slot's reusable response buffer, so that an APDU allocates nothing.
pub(crate) async fn serve_session<C: VirtualCard + ?Sized>(
    connection: &mut Connection,
    card: &mut C,
    peer: Peer,
    reply: &mut Vec<u8>,
) -> Result<End, ConnectionError> {
    let end = serve_connection(connection, card, peer, reply).await;
    card.power_off();
    end
}

/// A control message waiting for what follows it to take effect (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    PowerOn,
    Reset,
    PowerOff,
}

impl Pending {
    fn follow_up(self) -> Duration {
        match self {
            Pending::PowerOn | Pending::Reset => CONTROL_FOLLOW_UP,
            Pending::PowerOff => POWER_OFF_FOLLOW_UP,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Pending::PowerOff => 0x00,
            Pending::PowerOn => 0x01,
            Pending::Reset => 0x02,
        }
    }
}

async fn serve_connection<C: VirtualCard + ?Sized>(
    connection: &mut Connection,
    card: &mut C,
    peer: Peer,
    reply: &mut Vec<u8>,
) -> Result<End, ConnectionError> {
    let slot = peer.slot;
    let mut watch = Watch::new(peer);
    let mut pending: Option<(Pending, Instant)> = None;
    loop {
        let deadline = match pending {
            Some((control, since)) => Some(since + control.follow_up()),
            None => watch.deadline(),
        };
        if let Some(deadline) = deadline {
            match tokio::time::timeout_at(deadline, connection.ready()).await {
                Ok(ready) => ready?,
                // The peer is in the middle of a frame, so it is not waiting for an answer; the
                // frame's own time limit bounds the wait.
                Err(_) if connection.is_receiving() => connection.ready().await?,
                Err(_) => match pending.take() {
                    Some((Pending::PowerOff, _)) => {
                        tracing::info!(
                            "slot {slot}: a lone 00 (power off, or an application's 1-byte command): \
                             answering {} and ending the connection",
                            hex::encode_upper(NOT_AN_APDU)
                        );
                        connection.write_frame(&NOT_AN_APDU).await?;
                        return Ok(End::LonePowerOff);
                    }
                    Some((control, _)) => {
                        answer_not_an_apdu(connection, slot, control.byte()).await?;
                        continue;
                    }
                    None => {
                        watch.timed_out();
                        continue;
                    }
                },
            }
        }
        let Some(message) = connection.read_message().await? else {
            return Ok(End::Closed);
        };
        watch.heard(matches!(message, Message::GetAtr));

        // A power-on or reset waiting for its GET ATR: this message decides what it was.
        let mut command_before = None;
        match pending.take() {
            Some((Pending::PowerOn, _)) if message == Message::GetAtr => {
                tracing::debug!("slot {slot}: power on");
                card.power_on();
                watch.powered();
            }
            Some((Pending::Reset, _)) if message == Message::GetAtr => {
                tracing::debug!("slot {slot}: reset");
                card.reset();
            }
            Some((control @ (Pending::PowerOn | Pending::Reset), _)) => {
                command_before = Some(control.byte());
            }
            Some((Pending::PowerOff, _)) | None => {}
        }

        reply.clear();
        let mut answers = true;
        match message {
            Message::PowerOff => {
                tracing::debug!("slot {slot}: power off");
                card.power_off();
                pending = Some((Pending::PowerOff, Instant::now()));
                answers = false;
            }
            Message::PowerOn => {
                pending = Some((Pending::PowerOn, Instant::now()));
                answers = false;
            }
            Message::Reset => {
                pending = Some((Pending::Reset, Instant::now()));
                answers = false;
            }
            Message::GetAtr => reply.extend_from_slice(&card.atr()),
            Message::Apdu(command) => {
                card.transmit(command, reply);
                if reply.len() < 2 || reply.len() > MAX_BODY_LEN {
                    tracing::error!(
                        "slot {slot}: the card's response ({} bytes) is no response APDU; \
                         answering {:04X}",
                        reply.len(),
                        Status::NoPreciseDiagnosis.sw()
                    );
                    reply.clear();
                    reply.extend_from_slice(&BROKEN_RESPONSE);
                }
                tracing::info!(target: trace::TARGET, "slot {slot}: {}", trace::Exchange::new(command, reply));
            }
            Message::Unknown(body) => {
                reply.extend_from_slice(&NOT_AN_APDU);
                tracing::info!(target: trace::TARGET, "slot {slot}: {}", trace::Exchange::new(body, reply));
            }
        }
        if let Some(byte) = command_before {
            answer_not_an_apdu(connection, slot, byte).await?;
        }
        if answers {
            connection.write_frame(reply).await?;
        }
    }
}

/// A 1-byte body that looked like a power-on or reset was an application's command: it gets
/// [`NOT_AN_APDU`], and the card is left as it was.
async fn answer_not_an_apdu(
    connection: &mut Connection,
    slot: usize,
    byte: u8,
) -> Result<(), ConnectionError> {
    tracing::debug!(
        "slot {slot}: {byte:02X} came without the GET ATR vpcd sends after it: \
         an application's 1-byte command, answered {}",
        hex::encode_upper(NOT_AN_APDU)
    );
    tracing::info!(target: trace::TARGET, "slot {slot}: {}", trace::Exchange::new(&[byte], &NOT_AN_APDU));
    connection.write_frame(&NOT_AN_APDU).await
}

/// The hints a slot gives when a connection does not become a session: vpcd silent (another
/// card side is serving the reader), or polling without ever powering the card on.
#[derive(Debug)]
struct Watch {
    peer: Peer,
    since: Instant,
    heard: bool,
    polled: bool,
    powered: bool,
    warned_silent: bool,
    warned_unpowered: bool,
}

impl Watch {
    fn new(peer: Peer) -> Self {
        Watch {
            peer,
            since: Instant::now(),
            heard: false,
            polled: false,
            powered: false,
            warned_silent: false,
            warned_unpowered: false,
        }
    }

    /// When the next hint is due, if one is.
    fn deadline(&self) -> Option<Instant> {
        if !self.heard && !self.warned_silent {
            Some(self.since + SILENT_AFTER)
        } else if self.heard && !self.powered && !self.warned_unpowered {
            Some(self.since + NO_POWER_ON_AFTER)
        } else {
            None
        }
    }

    fn timed_out(&mut self) {
        let Peer { slot, addr } = self.peer;
        if !self.heard {
            self.warned_silent = true;
            tracing::warn!(
                "slot {slot}: vpcd at {addr} accepted the connection but has sent nothing for \
                 {} s: another card side (a second emulator?) is serving this reader already. \
                 This slot waits, and is served when the other one leaves",
                SILENT_AFTER.as_secs()
            );
        } else if !self.powered {
            self.warned_unpowered = true;
            let what = if self.polled { "polls" } else { "talks to" };
            tracing::warn!(
                "slot {slot}: vpcd at {addr} {what} this slot but has not powered the card on \
                 in {} s (pcscd does as soon as it sees a card): check that pcscd lists the \
                 reader (opensc-tool --list-readers) and that its reader.conf entry is for this \
                 port",
                NO_POWER_ON_AFTER.as_secs()
            );
        }
    }

    fn heard(&mut self, poll: bool) {
        self.polled |= poll;
        if !self.heard {
            self.heard = true;
            if self.warned_silent {
                self.since = Instant::now();
                let Peer { slot, addr } = self.peer;
                tracing::info!("slot {slot}: vpcd at {addr} serves this slot now");
            }
        }
    }

    fn powered(&mut self) {
        self.powered = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_no_apdu_trace_without_a_panic() {
        for body in [&[][..], &[0x00], &[0x01], &[0x03], &[0xFF]] {
            let line = trace::Exchange::new(body, &NOT_AN_APDU).to_string();
            assert!(line.contains("6700"), "{body:02X?}: {line}");
        }
    }
}
