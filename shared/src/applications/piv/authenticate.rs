//! GENERAL AUTHENTICATE (SP 800-73-4 part 2 §3.2.4, appendix A): the management key's witness
//! and challenge exchanges, and the private keys' signature, RSA decipherment and ECDH.
//!
//! The data is a dynamic authentication template `7C { 80 witness, 81 challenge, 82 response,
//! 85 exponentiation }`, an empty object asking the card for that item.
//!
//! With the management key (P2 `9B`, P1 its algorithm):
//! - mutual: `7C { 80 }` → `7C { 80 E(K, W) }`; then `7C { 80 W, 81 C }` → `7C { 82 E(K, C) }`,
//!   and the terminal is authenticated (`6982` when W is wrong);
//! - external: `7C { 81 }` → `7C { 81 C }`; then `7C { 82 E(K, C) }` → `9000` (`6982` when
//!   wrong).
//!
//! W and C are fresh random blocks from the operating system, each answering the very next
//! command only and used once whatever the answer; the card enciphers a terminal's challenge
//! only after the terminal proved the key with the witness, so it is never an oracle for the
//! management key.

use rand::RngCore;
use zeroize::Zeroizing;

use super::{Algorithm, Pending, PinPolicy, Piv, Slot, management_algorithm};
use crate::apdu::{Command, Status};
use crate::applications::Hosted;
use crate::card::Card;
use crate::security::{KeyUsage, PublicKey};
use crate::tlv;

/// The items of a dynamic authentication template.
#[derive(Default)]
struct Template<'a> {
    witness: Option<&'a [u8]>,
    challenge: Option<&'a [u8]>,
    response: Option<&'a [u8]>,
    exponentiation: Option<&'a [u8]>,
}

fn parse(data: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, Status> {
    let template = tlv::parse_one(data)?;
    if tlv::tag_number(template.tag()) != 0x7C {
        return Err(Status::IncorrectData);
    }
    let iso7816_tlv::ber::Value::Constructed(items) = template.value() else {
        return Err(Status::IncorrectData);
    };
    items
        .iter()
        .map(|item| {
            let value = tlv::primitive(item).ok_or(Status::IncorrectData)?;
            Ok((tlv::tag_number(item.tag()), value.to_vec()))
        })
        .collect()
}

fn template(items: &[(u16, Vec<u8>)]) -> Result<Template<'_>, Status> {
    let mut template = Template::default();
    for (tag, value) in items {
        let slot = match tag {
            0x80 => &mut template.witness,
            0x81 => &mut template.challenge,
            0x82 => &mut template.response,
            0x85 => &mut template.exponentiation,
            _ => return Err(Status::IncorrectData),
        };
        if slot.replace(value.as_slice()).is_some() {
            return Err(Status::IncorrectData);
        }
    }
    Ok(template)
}

/// `7C { tag value }`.
fn answer(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    tlv::push_constructed(out, &[0x7C], |out| tlv::push_primitive(out, &[tag], value));
}

pub(super) fn general_authenticate(
    card: &mut Card,
    index: usize,
    command: &Command,
    pending: Option<Pending>,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    if command.p2 == 0x9B {
        return management(card, index, command, pending, out);
    }
    let slot = Slot::new(command.p2).ok_or(Status::IncorrectP1P2)?;
    let algorithm = Algorithm::from_byte(command.p1).ok_or(Status::IncorrectP1P2)?;
    let items = parse(command.data)?;
    let template = template(&items)?;
    private_key(card, index, slot, algorithm, &template, out)
}

