//! VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER (§7.2.2–7.2.4), GET CHALLENGE, and the
//! life cycle: TERMINATE DF and ACTIVATE FILE (factory reset, §7.2.16–7.2.17).
//!
//! Every try of PW1, PW3 or the resetting code goes through the platform's
//! [`Card::try_password`]: counted and made durable before it is compared.

use rand::RngCore;

use super::{OpenPgp, Pw};
use crate::apdu::{Command, Status};
use crate::applications::{AppPassword, Hosted};
use crate::card::{Card, PasswordId};
use crate::security::password::Verification;

/// P2 of VERIFY: which password, and what a success unlocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reference {
    /// `81`: PW1 for PSO: COMPUTE DIGITAL SIGNATURE.
    Pw1Sign,
    /// `82`: PW1 for everything else.
    Pw1Other,
    /// `83`: PW3.
    Pw3,
}

impl Reference {
    fn from_p2(p2: u8) -> Result<Reference, Status> {
        match p2 {
            0x81 => Ok(Reference::Pw1Sign),
            0x82 => Ok(Reference::Pw1Other),
            0x83 => Ok(Reference::Pw3),
            _ => Err(Status::IncorrectP1P2),
        }
    }

    fn password(self) -> Pw {
        match self {
            Reference::Pw1Sign | Reference::Pw1Other => Pw::Pw1,
            Reference::Pw3 => Pw::Pw3,
        }
    }
}

fn id(index: usize, pw: Pw) -> PasswordId {
    PasswordId::Application(index, AppPassword::OpenPgp(pw))
}

/// Presents `value` to `pw`: `Ok` on a match; `6982` (counted) when wrong, `6983` when blocked.
fn present(card: &mut Card, index: usize, pw: Pw, value: &[u8]) -> Result<(), Status> {
    match card.try_password(id(index, pw), value) {
        Ok(Verification::Matched) => Ok(()),
        Ok(Verification::Mismatched) => Err(Status::SecurityStatusNotSatisfied),
        // A value of a length no password can have costs no try; it is just as wrong.
        Err(Status::IncorrectData) => Err(Status::SecurityStatusNotSatisfied),
        Err(status) => Err(status),
    }
}

fn set_verified(card: &mut Card, reference: Reference, verified: bool) -> Result<(), Status> {
    let session = OpenPgp::session_of(card)?;
    match reference {
        Reference::Pw1Sign => session.pw1_sign = verified,
        Reference::Pw1Other => session.pw1_other = verified,
        Reference::Pw3 => session.pw3 = verified,
    }
    Ok(())
}

pub(super) fn verify(card: &mut Card, index: usize, command: &Command) -> Result<Status, Status> {
    let reference = Reference::from_p2(command.p2)?;
    match (command.p1, command.data) {
        (0xFF, []) => {
            set_verified(card, reference, false)?;
            Ok(Status::Success)
        }
        (0xFF, _) => Err(Status::WrongLength),
        (0x00, []) => {
            let session = *OpenPgp::session_of(card)?;
            let verified = match reference {
                Reference::Pw1Sign => session.pw1_sign,
                Reference::Pw1Other => session.pw1_other,
                Reference::Pw3 => session.pw3,
            };
            match OpenPgp::of(card, index)?
                .password(reference.password())
                .state_status(verified)
            {
                Status::Success => Ok(Status::Success),
                other => Err(other),
            }
        }
        (0x00, value) => {
            set_verified(card, reference, false)?;
            present(card, index, reference.password(), value)?;
            set_verified(card, reference, true)?;
            Ok(Status::Success)
        }
        _ => Err(Status::IncorrectP1P2),
    }
}

/// Splits `data` into the current value (as long as the stored one) and the new one.
fn split(app: &OpenPgp, pw: Pw, data: &[u8]) -> Result<(usize, usize), Status> {
    let current = app
        .password(pw)
        .value_len()
        .ok_or(Status::ReferenceDataNotUsable)?;
    if data.len() <= current {
        return Err(Status::WrongLength);
    }
    Ok((current, data.len() - current))
}

