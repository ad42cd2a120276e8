//! Card sessions: a sequence of commands, decoded from the input, on one of the catalogue's
//! cards (a blank chip, pre-initialized cards, the sample cards with every application,
//! operational and terminated: `vsc_tests::catalogue`).
//!
//! After every command:
//! - the response is at least a status word;
//! - it holds no window of the card's secrets (PINs, PUKs, key values, private key components)
//!   that the session did not give the card itself (`vsc_tests::secrets`);
//! - a command that failed (an error status word: `64xx`, `67xx`–`6Fxx`) left the persistent
//!   state as it was, but for one counted password try (a wrong VERIFY, CHANGE REFERENCE DATA or
//!   RESET RETRY COUNTER counts down one retry counter, as it must);
//! - every change of the persistent state was reported as made durable (a change the card
//!   forgot to save would be lost by the emulator).
//!
//! Input: the first byte picks the card (modulo the catalogue's size); then, repeatedly, a
//! length byte `n` and a command of `n` bytes (`n` ≤ `FD`), `FE` for a reset, or `FF` and a
//! 2-byte big-endian length for a longer command. An OpenPGP key generation of an RSA slot is
//! skipped (see [`generates_rsa`]).

use std::sync::OnceLock;

use vsc_core::applications::Application;
use vsc_core::applications::openpgp::Slot;
use vsc_core::card::CardState;
use vsc_tests::catalogue::{self, CatalogueCard};
use vsc_tests::secrets::SecretScan;

/// At most this many commands a session.
pub const MAX_COMMANDS: usize = 64;

/// One step of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// A command APDU (or any bytes sent as one).
    Command(&'a [u8]),
    /// A warm reset.
    Reset,
}

/// The catalogue, made once per process.
pub fn cards() -> &'static [CatalogueCard] {
    static CARDS: OnceLock<Vec<CatalogueCard>> = OnceLock::new();
    CARDS.get_or_init(|| match catalogue::catalogue() {
        Ok(cards) => cards,
        Err(error) => panic!("the catalogue cannot be made: {error}"),
    })
}

/// The secret scan of each catalogue card, made once per process.
fn scans() -> &'static [SecretScan] {
    static SCANS: OnceLock<Vec<SecretScan>> = OnceLock::new();
    SCANS.get_or_init(|| {
        cards()
            .iter()
            .map(|card| SecretScan::of(&card.state))
            .collect()
    })
}

/// Splits the input after its first byte into steps; a truncated last command is dropped.
pub fn decode(mut data: &[u8]) -> Vec<Op<'_>> {
    let mut ops = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        let (len, rest) = match n {
            0xFE => {
                ops.push(Op::Reset);
                data = rest;
                continue;
            }
            0xFF => match rest {
                [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
                _ => break,
            },
            n => (usize::from(n), rest),
        };
        let Some((command, rest)) = rest.split_at_checked(len) else {
            break;
        };
        ops.push(Op::Command(command));
        data = rest;
    }
    ops
}

