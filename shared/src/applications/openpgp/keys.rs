//! The private keys: GENERATE ASYMMETRIC KEY PAIR (§7.2.14), key import through the extended
//! header list (§4.4.3.12), PSO: COMPUTE DIGITAL SIGNATURE, PSO: DECIPHER (RSA and ECDH),
//! INTERNAL AUTHENTICATE and MANAGE SECURITY ENVIRONMENT (§7.2.10–7.2.13, 7.2.18).

use iso7816_tlv::ber::{Tlv, Value};

use super::attributes::KeyAttributes;
use super::{KeyStatus, OpenPgp, Slot};
use crate::apdu::{Command, Status};
use crate::applications::Hosted;
use crate::card::Card;
use crate::security::{AsymmetricAlgorithm, AsymmetricKey, KeyUsage, PublicKey};
use crate::tlv;

/// What each slot's key may do: the decryption and authentication keys may trade places by MSE.
fn usage(slot: Slot) -> KeyUsage {
    match slot {
        Slot::Signature => KeyUsage::SIGN,
        Slot::Decryption | Slot::Authentication => KeyUsage::DECIPHER
            .union(KeyUsage::AGREE)
            .union(KeyUsage::INTERNAL_AUTHENTICATE),
    }
}

/// The slot a control reference template (`B6`, `B8`, `A4`, empty or with `84` the key
/// reference) names.
fn slot_of(crt: &Tlv) -> Result<Slot, Status> {
    Slot::from_crt(tlv::tag_number(crt.tag())).ok_or(Status::IncorrectData)
}

fn slot_algorithm(app: &OpenPgp, slot: Slot) -> Result<AsymmetricAlgorithm, Status> {
    app.slot(slot)
        .attributes
        .algorithm()
        .ok_or(Status::ReferenceDataNotUsable)
}

/// The public key template `7F49`: `81` n and `82` e for RSA, `86` the point for ECC.
fn push_public_key(out: &mut Vec<u8>, key: &PublicKey) {
    tlv::push_constructed(out, &[0x7F, 0x49], |out| match key {
        PublicKey::Rsa { n, e } => {
            tlv::push_primitive(out, &[0x81], n);
            tlv::push_primitive(out, &[0x82], e);
        }
        PublicKey::Ec { point } => tlv::push_primitive(out, &[0x86], point),
    });
}

pub(super) fn generate(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    card.last_public = Some(true);
    if command.p2 != 0 {
        return Err(Status::IncorrectP1P2);
    }
    let crt = tlv::parse_one(command.data).map_err(|_| Status::IncorrectData)?;
    let slot = slot_of(&crt)?;
    match command.p1 {
        0x80 => {
            if !OpenPgp::session_of(card)?.pw3 {
                return Err(Status::SecurityStatusNotSatisfied);
            }
            let algorithm = slot_algorithm(OpenPgp::of(card, index)?, slot)?;
            let key = AsymmetricKey::generate(algorithm, usage(slot))?;
            let public = key.public_key()?;
            store(
                OpenPgp::of_mut(card, index)?,
                slot,
                key,
                KeyStatus::Generated,
            );
            push_public_key(out, &public);
            Ok(Status::Success)
        }
        0x81 => {
            let key = OpenPgp::of(card, index)?
                .key(slot)
                .ok_or(Status::ReferencedDataNotFound)?;
            push_public_key(out, &key.public_key()?);
            Ok(Status::Success)
        }
        _ => Err(Status::IncorrectP1P2),
    }
}

/// Puts a new key into a slot: its fingerprint and date are the terminal's to write next, and
/// a new signature key starts the signature counter again.
fn store(app: &mut OpenPgp, slot: Slot, key: AsymmetricKey, status: KeyStatus) {
    app.keys.keys[slot.index()] = Some(key);
    let info = &mut app.public.slots[slot.index()];
    info.fingerprint = [0; 20];
    info.generated_at = 0;
    info.status = status;
    if slot == Slot::Signature {
        app.public.signature_counter = 0;
    }
}

