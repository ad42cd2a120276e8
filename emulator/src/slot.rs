//! One session of a slot: vpcd's messages on a connection answered by the slot's card.

use vsc_core::apdu::Status;

use crate::card::VirtualCard;
use crate::trace;
use crate::vpcd::{Connection, ConnectionError, MAX_BODY_LEN, Message};

/// What a slot answers in place of a response the card got wrong (shorter than a status word,
/// or too long for a frame): `6F00`, no precise diagnosis.
const BROKEN_RESPONSE: [u8; 2] = [0x6F, 0x00];

/// Answers vpcd on `connection` until it closes the connection (`Ok`) or the connection breaks.
///
/// `reply` is the slot's reusable response buffer, so that an APDU allocates nothing.
pub(crate) async fn serve_connection<C: VirtualCard + ?Sized>(
    connection: &mut Connection,
    card: &mut C,
    slot: usize,
    reply: &mut Vec<u8>,
) -> Result<(), ConnectionError> {
    while let Some(message) = connection.read_message().await? {
        reply.clear();
        match message {
            Message::PowerOff => {
                tracing::debug!(slot, "power off");
                card.power_off();
                continue;
            }
            Message::PowerOn => {
                tracing::debug!(slot, "power on");
                card.power_on();
                continue;
            }
            Message::Reset => {
                tracing::debug!(slot, "reset");
                card.reset();
                continue;
            }
            Message::GetAtr => reply.extend_from_slice(&card.atr()),
            Message::Apdu(command) => {
                card.transmit(command, reply);
                if reply.len() < 2 || reply.len() > MAX_BODY_LEN {
                    tracing::error!(
                        slot,
                        len = reply.len(),
                        "the card's response is no response APDU; answering {:04X}",
                        Status::NoPreciseDiagnosis.sw()
                    );
                    reply.clear();
                    reply.extend_from_slice(&BROKEN_RESPONSE);
                }
                tracing::info!(target: trace::TARGET, slot, "{}", trace::Exchange::new(command, reply));
            }
        }
        connection.write_frame(reply).await?;
    }
    Ok(())
}
