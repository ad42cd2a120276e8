//! GET CHALLENGE, INTERNAL AUTHENTICATE and EXTERNAL AUTHENTICATE with the AES key objects.
//!
//! Both authentications are AES-CMAC (RFC 4493, full 16 bytes): INTERNAL AUTHENTICATE answers
//! CMAC(key, data) over the terminal's challenge; EXTERNAL AUTHENTICATE expects CMAC(key,
//! challenge) over the card's last challenge, which it uses up either way. Keys are used only
//! for what their usage allows, so no key serves both directions.

use rand::RngCore;

use super::session::Challenge;
use super::{Card, Outcome};
use crate::apdu::{Command, Status};
use crate::crypto::AesKey;
use crate::security::{KeyAlgorithm, KeyRef, KeyUsage, SecretBytes};

/// The longest data INTERNAL AUTHENTICATE takes.
pub const MAX_AUTHENTICATION_DATA: usize = 256;

impl Card {
    /// GET CHALLENGE: 8 or 16 random bytes, kept for EXTERNAL AUTHENTICATE.
    pub(super) fn get_challenge(&mut self, command: &Command, out: &mut Vec<u8>) -> Outcome {
        if command.p1 != 0 || command.p2 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        if !command.data.is_empty() {
            return Err(Status::WrongLength);
        }
        let len = match command.ne {
            Some(len @ (8 | 16)) => len,
            Some(_) => return Err(Status::WrongLe(8)),
            None => return Err(Status::WrongLength),
        };
        let mut bytes = [0; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes[..len]);
        out.extend_from_slice(&bytes[..len]);
        self.session.challenge = Some(Challenge { bytes, len });
        Ok(Status::Success)
    }

    /// INTERNAL AUTHENTICATE: P2 names the key; the answer is CMAC(key, data).
    pub(super) fn internal_authenticate(
        &mut self,
        command: &Command,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if command.p1 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        if command.data.is_empty() || command.data.len() > MAX_AUTHENTICATION_DATA {
            return Err(Status::WrongLength);
        }
        let key = self.usable_key(command.p2, KeyUsage::INTERNAL_AUTHENTICATE)?;
        out.extend_from_slice(&cmac(key.0, key.1, command.data)?);
        Ok(Status::Success)
    }

    /// EXTERNAL AUTHENTICATE: P2 names the key; the data must be CMAC(key, challenge).
    pub(super) fn external_authenticate(&mut self, command: &Command) -> Outcome {
        if command.p1 != 0 {
            return Err(Status::IncorrectP1P2);
        }
        let challenge = self
            .session
            .challenge
            .take()
            .ok_or(Status::ConditionsOfUseNotSatisfied)?;
        let reference =
            KeyRef::new(command.p2 & 0x7F).map_err(|_| Status::ReferencedDataNotFound)?;
        let (algorithm, value) = self.usable_key(command.p2, KeyUsage::EXTERNAL_AUTHENTICATE)?;
        if command.data.len() != 16 {
            return Err(Status::WrongLength);
        }
        let expected =
            SecretBytes::new(&cmac(algorithm, value, &challenge.bytes[..challenge.len])?);
        let bit = 1u32 << reference.value();
        if expected.ct_eq(command.data) {
            self.session.authenticated_keys |= bit;
            Ok(Status::Success)
        } else {
            self.session.authenticated_keys &= !bit;
            Err(Status::AuthenticationFailed)
        }
    }

    /// The key P2 names (b8 global or specific, the same keys here), if it may do `usage`.
    fn usable_key(&self, p2: u8, usage: KeyUsage) -> Result<(KeyAlgorithm, &SecretBytes), Status> {
        let reference = KeyRef::new(p2 & 0x7F).map_err(|_| Status::ReferencedDataNotFound)?;
        let key = self
            .state
            .keys
            .get(reference)
            .ok_or(Status::ReferencedDataNotFound)?;
        Ok((key.algorithm, key.value_for(usage)?))
    }
}

/// AES-CMAC with a key of the algorithm's size.
pub(super) fn cmac(
    algorithm: KeyAlgorithm,
    key: &SecretBytes,
    data: &[u8],
) -> Result<[u8; 16], Status> {
    let key = AesKey::from_bytes(key.expose()).map_err(|_| Status::ReferenceDataNotUsable)?;
    if key.size().key_len() != algorithm.key_len() {
        return Err(Status::ReferenceDataNotUsable);
    }
    Ok(key.cmac(data))
}