/// Key import: `4D { CRT, 7F48 <tags and lengths>, 5F48 <the values, concatenated> }`.
/// Everything is checked before the slot changes; any mismatch answers `6A80`.
pub(super) fn import(card: &mut Card, index: usize, data: &[u8]) -> Result<Status, Status> {
    // 7F48 is a constructed tag holding tags and lengths without values, so the list is walked
    // by hand, one level deep.
    let (tag, body, rest) = read_object(data)?;
    if tag != 0x4D || !rest.is_empty() {
        return Err(Status::IncorrectData);
    }
    let (crt_tag, crt_value, mut rest) = read_object(body)?;
    let slot = Slot::from_crt(crt_tag).ok_or(Status::IncorrectData)?;
    if !matches!(crt_value, [] | [0x84, 0x01, _]) {
        return Err(Status::IncorrectData);
    }
    let (mut template, mut values) = (None, None);
    while !rest.is_empty() {
        let (tag, value, after) = read_object(rest)?;
        match tag {
            0x7F48 if template.is_none() => template = Some(value),
            0x5F48 if values.is_none() => values = Some(value),
            _ => return Err(Status::IncorrectData),
        }
        rest = after;
    }
    let (Some(template), Some(values)) = (template, values) else {
        return Err(Status::IncorrectData);
    };
    let components = split_components(template, values)?;
    let get = |tag: u8| components.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
    let app_state = OpenPgp::of(card, index)?;
    let attributes = app_state.slot(slot).attributes;
    let algorithm = slot_algorithm(app_state, slot)?;
    let key = match attributes {
        KeyAttributes::Rsa { .. } => {
            let (Some(e), Some(p), Some(q)) = (get(0x91), get(0x92), get(0x93)) else {
                return Err(Status::IncorrectData);
            };
            let key = AsymmetricKey::import_rsa(algorithm, usage(slot), e, p, q)?;
            if let (Some(n), PublicKey::Rsa { n: own, .. }) = (get(0x97), key.public_key()?)
                && strip(n) != own.as_slice()
            {
                return Err(Status::IncorrectData);
            }
            key
        }
        KeyAttributes::Ecc { .. } => {
            let private = get(0x92).ok_or(Status::IncorrectData)?;
            let key = AsymmetricKey::import_ec(algorithm, usage(slot), private)?;
            if let (Some(given), PublicKey::Ec { point }) = (get(0x99), key.public_key()?)
                && given != point.as_slice()
                && !(given.first() == Some(&0x40) && &given[1..] == point.as_slice())
            {
                return Err(Status::IncorrectData);
            }
            key
        }
    };
    store(
        OpenPgp::of_mut(card, index)?,
        slot,
        key,
        KeyStatus::Imported,
    );
    Ok(Status::Success)
}

/// One BER-TLV object (one- or two-byte tag, length up to three bytes): its tag, value and
/// what follows it.
fn read_object(bytes: &[u8]) -> Result<(u16, &[u8], &[u8]), Status> {
    let (tag, rest) = match bytes {
        [first, second, rest @ ..] if first & 0x1F == 0x1F => {
            (u16::from_be_bytes([*first, *second]), rest)
        }
        [first, rest @ ..] => (u16::from(*first), rest),
        [] => return Err(Status::IncorrectData),
    };
    let (len, rest) = match rest {
        [n @ 0x00..=0x7F, rest @ ..] => (usize::from(*n), rest),
        [0x81, n, rest @ ..] => (usize::from(*n), rest),
        [0x82, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        _ => return Err(Status::IncorrectData),
    };
    let (value, rest) = rest.split_at_checked(len).ok_or(Status::IncorrectData)?;
    Ok((tag, value, rest))
}

fn strip(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros..]
}

/// The `7F48` list (one-byte tags with BER lengths, no values) applied to the `5F48` values,
/// which must add up exactly.
fn split_components<'a>(
    mut template: &[u8],
    mut values: &'a [u8],
) -> Result<Vec<(u8, &'a [u8])>, Status> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = template.split_first() {
        let (len, rest) = match rest {
            [n @ 0x00..=0x7F, rest @ ..] => (usize::from(*n), rest),
            [0x81, n, rest @ ..] => (usize::from(*n), rest),
            [0x82, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => return Err(Status::IncorrectData),
        };
        if !(0x91..=0x99).contains(&tag) {
            return Err(Status::IncorrectData);
        }
        let (value, after) = values.split_at_checked(len).ok_or(Status::IncorrectData)?;
        out.push((tag, value));
        values = after;
        template = rest;
    }
    if !values.is_empty() || out.is_empty() {
        return Err(Status::IncorrectData);
    }
    Ok(out)
}

