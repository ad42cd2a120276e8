//! Password objects, the platform's for every application: a value, a retry counter and length
//! limits; and the VSC file system's password area, the user PIN (reference `01`) and the PUK
//! (reference `02`).
//!
//! The VSC's reference data travels padded: exactly `max_len` bytes, the password's printable
//! ASCII characters followed by `FF` bytes (as PIV and OpenSC's `pin_pad_char` do), so that
//! CHANGE REFERENCE DATA and RESET RETRY COUNTER can carry two values without a separator.
//! OpenPGP's passwords are plain: `min_len` to `max_len` bytes, no padding.
//!
//! A try is two steps, so that the host can make the counted try durable in between:
//! [`Password::begin_try`] checks the form and takes the try off the counter, and only then
//! [`Password::finish_try`] compares (in constant time) and gives the try back on a match.

use serde::{Deserialize, Serialize};

use super::SecretBytes;
use crate::apdu::Status;

/// The padding byte after a password's characters.
pub const PAD: u8 = 0xFF;
/// The longest padded password the card stores.
pub const MAX_LEN: u8 = 16;
/// The longest plain password the card stores (OpenPGP's PW status bytes allow 127).
pub const MAX_PLAIN_LEN: u8 = 127;
/// The most tries a retry counter can hold (it shows in `63Cx`).
pub const MAX_TRIES: u8 = 15;

/// Which password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PasswordRef {
    /// The user PIN, reference `01`.
    UserPin,
    /// The PIN unblocking key, reference `02`.
    Puk,
}

impl PasswordRef {
    /// The reference as P2 of VERIFY names it (global references `01`, `02`; the DF-specific
    /// forms `81`, `82` name the same passwords).
    pub fn from_p2(p2: u8) -> Result<PasswordRef, Status> {
        match p2 & 0x7F {
            0x01 => Ok(PasswordRef::UserPin),
            0x02 => Ok(PasswordRef::Puk),
            _ => Err(Status::ReferencedDataNotFound),
        }
    }

    /// The reference byte.
    pub fn byte(self) -> u8 {
        match self {
            PasswordRef::UserPin => 0x01,
            PasswordRef::Puk => 0x02,
        }
    }

    fn index(self) -> usize {
        match self {
            PasswordRef::UserPin => 0,
            PasswordRef::Puk => 1,
        }
    }
}

/// How reference data travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PasswordFormat {
    /// Exactly `max_len` bytes: printable ASCII characters, then `FF` padding (the VSC).
    Padded,
    /// `min_len` to `max_len` bytes as they are (OpenPGP's UTF-8 passwords).
    Plain,
}

/// The limits a password obeys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    /// The fewest characters.
    pub min_len: u8,
    /// The most characters, and the padded length.
    pub max_len: u8,
    /// Wrong tries before the password blocks (1 to 15).
    pub max_tries: u8,
    /// How the reference data travels.
    pub format: PasswordFormat,
}

impl PasswordPolicy {
    /// A policy, if its numbers make sense: 1 ≤ min ≤ max ≤ 16, 1 to 15 tries.
    pub fn new(min_len: u8, max_len: u8, max_tries: u8) -> Result<PasswordPolicy, Status> {
        let lengths = 1 <= min_len && min_len <= max_len && max_len <= MAX_LEN;
        if lengths && (1..=MAX_TRIES).contains(&max_tries) {
            Ok(PasswordPolicy {
                min_len,
                max_len,
                max_tries,
                format: PasswordFormat::Padded,
            })
        } else {
            Err(Status::IncorrectData)
        }
    }

    /// A policy for plain reference data: 1 ≤ min ≤ max ≤ 127, 1 to 15 tries.
    pub fn plain(min_len: u8, max_len: u8, max_tries: u8) -> Result<PasswordPolicy, Status> {
        let lengths = 1 <= min_len && min_len <= max_len && max_len <= MAX_PLAIN_LEN;
        if lengths && (1..=MAX_TRIES).contains(&max_tries) {
            Ok(PasswordPolicy {
                min_len,
                max_len,
                max_tries,
                format: PasswordFormat::Plain,
            })
        } else {
            Err(Status::IncorrectData)
        }
    }

