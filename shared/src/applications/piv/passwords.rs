//! VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER (SP 800-73-4 part 2 §3.2.1, §3.2.2,
//! §3.2.3) for the PIN (key reference `80`) and the PUK (`81`).
//!
//! Every try goes through the platform's [`Card::try_password`]: counted and made durable
//! before it is compared. A wrong value answers `63Cx` (tries left), a blocked password
//! `6983`, a value not of the padded form (6 to 8 characters, `FF` up to 8 bytes) `6A80` and
//! costs no try.

use super::{Piv, PivPassword};
use crate::apdu::{Command, Status};
use crate::applications::{AppPassword, Hosted};
use crate::card::{Card, PasswordId};
use crate::security::password::Verification;

/// The password a key reference names: `80` the PIN, `81` the PUK; the global PIN (`00`), the
/// pairing code (`96`) and the OCC (`98`) are not on this card.
fn reference(p2: u8) -> Result<PivPassword, Status> {
    match p2 {
        0x80 => Ok(PivPassword::Pin),
        0x81 => Ok(PivPassword::Puk),
        _ => Err(Status::ReferencedDataNotFound),
    }
}

fn id(index: usize, which: PivPassword) -> PasswordId {
    PasswordId::Application(index, AppPassword::Piv(which))
}

/// Presents `value` to `which`: `Ok` on a match, `63Cx` with the tries left when wrong.
fn present(card: &mut Card, index: usize, which: PivPassword, value: &[u8]) -> Result<(), Status> {
    match card.try_password(id(index, which), value)? {
        Verification::Matched => Ok(()),
        Verification::Mismatched => Err(Status::TriesLeft(
            Piv::of(card, index)?.password(which).tries_left,
        )),
    }
}

fn set_pin_verified(card: &mut Card, verified: bool) -> Result<(), Status> {
    let session = Piv::session_of(card)?;
    session.pin = verified;
    session.pin_for_always = verified;
    Ok(())
}

/// VERIFY: P1 `00` with the PIN (8 bytes) verifies it; with no data it asks the status (`9000`
/// verified, `63Cx` tries left, `6983` blocked; the PUK's counter too); P1 `FF` with no data
/// forgets the verification. A failed try forgets an earlier success.
pub(super) fn verify(card: &mut Card, index: usize, command: &Command) -> Result<Status, Status> {
    let which = reference(command.p2)?;
    match (command.p1, command.data) {
        (0xFF, []) => {
            if which == PivPassword::Pin {
                set_pin_verified(card, false)?;
            }
            Ok(Status::Success)
        }
        (0xFF, _) => Err(Status::WrongLength),
        (0x00, []) => {
            let verified = which == PivPassword::Pin && Piv::session_of(card)?.pin;
            match Piv::of(card, index)?.password(which).state_status(verified) {
                Status::Success => Ok(Status::Success),
                other => Err(other),
            }
        }
        // The PUK only unblocks the PIN; it is not verified on its own.
        (0x00, _) if which == PivPassword::Puk => Err(Status::ReferencedDataNotFound),
        (0x00, value) => {
            set_pin_verified(card, false)?;
            present(card, index, PivPassword::Pin, value)?;
            set_pin_verified(card, true)?;
            Ok(Status::Success)
        }
        _ => Err(Status::IncorrectP1P2),
    }
}

/// Checks "current ‖ new" (8 bytes each): both of the padded form, the new one first, before
/// anything is tried, so a malformed new value costs nothing.
fn check_pair(card: &Card, index: usize, which: PivPassword, data: &[u8]) -> Result<(), Status> {
    if data.len() != 16 {
        return Err(Status::IncorrectData);
    }
    let password = Piv::of(card, index)?.password(which);
    password.policy.check(&data[8..])?;
    password.policy.check(&data[..8])?;
    if password.is_blocked() {
        return Err(Status::AuthenticationMethodBlocked);
    }
    Ok(())
}

/// CHANGE REFERENCE DATA (P1 `00`, P2 `80` or `81`): current ‖ new. On success the PIN counts
/// as verified (SP 800-73-4 part 2 §3.2.2).
pub(super) fn change_reference_data(
    card: &mut Card,
    index: usize,
    command: &Command,
) -> Result<Status, Status> {
    if command.p1 != 0x00 {
        return Err(Status::IncorrectP1P2);
    }
    let which = reference(command.p2)?;
    check_pair(card, index, which, command.data)?;
    let (current, new) = command.data.split_at(8);
    if which == PivPassword::Pin {
        set_pin_verified(card, false)?;
    }
    present(card, index, which, current)?;
    Piv::of_mut(card, index)?.password_mut(which).set(new)?;
    if which == PivPassword::Pin {
        set_pin_verified(card, true)?;
    }
    Ok(Status::Success)
}

/// RESET RETRY COUNTER (P1 `00`, P2 `80`): PUK ‖ new PIN. The PUK's try is counted; on a match
/// the PIN gets the new value and its full counter.
pub(super) fn reset_retry_counter(
    card: &mut Card,
    index: usize,
    command: &Command,
) -> Result<Status, Status> {
    if command.p1 != 0x00 || command.p2 != 0x80 {
        return Err(Status::IncorrectP1P2);
    }
    if command.data.len() != 16 {
        return Err(Status::IncorrectData);
    }
    let (puk, new) = command.data.split_at(8);
    let state = Piv::of(card, index)?;
    state.passwords.pin.policy.check(new)?;
    state.passwords.puk.policy.check(puk)?;
    if state.passwords.puk.is_blocked() {
        return Err(Status::AuthenticationMethodBlocked);
    }
    present(card, index, PivPassword::Puk, puk)?;
    Piv::of_mut(card, index)?.passwords.pin.set(new)?;
    set_pin_verified(card, false)?;
    Ok(Status::Success)
}
