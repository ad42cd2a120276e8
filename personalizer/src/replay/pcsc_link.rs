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

/// A card inside a PC/SC transaction.
pub struct PcscLink<'tx> {
    transaction: Transaction<'tx>,
    buffer: Vec<u8>,
}

impl<'tx> PcscLink<'tx> {
    /// Starts a transaction on `card`.
    pub fn begin(card: &'tx mut pcsc::Card) -> Result<PcscLink<'tx>, LinkError> {
        Ok(PcscLink {
            transaction: card.transaction()?,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }

    /// Ends the transaction, leaving the card as it is.
    pub fn end(self) -> Result<(), LinkError> {
        self.transaction
            .end(Disposition::LeaveCard)
            .map_err(|(_, error)| error.into())
    }
}

impl CardLink for PcscLink<'_> {
    fn atr(&mut self) -> Result<Vec<u8>, LinkError> {
        Ok(self.transaction.status2_owned()?.atr().to_vec())
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError> {
        let received = self.transaction.transmit(command, &mut self.buffer)?;
        response.clear();
        response.extend_from_slice(received);
        Ok(())
    }

    fn reset(&mut self, kind: ResetKind) -> Result<(), LinkError> {
        let disposition = match kind {
            ResetKind::Cold => Disposition::UnpowerCard,
            ResetKind::Warm => Disposition::ResetCard,
        };
        self.transaction
            .reconnect(ShareMode::Exclusive, Protocols::ANY, disposition)?;
        Ok(())
    }
}

impl std::fmt::Debug for PcscLink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscLink")
    }
}