/// The input that [`decode`] reads as `ops` on card `card`.
pub fn encode(card: u8, ops: &[Op<'_>]) -> Vec<u8> {
    let mut out = vec![card];
    for op in ops {
        match op {
            Op::Reset => out.push(0xFE),
            Op::Command(command) if command.len() < 0xFE => {
                out.push(command.len() as u8);
                out.extend_from_slice(command);
            }
            Op::Command(command) => {
                out.push(0xFF);
                out.extend_from_slice(&(command.len().min(0xFFFF) as u16).to_be_bytes());
                out.extend_from_slice(&command[..command.len().min(0xFFFF)]);
            }
        }
    }
    out
}

/// The target's body.
pub fn run(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let cards = cards();
    let index = usize::from(which) % cards.len();
    let entry = &cards[index];
    let mut card = entry.card();
    let mut scan = scans()[index].clone();
    for op in decode(rest).into_iter().take(MAX_COMMANDS) {
        let command = match op {
            Op::Reset => {
                card.reset();
                continue;
            }
            Op::Command(command) if generates_rsa(command, card.state()) => continue,
            Op::Command(command) => command,
        };
        scan.excuse(command);
        let before = card.state().clone();
        let response = card.transmit(command);
        let changed = card.take_changed();
        let name = &entry.name;
        assert!(
            response.len() >= 2,
            "{name}: a response without a status word"
        );
        let sw = [response[response.len() - 2], response[response.len() - 1]];
        let state = card.state();
        if changed {
            scan.add_secrets(state);
        }
        if let Some(leak) = scan.leak(&response) {
            panic!(
                "{name}: the response to {:02X?} holds {} bytes of a secret at offset {}",
                &command[..command.len().min(4)],
                leak.len,
                leak.at
            );
        }
        if *state != before {
            assert!(changed, "{name}: a change of the card was not made durable");
        }
        if is_error(sw) && *state != before {
            assert!(
                counted_try(command, &before, state),
                "{name}: the failed command {:02X?} (SW {:02X}{:02X}) changed the card",
                &command[..command.len().min(4)],
                sw[0],
                sw[1]
            );
        }
    }
}

/// Whether `command` is an OpenPGP GENERATE ASYMMETRIC KEY PAIR of a slot whose attributes
/// say RSA, or a PIV one whose algorithm is RSA (`80 01 07` in its data). Such commands are left out: OpenSSL takes 100 ms or more for each RSA key, and the
/// fuzzer, which soon learns PW3 from the seeds, would spend nearly all its time generating
/// keys (RSA generation is tested by the OpenPGP unit and GnuPG integration tests). Every other
/// algorithm's generation is fuzzed.
pub(crate) fn generates_rsa(command: &[u8], state: &CardState) -> bool {
    // PIV: `00 47 00 <slot>`, data `AC { 80 07 (RSA 2048) .. }`, short or extended.
    if let Ok(parsed) = vsc_core::apdu::Command::parse(command)
        && parsed.ins == 0x47
        && parsed.p1 == 0x00
        && parsed.data.windows(3).any(|w| w == [0x80, 0x01, 0x07])
    {
        return true;
    }
    // OpenPGP: `00 47 80 00`, data the slot's CRT; RSA when the slot's attributes say so.
    let [_, 0x47, 0x80, _, _, crt, ..] = command else {
        return false;
    };
    let slot = match crt {
        0xB6 => Slot::Signature,
        0xB8 => Slot::Decryption,
        0xA4 => Slot::Authentication,
        _ => return false,
    };
    state.applications.iter().any(|application| {
        let Application::OpenPgp(app) = application else {
            return false;
        };
        app.slot(slot).attributes.to_bytes().first() == Some(&0x01)
    })
}

/// An execution error with the memory unchanged (`64xx`) or a checking error (`67xx`–`6Fxx`):
/// ISO 7816-4 §5.6 says the card's memory is as it was.
pub fn is_error(sw: [u8; 2]) -> bool {
    matches!(sw[0], 0x64 | 0x67..=0x6F)
}

/// Whether the only change from `before` to `after` is one retry counter counted down by a
/// password command (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, either parity).
fn counted_try(command: &[u8], before: &CardState, after: &CardState) -> bool {
    let Some(&ins) = command.get(1) else {
        return false;
    };
    if !matches!(ins, 0x20 | 0x21 | 0x24 | 0x25 | 0x2C | 0x2D) {
        return false;
    }
    let same_but_passwords = before.life_cycle == after.life_cycle
        && before.fs == after.fs
        && before.keys == after.keys
        && before.applications.len() == after.applications.len()
        && before
            .applications
            .iter()
            .zip(&after.applications)
            .all(|(b, a)| {
                let (b, a) = (b.split(), a.split());
                b.public == a.public && b.private == a.private && b.keys == a.keys
            });
    if !same_but_passwords {
        return false;
    }
    // The password areas as the image holds them: a retry counter is one byte of them.
    let passwords = |state: &CardState| {
        let mut bytes = postcard::to_allocvec(&state.passwords).unwrap_or_default();
        for application in &state.applications {
            bytes.extend(postcard::to_allocvec(&application.split().passwords).unwrap_or_default());
        }
        bytes
    };
    let (b, a) = (passwords(before), passwords(after));
    let differing: Vec<_> = b.iter().zip(&a).filter(|(x, y)| x != y).collect();
    b.len() == a.len() && matches!(differing.as_slice(), [(x, y)] if x.checked_sub(1) == Some(**y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        let long = vec![0x5A; 300];
        let ops = [
            Op::Command(&[0x00, 0xA4, 0x00, 0x0C]),
            Op::Reset,
            Op::Command(&long),
            Op::Command(&[]),
        ];
        let encoded = encode(3, &ops);
        assert_eq!(encoded[0], 3);
        assert_eq!(decode(&encoded[1..]), ops);
    }

    #[test]
    fn a_wrong_pin_counts_and_fails_without_changing_anything_else() {
        // OpenPGP answers a wrong PW1 with 6982 and counts the try: allowed.
        let token = cards()
            .iter()
            .position(|card| card.name.starts_with("OpenPGP token"))
            .unwrap() as u8;
        let select = hex::decode("00A4040006D27600012401").unwrap();
        let wrong = hex::decode("0020008106393939393939").unwrap();
        run(&encode(token, &[Op::Command(&select), Op::Command(&wrong)]));
    }

    #[test]
    fn only_a_counted_try_is_excused() {
        let mut card = vsc_core::sample::card();
        let before = card.state().clone();
        let wrong = hex::decode("0020000108393939393939FFFF").unwrap();
        assert_eq!(card.transmit(&wrong), [0x63, 0xC2]);
        assert!(counted_try(&wrong, &before, card.state()));
        let read = hex::decode("00B0000001").unwrap();
        assert!(
            !counted_try(&read, &before, card.state()),
            "not a password command"
        );
        let mut terminated = card.state().clone();
        terminated.life_cycle = vsc_core::card::LifeCycle::Terminated;
        assert!(!counted_try(&wrong, &before, &terminated));
        assert!(!counted_try(&wrong, &before, &before), "nothing counted");
    }
}