/// The management key's exchanges.
fn management(
    card: &mut Card,
    index: usize,
    command: &Command,
    pending: Option<Pending>,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    let key = Piv::of(card, index)?.keys.management.clone();
    if management_algorithm(command.p1) != Some(key.algorithm) {
        return Err(Status::IncorrectP1P2);
    }
    let items = parse(command.data)?;
    let template = template(&items)?;
    let block = key.algorithm.block_len();
    let fresh = || {
        let mut bytes = Zeroizing::new(vec![0; block]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        bytes
    };
    match (template, pending) {
        // Mutual authentication, step 1: a new witness.
        (
            Template {
                witness: Some([]),
                challenge: None,
                response: None,
                exponentiation: None,
            },
            _,
        ) => {
            let witness = fresh();
            answer(out, 0x80, &key.encrypt_block(&witness)?);
            Piv::session_of(card)?.pending = Some(Pending::Witness(witness));
            Ok(Status::Success)
        }
        // Mutual authentication, step 2: the witness in clear and the terminal's challenge.
        (
            Template {
                witness: Some(given),
                challenge: Some(challenge),
                response: None,
                exponentiation: None,
            },
            pending,
        ) if !given.is_empty() => {
            let Some(Pending::Witness(witness)) = pending else {
                return Err(Status::ConditionsOfUseNotSatisfied);
            };
            if challenge.len() != block {
                return Err(Status::IncorrectData);
            }
            let right = given.len() == block
                && bool::from(subtle::ConstantTimeEq::ct_eq(given, witness.as_slice()));
            let session = Piv::session_of(card)?;
            session.management = right;
            if !right {
                return Err(Status::SecurityStatusNotSatisfied);
            }
            answer(out, 0x82, &key.encrypt_block(challenge)?);
            Ok(Status::Success)
        }
        // External authentication, step 1: a new challenge.
        (
            Template {
                witness: None,
                challenge: Some([]),
                response: None,
                exponentiation: None,
            },
            _,
        ) => {
            let challenge = fresh();
            answer(out, 0x81, &challenge);
            Piv::session_of(card)?.pending = Some(Pending::Challenge(challenge));
            Ok(Status::Success)
        }
        // External authentication, step 2: the challenge enciphered.
        (
            Template {
                witness: None,
                challenge: None,
                response: Some(response),
                exponentiation: None,
            },
            pending,
        ) if !response.is_empty() => {
            let Some(Pending::Challenge(challenge)) = pending else {
                return Err(Status::ConditionsOfUseNotSatisfied);
            };
            let right = response.len() == block && key.verify_encryption(&challenge, response)?;
            Piv::session_of(card)?.management = right;
            if right {
                Ok(Status::Success)
            } else {
                Err(Status::SecurityStatusNotSatisfied)
            }
        }
        // Anything else, including "encipher this challenge" (`81 C, 82` empty) without the
        // witness first: that would make the card an oracle for its own management key.
        _ => Err(Status::IncorrectData),
    }
}

/// A private key operation: `7C { 82, 81 data }` signs (ECDSA over the hash given, answered in
/// DER) or applies the raw RSA private key (signature or decipherment, the terminal pads);
/// `7C { 82, 85 point }` is ECDH (the x coordinate). Answers `7C { 82 result }`.
fn private_key(
    card: &mut Card,
    index: usize,
    slot: Slot,
    algorithm: Algorithm,
    template: &Template<'_>,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    let state = Piv::of(card, index)?;
    let info = *state
        .public
        .slots
        .get(&slot)
        .ok_or(Status::ReferencedDataNotFound)?;
    if info.algorithm != algorithm {
        return Err(Status::IncorrectP1P2);
    }
    let operation = match (
        template.response,
        template.challenge,
        template.exponentiation,
    ) {
        (Some([]), Some(data), None) if !data.is_empty() => Operation::Private(data),
        (Some([]), None, Some(point)) if !point.is_empty() => Operation::Agree(point),
        _ => return Err(Status::IncorrectData),
    };
    let session_state = Piv::session_of(card)?;
    let allowed = match info.pin_policy {
        PinPolicy::Never => true,
        PinPolicy::Once => session_state.pin,
        PinPolicy::Always => session_state.pin_for_always,
    };
    if !allowed {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    if info.pin_policy == PinPolicy::Always {
        session_state.pin_for_always = false;
    }
    let key = Piv::of(card, index)?
        .keys
        .keys
        .get(&slot)
        .ok_or(Status::ReferencedDataNotFound)?;
    let result = match (operation, algorithm) {
        (Operation::Private(data), Algorithm::Rsa2048) => key.rsa_raw(data, KeyUsage::SIGN)?,
        (Operation::Private(data), _) => Zeroizing::new(key.sign_ecdsa_der(data, KeyUsage::SIGN)?),
        (Operation::Agree(_), Algorithm::Rsa2048) => return Err(Status::IncorrectData),
        (Operation::Agree(point), _) => {
            // Only an uncompressed point of the key's curve (OpenSSL checks it is on it).
            let PublicKey::Ec { point: own } = key.public_key()? else {
                return Err(Status::IncorrectData);
            };
            if point.len() != own.len() || point.first() != Some(&0x04) {
                return Err(Status::IncorrectData);
            }
            key.agree(point)?
        }
    };
    answer(out, 0x82, &result);
    Ok(Status::Success)
}

/// What a private key is asked to do.
enum Operation<'a> {
    /// Sign or decipher the data.
    Private(&'a [u8]),
    /// Agree a secret with the point.
    Agree(&'a [u8]),
}
