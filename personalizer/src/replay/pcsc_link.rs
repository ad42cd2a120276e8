//! A card in a PC/SC reader as a [`CardLink`]: an exclusive connection, reset to a fresh
//! session, and every exchange inside one transaction.

use std::ffi::CStr;

use pcsc::{Context, Disposition, Protocols, ShareMode, Transaction};
use vsc_core::transcript::ResetKind;

use super::{CardLink, LinkError};

/// Connects to the card in `reader` exclusively (no other application can talk to it while
/// this lasts) and resets it, so the session starts from power-on: the personalization channel's
/// send sequence counter starts at zero.
pub fn connect_exclusive(context: &Context, reader: &CStr) -> Result<pcsc::Card, LinkError> {
    let mut card = context.connect(reader, ShareMode::Exclusive, Protocols::ANY)?;
    card.reconnect(ShareMode::Exclusive, Protocols::ANY, Disposition::ResetCard)?;
    Ok(card)
}

/// A card in a reader, reached through an exclusive connection, inside a PC/SC transaction or
/// not.
pub struct PcscLink<'a> {
    held: Held<'a>,
    buffer: Vec<u8>,
}

/// How the link holds the card.
enum Held<'a> {
    /// Inside a transaction (`SCardBeginTransaction`).
    Transaction(Transaction<'a>),
    /// The exclusive connection alone: no other application can reach the card anyway, and
    /// pcsc-lite serializes transactions on different readers of one process, which a station
    /// serving many readers cannot afford.
    Exclusive(&'a mut pcsc::Card),
}

impl<'a> PcscLink<'a> {
    /// Starts a transaction on `card`.
    pub fn begin(card: &'a mut pcsc::Card) -> Result<PcscLink<'a>, LinkError> {
        Ok(PcscLink {
            held: Held::Transaction(card.transaction()?),
            buffer: buffer(),
        })
    }

    /// Uses `card`'s exclusive connection without a transaction.
    pub fn exclusive(card: &'a mut pcsc::Card) -> PcscLink<'a> {
        PcscLink {
            held: Held::Exclusive(card),
            buffer: buffer(),
        }
    }

    /// Ends the transaction (if any), leaving the card as it is.
    pub fn end(self) -> Result<(), LinkError> {
        match self.held {
            Held::Transaction(transaction) => transaction
                .end(Disposition::LeaveCard)
                .map_err(|(_, error)| error.into()),
            Held::Exclusive(_) => Ok(()),
        }
    }

    fn card(&self) -> &pcsc::Card {
        match &self.held {
            Held::Transaction(transaction) => transaction,
            Held::Exclusive(card) => card,
        }
    }
}

fn buffer() -> Vec<u8> {
    vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED]
}

impl CardLink for PcscLink<'_> {
    fn atr(&mut self) -> Result<Vec<u8>, LinkError> {
        Ok(self.card().status2_owned()?.atr().to_vec())
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError> {
        let mut buffer = std::mem::take(&mut self.buffer);
        let received = self.card().transmit(command, &mut buffer);
        let result = match received {
            Ok(received) => {
                response.clear();
                response.extend_from_slice(received);
                Ok(())
            }
            Err(error) => Err(error.into()),
        };
        self.buffer = buffer;
        result
    }

    fn reset(&mut self, kind: ResetKind) -> Result<(), LinkError> {
        let disposition = match kind {
            ResetKind::Cold => Disposition::UnpowerCard,
            ResetKind::Warm => Disposition::ResetCard,
        };
        match &mut self.held {
            Held::Transaction(transaction) => {
                transaction.reconnect(ShareMode::Exclusive, Protocols::ANY, disposition)?;
            }
            Held::Exclusive(card) => {
                card.reconnect(ShareMode::Exclusive, Protocols::ANY, disposition)?
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for PcscLink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscLink")
    }
}
