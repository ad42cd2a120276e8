//! The card OS in-process as a [`CardLink`]: what data preparation replays its transcripts on.

use vsc_core::card::Card;
use vsc_core::transcript::ResetKind;

use super::{CardLink, LinkError};

/// A [`Card`] reached without a reader.
#[derive(Debug)]
pub struct CardOsLink {
    card: Card,
}

impl CardOsLink {
    /// A link to `card`.
    pub fn new(card: Card) -> CardOsLink {
        CardOsLink { card }
    }

    /// The card, to take it back.
    pub fn into_card(self) -> Card {
        self.card
    }

    /// The card.
    pub fn card(&self) -> &Card {
        &self.card
    }
}

impl CardLink for CardOsLink {
    fn atr(&mut self) -> Result<Vec<u8>, LinkError> {
        Ok(self.card.atr())
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError> {
        response.clear();
        self.card.transmit_into(command, response);
        Ok(())
    }

    fn reset(&mut self, _kind: ResetKind) -> Result<(), LinkError> {
        self.card.reset();
        Ok(())
    }
}