    /// Checks reference data and returns it unchanged. Padded: exactly `max_len` bytes,
    /// printable ASCII characters then `FF` padding, `min_len` to `max_len` characters. Plain:
    /// `min_len` to `max_len` bytes.
    pub fn check<'a>(&self, padded: &'a [u8]) -> Result<&'a [u8], Status> {
        if self.format == PasswordFormat::Plain {
            let len = padded.len();
            return if (usize::from(self.min_len)..=usize::from(self.max_len)).contains(&len) {
                Ok(padded)
            } else {
                Err(Status::IncorrectData)
            };
        }
        if padded.len() != usize::from(self.max_len) {
            return Err(Status::IncorrectData);
        }
        let chars = padded.iter().take_while(|b| **b != PAD).count();
        let printable = padded[..chars].iter().all(|b| (0x20..=0x7E).contains(b));
        let padding = padded[chars..].iter().all(|b| *b == PAD);
        if printable && padding && chars >= usize::from(self.min_len) {
            Ok(padded)
        } else {
            Err(Status::IncorrectData)
        }
    }

    /// Pads a password's characters to reference data (for terminals and tests).
    pub fn pad(&self, chars: &[u8]) -> Vec<u8> {
        let mut out = chars.to_vec();
        out.resize(usize::from(self.max_len).max(chars.len()), PAD);
        out
    }
}

/// A password object: its policy, retry counter and value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Password {
    /// Its limits.
    pub policy: PasswordPolicy,
    /// Tries left before it blocks; 0 means blocked.
    pub tries_left: u8,
    /// The padded reference data, once personalized.
    value: Option<SecretBytes>,
}

/// What checking a presented password found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// It matched; the counter is back at its maximum.
    Matched,
    /// It did not match; the counter went down (and may now be 0).
    Mismatched,
}

impl Password {
    /// A password object without a value yet.
    pub fn new(policy: PasswordPolicy) -> Password {
        Password {
            policy,
            tries_left: policy.max_tries,
            value: None,
        }
    }

    /// A password object as an image holds it.
    pub(crate) fn from_parts(
        policy: PasswordPolicy,
        tries_left: u8,
        value: Option<SecretBytes>,
    ) -> Password {
        Password {
            policy,
            tries_left,
            value,
        }
    }

    /// Whether it is blocked.
    pub fn is_blocked(&self) -> bool {
        self.tries_left == 0
    }

    /// The length of its value, if it has one (OpenPGP splits "old ‖ new" by it).
    pub fn value_len(&self) -> Option<usize> {
        self.value.as_ref().map(SecretBytes::len)
    }

    /// Whether it has a value.
    pub fn is_set(&self) -> bool {
        self.value.is_some()
    }

    /// Checks `presented` (reference data) in one go: [`Password::begin_try`], then
    /// [`Password::finish_try`]. A host that persists the card makes the counted try durable
    /// between the two (the card OS does).
    pub fn verify(&mut self, presented: &[u8]) -> Result<Verification, Status> {
        self.begin_try(presented)?;
        Ok(self.finish_try(presented))
    }

    /// The first step of a try: the password must have a value and tries left, and `presented`
    /// must have the policy's form (otherwise the try costs nothing); then the counter goes
    /// down. Nothing is compared yet.
    pub fn begin_try(&mut self, presented: &[u8]) -> Result<(), Status> {
        if self.value.is_none() {
            return Err(Status::ReferenceDataNotUsable);
        }
        if self.tries_left == 0 {
            return Err(Status::AuthenticationMethodBlocked);
        }
        self.policy.check(presented)?;
        self.tries_left -= 1;
        Ok(())
    }

    /// The second step of a try, after [`Password::begin_try`] (and after the counted try was
    /// made durable): the comparison, in constant time; a match puts the counter back.
    pub fn finish_try(&mut self, presented: &[u8]) -> Verification {
        match &self.value {
            Some(value) if value.ct_eq(presented) => {
                self.tries_left = self.policy.max_tries;
                Verification::Matched
            }
            _ => Verification::Mismatched,
        }
    }

    /// Whether the value is `known`, compared in constant time and without a try: to tell a
    /// factory default (PIV's GET METADATA), never to check what a terminal presented.
    pub fn has_value(&self, known: &[u8]) -> bool {
        self.value.as_ref().is_some_and(|value| value.ct_eq(known))
    }

