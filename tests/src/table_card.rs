//! A tiny test double: a card that answers by a table and records what reaches it.
//!
//! For protocol tests only (it is no ISO 7816-4 card). Besides its table it keeps one value,
//! so that tests can see that a card's state outlives a connection: `80 DA 00 00 Lc data`
//! stores the data, `80 CA 00 00 00` returns it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use vsc_emulator::VirtualCard;

/// The command that stores a value (header; the data follows).
pub const STORE_HEADER: [u8; 4] = [0x80, 0xDA, 0x00, 0x00];

/// The command that returns the stored value.
pub const RECALL: [u8; 5] = [0x80, 0xCA, 0x00, 0x00, 0x00];

/// What reached a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardEvent {
    /// vpcd `01`.
    PowerOn,
    /// vpcd `00`.
    PowerOff,
    /// vpcd `02`.
    Reset,
    /// A command APDU.
    Apdu(Vec<u8>),
}

/// A shared view of a card's events, readable while the card is being served.
#[derive(Debug, Clone, Default)]
pub struct CardLog(Arc<Mutex<Vec<CardEvent>>>);

impl CardLog {
    /// The events so far, oldest first.
    pub fn events(&self) -> Vec<CardEvent> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many events equal `event`.
    pub fn count(&self, event: &CardEvent) -> usize {
        self.events().iter().filter(|seen| *seen == event).count()
    }

    fn push(&self, event: CardEvent) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

/// A card answering each command from its table (`6D00` when missing).
#[derive(Debug, Clone)]
pub struct TableCard {
    atr: Vec<u8>,
    table: HashMap<Vec<u8>, Vec<u8>>,
    stored: Vec<u8>,
    log: CardLog,
}

impl TableCard {
    /// A card with this ATR and an empty table.
    pub fn new(atr: &[u8]) -> Self {
        TableCard {
            atr: atr.to_vec(),
            table: HashMap::new(),
            stored: Vec::new(),
            log: CardLog::default(),
        }
    }

    /// The same card, answering `command` with `response`.
    pub fn answering(mut self, command: &[u8], response: &[u8]) -> Self {
        self.table.insert(command.to_vec(), response.to_vec());
        self
    }

    /// The card's log, to keep before the card is handed to a slot.
    pub fn log(&self) -> CardLog {
        self.log.clone()
    }
}

impl VirtualCard for TableCard {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) {
        self.log.push(CardEvent::Apdu(command.to_vec()));
        if let Some(answer) = self.table.get(command) {
            response.extend_from_slice(answer);
        } else if command == RECALL {
            response.extend_from_slice(&self.stored);
            response.extend_from_slice(&[0x90, 0x00]);
        } else if let Some([lc, data @ ..]) = command.strip_prefix(&STORE_HEADER[..])
            && usize::from(*lc) == data.len()
        {
            self.stored = data.to_vec();
            response.extend_from_slice(&[0x90, 0x00]);
        } else {
            response.extend_from_slice(&[0x6D, 0x00]);
        }
    }

    fn reset(&mut self) {
        self.log.push(CardEvent::Reset);
    }

    fn power_on(&mut self) {
        self.log.push(CardEvent::PowerOn);
    }

    fn power_off(&mut self) {
        self.log.push(CardEvent::PowerOff);
    }
}
