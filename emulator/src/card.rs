//! What a slot serves: the [`VirtualCard`] trait, and [`NullCard`], the card that answers
//! everything with `9000` (the transport's own limit in benchmarks).

/// A card behind a virtual reader slot.
///
/// Synchronous on purpose: a card needs no runtime, and a slow call (a card that persists its
/// image before answering a write) only holds up its own slot, which runs on a thread of its own.
pub trait VirtualCard {
    /// The answer to reset, sent whenever vpcd asks for it (also between sessions: pcscd polls).
    fn atr(&self) -> Vec<u8>;

    /// Processes one command APDU and appends the response APDU (data, then the status word) to
    /// `response`, which is empty when called. Every input, however malformed, gets a status
    /// word.
    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>);

    /// A warm reset: the card forgets its volatile state (selected files, verified PINs,
    /// secure messaging session) and starts over.
    fn reset(&mut self);

    /// The reader powers the card on; a fresh start, like a reset unless the card says otherwise.
    fn power_on(&mut self) {
        self.reset();
    }

    /// The reader powers the card off; its volatile state is lost, like on a reset unless the
    /// card says otherwise.
    fn power_off(&mut self) {
        self.reset();
    }
}

impl<C: VirtualCard + ?Sized> VirtualCard for Box<C> {
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) {
        (**self).transmit(command, response);
    }

    fn reset(&mut self) {
        (**self).reset();
    }

    fn power_on(&mut self) {
        (**self).power_on();
    }

    fn power_off(&mut self) {
        (**self).power_off();
    }
}

/// The null card's ATR: T=1, historical bytes "VSC-NULL", and the check byte T=1 requires.
pub const NULL_CARD_ATR: [u8; 13] = [
    0x3B, 0x88, 0x80, 0x01, b'V', b'S', b'C', b'-', b'N', b'U', b'L', b'L', 0x79,
];

/// A card that answers every APDU with `9000` and nothing else.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullCard;

impl VirtualCard for NullCard {
    fn atr(&self) -> Vec<u8> {
        NULL_CARD_ATR.to_vec()
    }

    fn transmit(&mut self, _command: &[u8], response: &mut Vec<u8>) {
        response.extend_from_slice(&[0x90, 0x00]);
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_card_atr_check_byte() {
        // ISO 7816-3 §8.2.5: TCK makes the XOR of T0 up to TCK zero.
        assert_eq!(NULL_CARD_ATR[1..].iter().fold(0, |acc, b| acc ^ b), 0);
    }

    #[test]
    fn null_card_answers_9000() {
        let mut card: Box<dyn VirtualCard> = Box::new(NullCard);
        let mut response = Vec::new();
        card.transmit(&[0x00, 0xA4, 0x04, 0x00], &mut response);
        assert_eq!(response, [0x90, 0x00]);
        assert_eq!(card.atr(), NULL_CARD_ATR);
    }
}
