//! VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER: the user PIN and the PUK.

use super::{Card, Context, LifeCycle, Outcome, PasswordId};
use crate::apdu::{Command, Status};
use crate::security::password::Verification;
use crate::security::{Password, PasswordRef};

impl Card {
    /// VERIFY: P1 `00` checks the data against the password (an empty body asks for the
    /// state: `9000` verified, `63Cx` tries left, `6983` blocked); P1 `FF` forgets a
    /// verification.
    pub(super) fn verify(&mut self, command: &Command) -> Outcome {
        let (reference, password) = self.password(command.p2)?;
        match (command.p1, command.data) {
            (0xFF, []) => {
                self.set_verified(reference, false);
                Ok(Status::Success)
            }
            (0xFF, _) => Err(Status::WrongLength),
            (0x00, []) => match password.state_status(self.verified(reference)) {
                Status::Success => Ok(Status::Success),
                other => Err(other),
            },
            (0x00, presented) => self
                .check_password(reference, presented)
                .map(|()| Status::Success),
            _ => Err(Status::IncorrectP1P2),
        }
    }

    /// CHANGE REFERENCE DATA: P1 `00` with the old and the new value, P1 `01` with the new value
    /// only (once verified, or while the card is being personalized).
    pub(super) fn change_reference_data(&mut self, command: &Command, ctx: Context) -> Outcome {
        let (reference, password) = self.password(command.p2)?;
        let len = usize::from(password.policy.max_len);
        let new = match command.p1 {
            0x00 => {
                if command.data.len() != 2 * len {
                    return Err(Status::WrongLength);
                }
                let (old, new) = command.data.split_at(len);
                password.policy.check(new)?;
                self.check_password(reference, old)?;
                new
            }
            0x01 => {
                if !(self.personalizing(ctx) || self.verified(reference)) {
                    return Err(Status::SecurityStatusNotSatisfied);
                }
                command.data
            }
            _ => return Err(Status::IncorrectP1P2),
        };
        self.set_password(reference, new)?;
        Ok(Status::Success)
    }

    /// RESET RETRY COUNTER of the user PIN with the PUK: P1 `00` PUK and new PIN, `01` PUK
    /// only, `02` new PIN only and `03` nothing (the PUK verified before, or personalization).
    pub(super) fn reset_retry_counter(&mut self, command: &Command, ctx: Context) -> Outcome {
        if PasswordRef::from_p2(command.p2)? != PasswordRef::UserPin {
            return Err(Status::IncorrectP1P2);
        }
        let pin = self
            .state
            .passwords
            .get(PasswordRef::UserPin)
            .ok_or(Status::ReferencedDataNotFound)?;
        let puk = self
            .state
            .passwords
            .get(PasswordRef::Puk)
            .ok_or(Status::ReferencedDataNotFound)?;
        let (puk_len, pin_len) = (
            usize::from(puk.policy.max_len),
            usize::from(pin.policy.max_len),
        );
        let authorized = self.session.puk || self.personalizing(ctx);
        let (presented_puk, new_pin) = match (command.p1, command.data.len()) {
            (0x00, n) if n == puk_len + pin_len => {
                let (puk, pin) = command.data.split_at(puk_len);
                (Some(puk), Some(pin))
            }
            (0x01, n) if n == puk_len => (Some(command.data), None),
            (0x02, n) if n == pin_len && authorized => (None, Some(command.data)),
            (0x03, 0) if authorized => (None, None),
            (0x02 | 0x03, _) if !authorized => return Err(Status::SecurityStatusNotSatisfied),
            (0x00..=0x03, _) => return Err(Status::WrongLength),
            _ => return Err(Status::IncorrectP1P2),
        };
        if let Some(new_pin) = new_pin {
            pin.policy.check(new_pin)?;
        }
        if let Some(presented) = presented_puk {
            self.check_password(PasswordRef::Puk, presented)?;
        }
        match new_pin {
            Some(new_pin) => self.set_password(PasswordRef::UserPin, new_pin)?,
            None => {
                if let Some(pin) = self.state.passwords.get_mut(PasswordRef::UserPin) {
                    pin.unblock();
                }
                self.touch();
            }
        }
        // The PUK's authority is spent on this reset.
        self.session.user_pin = false;
        self.session.puk = false;
        Ok(Status::Success)
    }

    /// The password P2 names.
    fn password(&self, p2: u8) -> Result<(PasswordRef, &Password), Status> {
        let reference = PasswordRef::from_p2(p2)?;
        let password = self
            .state
            .passwords
            .get(reference)
            .ok_or(Status::ReferencedDataNotFound)?;
        Ok((reference, password))
    }

    /// Checks a presented password, the try counted and made durable before the comparison;
    /// `63Cx` when it does not match.
    fn check_password(&mut self, reference: PasswordRef, presented: &[u8]) -> Result<(), Status> {
        match self.try_password(PasswordId::Vsc(reference), presented)? {
            Verification::Matched => {
                self.set_verified(reference, true);
                Ok(())
            }
            Verification::Mismatched => {
                self.set_verified(reference, false);
                let left = self
                    .state
                    .passwords
                    .get(reference)
                    .map_or(0, |p| p.tries_left);
                Err(Status::TriesLeft(left))
            }
        }
    }

    fn set_password(&mut self, reference: PasswordRef, padded: &[u8]) -> Result<(), Status> {
        let password = self
            .state
            .passwords
            .get_mut(reference)
            .ok_or(Status::ReferencedDataNotFound)?;
        password.set(padded)?;
        self.set_verified(reference, false);
        self.touch();
        Ok(())
    }

    /// Whether the command comes from the issuer's side: a blank chip, or the channel while
    /// pre-initialized.
    fn personalizing(&self, ctx: Context) -> bool {
        match self.state.life_cycle {
            LifeCycle::Creation => true,
            LifeCycle::Initialisation => ctx.channel,
            LifeCycle::Operational | LifeCycle::Terminated => false,
        }
    }

    fn verified(&self, reference: PasswordRef) -> bool {
        match reference {
            PasswordRef::UserPin => self.session.user_pin,
            PasswordRef::Puk => self.session.puk,
        }
    }

    fn set_verified(&mut self, reference: PasswordRef, verified: bool) {
        match reference {
            PasswordRef::UserPin => self.session.user_pin = verified,
            PasswordRef::Puk => self.session.puk = verified,
        }
    }
}