pub(super) fn change_reference_data(
    card: &mut Card,
    index: usize,
    command: &Command,
) -> Result<Status, Status> {
    if command.p1 != 0x00 {
        return Err(Status::IncorrectP1P2);
    }
    let pw = match command.p2 {
        0x81 => Pw::Pw1,
        0x83 => Pw::Pw3,
        _ => return Err(Status::IncorrectP1P2),
    };
    let app_state = OpenPgp::of(card, index)?;
    if app_state.password(pw).is_blocked() {
        return Err(Status::AuthenticationMethodBlocked);
    }
    let (at, _) = split(app_state, pw, command.data)?;
    let (old, new) = command.data.split_at(at);
    app_state.password(pw).policy.check(new)?;
    present(card, index, pw, old)?;
    let app = OpenPgp::of_mut(card, index)?;
    match pw {
        Pw::Pw1 => app.passwords.pw1.set(new)?,
        _ => app.passwords.pw3.set(new)?,
    }
    let session = OpenPgp::session_of(card)?;
    match pw {
        Pw::Pw1 => {
            session.pw1_sign = false;
            session.pw1_other = false;
        }
        _ => session.pw3 = false,
    }
    Ok(Status::Success)
}

pub(super) fn reset_retry_counter(
    card: &mut Card,
    index: usize,
    command: &Command,
) -> Result<Status, Status> {
    if command.p2 != 0x81 {
        return Err(Status::IncorrectP1P2);
    }
    let new = match command.p1 {
        0x00 => {
            let app_state = OpenPgp::of(card, index)?;
            if !app_state.passwords.rc.is_set() {
                return Err(Status::SecurityStatusNotSatisfied);
            }
            if app_state.passwords.rc.is_blocked() {
                return Err(Status::AuthenticationMethodBlocked);
            }
            let (at, _) = split(app_state, Pw::Rc, command.data)?;
            let (code, new) = command.data.split_at(at);
            app_state.passwords.pw1.policy.check(new)?;
            present(card, index, Pw::Rc, code)?;
            new
        }
        0x02 => {
            if !OpenPgp::session_of(card)?.pw3 {
                return Err(Status::SecurityStatusNotSatisfied);
            }
            OpenPgp::of(card, index)?
                .passwords
                .pw1
                .policy
                .check(command.data)?;
            command.data
        }
        _ => return Err(Status::IncorrectP1P2),
    };
    OpenPgp::of_mut(card, index)?.passwords.pw1.set(new)?;
    let session = OpenPgp::session_of(card)?;
    session.pw1_sign = false;
    session.pw1_other = false;
    Ok(Status::Success)
}

/// GET CHALLENGE: 1 to 255 random bytes from the operating system.
pub(super) fn get_challenge(command: &Command, out: &mut Vec<u8>) -> Result<Status, Status> {
    if command.p1 != 0 || command.p2 != 0 {
        return Err(Status::IncorrectP1P2);
    }
    if !command.data.is_empty() {
        return Err(Status::WrongLength);
    }
    let len = command.ne.ok_or(Status::WrongLength)?;
    if len > super::MAX_CHALLENGE {
        return Err(Status::WrongLe(super::MAX_CHALLENGE as u8));
    }
    let start = out.len();
    out.resize(start + len, 0);
    rand::rngs::OsRng.fill_bytes(&mut out[start..]);
    Ok(Status::Success)
}

/// TERMINATE DF: after PW3, or when PW3 is blocked (so that a token whose admin PIN is lost
/// can still be reset).
pub(super) fn terminate(
    card: &mut Card,
    index: usize,
    command: &Command,
) -> Result<Status, Status> {
    if command.p1 != 0 || command.p2 != 0 {
        return Err(Status::IncorrectP1P2);
    }
    if !command.data.is_empty() {
        return Err(Status::WrongLength);
    }
    let blocked = OpenPgp::of(card, index)?.passwords.pw3.is_blocked();
    if !(OpenPgp::session_of(card)?.pw3 || blocked) {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    OpenPgp::of_mut(card, index)?.public.terminated = true;
    *OpenPgp::session_of(card)? = super::Session::default();
    Ok(Status::Success)
}

/// ACTIVATE FILE: a terminated application comes back in its factory state; an active one
/// stays as it is.
pub(super) fn activate(card: &mut Card, index: usize, command: &Command) -> Result<Status, Status> {
    if command.p1 != 0 || command.p2 != 0 {
        return Err(Status::IncorrectP1P2);
    }
    if !command.data.is_empty() {
        return Err(Status::WrongLength);
    }
    if OpenPgp::of(card, index)?.public.terminated {
        *OpenPgp::of_mut(card, index)? = OpenPgp::factory();
        *OpenPgp::session_of(card)? = super::Session::default();
    }
    Ok(Status::Success)
}
