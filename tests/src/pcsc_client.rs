//! PC/SC client helpers on the `pcsc` crate: wait for a card, transmit (bytes or hex), read the
//! ATR.

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Card, Context, Error, Protocols, ReaderState, Scope, ShareMode, State};

use crate::{HarnessError, Result};

/// Connects (shared, T=0 or T=1) to the card in `reader`, waiting up to `timeout` for pcscd to
/// see the reader and the card (pcscd polls vpcd about every 400 ms).
pub fn wait_for_card(reader: &str, timeout: Duration) -> Result<Card> {
    let name = CString::new(reader).map_err(|_| HarnessError::Failed {
        what: "naming a reader".into(),
        detail: format!("{reader:?} holds a NUL byte"),
    })?;
    let deadline = Instant::now() + timeout;
    let mut last_error = Error::NoSmartcard;
    while Instant::now() < deadline {
        match Context::establish(Scope::User)
            .and_then(|context| context.connect(&name, ShareMode::Shared, Protocols::ANY))
        {
            Ok(card) => return Ok(card),
            Err(
                error @ (Error::NoSmartcard
                | Error::RemovedCard
                | Error::UnpoweredCard
                | Error::UnresponsiveCard
                | Error::ReaderUnavailable
                | Error::UnknownReader
                | Error::NoService
                | Error::ServiceStopped
                | Error::NoReadersAvailable
                | Error::CommError),
            ) => {
                last_error = error;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => return Err(HarnessError::pcsc(format!("connecting to {reader}"))(error)),
        }
    }
    Err(HarnessError::Timeout {
        what: format!("a card in {reader} (last: {last_error})"),
        after: timeout,
    })
}

/// Sends `command` and returns the whole response APDU.
pub fn transmit(card: &Card, command: &[u8]) -> Result<Vec<u8>> {
    let mut buffer = [0; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    card.transmit(command, &mut buffer)
        .map(<[u8]>::to_vec)
        .map_err(HarnessError::pcsc("transmitting an APDU"))
}

/// Sends the command written in hex (`"00A4040006D27600012401"`) and returns the whole response
/// in upper-case hex (`"9000"`): the form transcripts and tests read.
pub fn transmit_hex(card: &Card, command: &str) -> Result<String> {
    let command = hex::decode(command).map_err(|cause| HarnessError::Failed {
        what: format!("reading the APDU {command:?} as hex"),
        detail: cause.to_string(),
    })?;
    transmit(card, &command).map(hex::encode_upper)
}

/// The card's ATR, as pcscd reports it.
pub fn atr(card: &Card) -> Result<Vec<u8>> {
    card.status2_owned()
        .map(|status| status.atr().to_vec())
        .map_err(HarnessError::pcsc("reading the card status"))
}

/// Waits up to `timeout` until pcscd reports `reader` empty (it polls vpcd about every 400 ms).
///
/// A test that stops a card side and starts another on the same port waits for this first:
/// pcscd misses a removal and re-insertion that fall between two of its polls.
pub fn wait_for_empty_reader(reader: &str, timeout: Duration) -> Result<()> {
    let name = CString::new(reader).map_err(|_| HarnessError::Failed {
        what: "naming a reader".into(),
        detail: format!("{reader:?} holds a NUL byte"),
    })?;
    let context =
        Context::establish(Scope::User).map_err(HarnessError::pcsc("establishing a context"))?;
    let mut states = [ReaderState::new(name, State::UNAWARE)];
    let deadline = Instant::now() + timeout;
    loop {
        match context.get_status_change(Duration::from_millis(200), &mut states) {
            Ok(()) | Err(Error::Timeout) => {}
            Err(error) => return Err(HarnessError::pcsc(format!("watching {reader}"))(error)),
        }
        if states[0].event_state().contains(State::EMPTY) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout {
                what: format!("{reader} to be empty"),
                after: timeout,
            });
        }
        states[0].sync_current_state();
    }
}