    /// Removes the value (OpenPGP's resetting code, deleted by an empty PUT DATA).
    pub fn clear(&mut self) {
        self.value = None;
        self.tries_left = 0;
    }

    /// Sets a new value (checked against the policy) and resets the counter.
    pub fn set(&mut self, padded: &[u8]) -> Result<(), Status> {
        self.policy.check(padded)?;
        self.value = Some(SecretBytes::new(padded));
        self.tries_left = self.policy.max_tries;
        Ok(())
    }

    /// Resets the counter (RESET RETRY COUNTER without a new value).
    pub fn unblock(&mut self) {
        self.tries_left = self.policy.max_tries;
    }

    /// The status VERIFY with an empty body answers: `9000` when `verified`, `63Cx` otherwise,
    /// `6983` when blocked.
    pub fn state_status(&self, verified: bool) -> Status {
        if self.tries_left == 0 {
            Status::AuthenticationMethodBlocked
        } else if verified {
            Status::Success
        } else {
            Status::TriesLeft(self.tries_left)
        }
    }
}

/// The password area: the user PIN and the PUK, each present once pre-initialization made it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordArea {
    passwords: [Option<Password>; 2],
}

impl PasswordArea {
    /// The area with these objects (user PIN, PUK), as an image holds them.
    pub(crate) fn from_slots(passwords: [Option<Password>; 2]) -> PasswordArea {
        PasswordArea { passwords }
    }

    /// The password `reference`.
    pub fn get(&self, reference: PasswordRef) -> Option<&Password> {
        self.passwords[reference.index()].as_ref()
    }

    /// The password `reference`, to change it.
    pub fn get_mut(&mut self, reference: PasswordRef) -> Option<&mut Password> {
        self.passwords[reference.index()].as_mut()
    }

    /// Creates (or replaces) password `reference` with `policy` and no value.
    pub fn define(&mut self, reference: PasswordRef, policy: PasswordPolicy) {
        self.passwords[reference.index()] = Some(Password::new(policy));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> Password {
        let mut pin = Password::new(PasswordPolicy::new(4, 8, 3).unwrap());
        pin.set(b"1234\xFF\xFF\xFF\xFF").unwrap();
        pin
    }

    #[test]
    fn counter_goes_down_and_back_up() {
        let mut pin = pin();
        assert_eq!(
            pin.verify(b"9999\xFF\xFF\xFF\xFF"),
            Ok(Verification::Mismatched)
        );
        assert_eq!(pin.tries_left, 2);
        assert_eq!(
            pin.verify(b"1234\xFF\xFF\xFF\xFF"),
            Ok(Verification::Matched)
        );
        assert_eq!(pin.tries_left, 3);
        for left in [2, 1, 0] {
            assert_eq!(
                pin.verify(b"0000\xFF\xFF\xFF\xFF"),
                Ok(Verification::Mismatched)
            );
            assert_eq!(pin.tries_left, left);
        }
        assert_eq!(
            pin.verify(b"1234\xFF\xFF\xFF\xFF"),
            Err(Status::AuthenticationMethodBlocked)
        );
        assert_eq!(pin.state_status(false), Status::AuthenticationMethodBlocked);
    }

    #[test]
    fn badly_formatted_values_cost_no_try() {
        let mut pin = pin();
        for bad in [
            &b"1234"[..],
            b"123\xFF\xFF\xFF\xFF\xFF",
            b"12\xFF4\xFF\xFF\xFF\xFF",
            b"1234\x00\xFF\xFF\xFF",
        ] {
            assert_eq!(pin.verify(bad), Err(Status::IncorrectData));
        }
        assert_eq!(pin.tries_left, 3);
        assert!(pin.set(b"123456789").is_err());
    }

    #[test]
    fn an_unset_password_is_not_usable() {
        let mut pin = Password::new(PasswordPolicy::new(4, 8, 3).unwrap());
        assert_eq!(
            pin.verify(b"1234\xFF\xFF\xFF\xFF"),
            Err(Status::ReferenceDataNotUsable)
        );
        assert!(PasswordPolicy::new(0, 8, 3).is_err() && PasswordPolicy::new(4, 17, 3).is_err());
        assert!(PasswordPolicy::new(4, 8, 16).is_err() && PasswordPolicy::new(5, 4, 3).is_err());
    }
}