pub(super) fn perform_security_operation(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    match (command.p1, command.p2) {
        (0x9E, 0x9A) => compute_digital_signature(card, index, command.data, out),
        (0x80, 0x86) => decipher(card, index, command.data, out),
        // Encipherment with an AES key: this card has none.
        (0x86, 0x80) => Err(Status::FunctionNotSupported),
        _ => Err(Status::IncorrectP1P2),
    }
}

fn compute_digital_signature(
    card: &mut Card,
    index: usize,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    if !OpenPgp::session_of(card)?.pw1_sign {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    if input.is_empty() {
        return Err(Status::WrongLength);
    }
    let app_state = OpenPgp::of(card, index)?;
    let key = app_state
        .key(Slot::Signature)
        .ok_or(Status::ReferencedDataNotFound)?;
    let signature = key.sign(input, KeyUsage::SIGN)?;
    let several = app_state.public.pw1_valid_for_several_signatures;
    let app = OpenPgp::of_mut(card, index)?;
    app.public.signature_counter = (app.public.signature_counter + 1).min(0x00FF_FFFF);
    if !several {
        OpenPgp::session_of(card)?.pw1_sign = false;
    }
    out.extend_from_slice(&signature);
    Ok(Status::Success)
}

fn decipher(
    card: &mut Card,
    index: usize,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    let session = *OpenPgp::session_of(card)?;
    if !session.pw1_other {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    let key = OpenPgp::of(card, index)?
        .key(session.decipher_key)
        .ok_or(Status::ReferencedDataNotFound)?;
    let plain = match key.algorithm {
        AsymmetricAlgorithm::Rsa2048
        | AsymmetricAlgorithm::Rsa3072
        | AsymmetricAlgorithm::Rsa4096 => match input {
            [0x00, cryptogram @ ..] => key.decipher(cryptogram)?,
            [] => return Err(Status::WrongLength),
            _ => return Err(Status::IncorrectData),
        },
        _ => {
            // A6 { 7F49 { 86 <the peer's public point> } }
            let cipher = tlv::parse_one(input).map_err(|_| Status::IncorrectData)?;
            let Value::Constructed(inner) = cipher.value() else {
                return Err(Status::IncorrectData);
            };
            let public = inner
                .iter()
                .find(|object| tlv::tag_number(object.tag()) == 0x7F49)
                .ok_or(Status::IncorrectData)?;
            let Value::Constructed(points) = public.value() else {
                return Err(Status::IncorrectData);
            };
            let point = tlv::find_primitive(points, 0x86).ok_or(Status::IncorrectData)?;
            if tlv::tag_number(cipher.tag()) != 0xA6 {
                return Err(Status::IncorrectData);
            }
            // GnuPG prefixes a Curve25519 point with 40 (its native format marker).
            let point = match (key.algorithm, point) {
                (AsymmetricAlgorithm::X25519, [0x40, rest @ ..]) if rest.len() == 32 => rest,
                _ => point,
            };
            key.agree(point)?
        }
    };
    out.extend_from_slice(&plain);
    Ok(Status::Success)
}

pub(super) fn internal_authenticate(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    if command.p1 != 0 || command.p2 != 0 {
        return Err(Status::IncorrectP1P2);
    }
    let session = *OpenPgp::session_of(card)?;
    if !session.pw1_other {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    if command.data.is_empty() {
        return Err(Status::WrongLength);
    }
    let key = OpenPgp::of(card, index)?
        .key(session.authenticate_key)
        .ok_or(Status::ReferencedDataNotFound)?;
    out.extend_from_slice(&key.sign(command.data, KeyUsage::INTERNAL_AUTHENTICATE)?);
    Ok(Status::Success)
}

/// MSE SET (P1 `41`): which key (`83` = 2 or 3) serves decipherment (P2 `B8`) or
/// authentication (P2 `A4`).
pub(super) fn manage_security_environment(
    card: &mut Card,
    command: &Command,
) -> Result<Status, Status> {
    if command.p1 != 0x41 {
        return Err(Status::IncorrectP1P2);
    }
    let objects = tlv::parse_all(command.data).map_err(|_| Status::IncorrectData)?;
    let slot = match tlv::find_primitive(&objects, 0x83) {
        Some([0x02]) => Slot::Decryption,
        Some([0x03]) => Slot::Authentication,
        _ => return Err(Status::IncorrectData),
    };
    let session = OpenPgp::session_of(card)?;
    match command.p2 {
        0xB8 => session.decipher_key = slot,
        0xA4 => session.authenticate_key = slot,
        _ => return Err(Status::IncorrectP1P2),
    }
    Ok(Status::Success)
}
