//! The private keys: GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 part 2 §3.3.2) and Yubico's
//! IMPORT ASYMMETRIC KEY (`FE`), both after the management key. A key of any slot may sign,
//! decipher and agree, as on a YubiKey (the standard ties no operation to a slot beyond the
//! algorithm); its PIN policy says when it needs the PIN.

use super::{Algorithm, PinPolicy, Piv, Slot, SlotInfo, item, items};
use crate::apdu::{Command, Status};
use crate::applications::Hosted;
use crate::card::Card;
use crate::security::{AsymmetricKey, KeyOrigin, KeyUsage, PublicKey};
use crate::tlv;

/// What every PIV key may do.
pub(super) const USAGE: KeyUsage = KeyUsage::SIGN
    .union_const(KeyUsage::DECIPHER)
    .union_const(KeyUsage::AGREE);

/// Yubico's PIN policy (`AA`) and touch policy (`AB`) among `objects`: the PIN policy (the
/// slot's default when absent or `00`); a touch policy other than "never" (`00`, `01`) answers
/// `6A80`, as a VSC has no button to touch.
fn policies(objects: &[(u16, &[u8])], slot: Slot) -> Result<PinPolicy, Status> {
    let pin = match item(objects, 0xAA) {
        None => slot.default_pin_policy(),
        Some([byte]) => PinPolicy::from_byte(*byte, slot).ok_or(Status::IncorrectData)?,
        Some(_) => return Err(Status::IncorrectData),
    };
    match item(objects, 0xAB) {
        None | Some([0x00 | 0x01]) => Ok(pin),
        Some(_) => Err(Status::IncorrectData),
    }
}

/// The public key as GENERATE answers it: `7F49 { 81 n, 82 e }` or `7F49 { 86 point }`.
pub(super) fn push_public_key(out: &mut Vec<u8>, key: &PublicKey) {
    tlv::push_constructed(out, &[0x7F, 0x49], |out| push_public_key_items(out, key));
}

/// The items of `7F49`, alone (GET METADATA answers them in its `04`).
pub(super) fn push_public_key_items(out: &mut Vec<u8>, key: &PublicKey) {
    match key {
        PublicKey::Rsa { n, e } => {
            tlv::push_primitive(out, &[0x81], n);
            tlv::push_primitive(out, &[0x82], e);
        }
        PublicKey::Ec { point } => tlv::push_primitive(out, &[0x86], point),
    }
}

fn store(
    card: &mut Card,
    index: usize,
    slot: Slot,
    key: AsymmetricKey,
    info: SlotInfo,
) -> Result<(), Status> {
    let app = Piv::of_mut(card, index)?;
    app.keys.keys.insert(slot, key);
    app.public.slots.insert(slot, info);
    Ok(())
}

/// GENERATE ASYMMETRIC KEY PAIR (`00 47 00 <slot>`, data `AC { 80 <algorithm> [AA] [AB] }`):
/// a new key in the slot, answered with its public key. The old key of the slot is gone.
pub(super) fn generate(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    card.last_public = Some(true);
    if command.p1 != 0x00 {
        return Err(Status::IncorrectP1P2);
    }
    let slot = Slot::new(command.p2).ok_or(Status::IncorrectP1P2)?;
    let template = items(command.data)?;
    let [(0xAC, body)] = template.as_slice() else {
        return Err(Status::IncorrectData);
    };
    let objects = items(body)?;
    if objects
        .iter()
        .any(|(tag, _)| ![0x80, 0xAA, 0xAB].contains(tag))
    {
        return Err(Status::IncorrectData);
    }
    let algorithm = match item(&objects, 0x80) {
        Some([byte]) => Algorithm::from_byte(*byte).ok_or(Status::IncorrectData)?,
        _ => return Err(Status::IncorrectData),
    };
    let pin_policy = policies(&objects, slot)?;
    if !Piv::session_of(card)?.management {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    let key = AsymmetricKey::generate(algorithm.asymmetric(), USAGE)?;
    let public = key.public_key()?;
    let info = SlotInfo {
        algorithm,
        origin: KeyOrigin::Generated,
        pin_policy,
    };
    store(card, index, slot, key, info)?;
    push_public_key(out, &public);
    Ok(Status::Success)
}

/// IMPORT ASYMMETRIC KEY (`00 FE <algorithm> <slot>`): RSA `01` p, `02` q, `03` dP, `04` dQ,
/// `05` qInv (public exponent 65537); ECC `06` the private scalar; optionally `AA`, `AB`.
/// Everything is checked before the slot changes (`6A80` otherwise).
pub(super) fn import(card: &mut Card, index: usize, command: &Command) -> Result<Status, Status> {
    card.last_public = Some(false);
    let algorithm = Algorithm::from_byte(command.p1).ok_or(Status::IncorrectP1P2)?;
    let slot = Slot::new(command.p2).ok_or(Status::IncorrectP1P2)?;
    let objects = items(command.data)?;
    let allowed: &[u16] = match algorithm {
        Algorithm::Rsa2048 => &[0x01, 0x02, 0x03, 0x04, 0x05, 0xAA, 0xAB],
        Algorithm::EccP256 | Algorithm::EccP384 => &[0x06, 0xAA, 0xAB],
    };
    if objects.iter().any(|(tag, _)| !allowed.contains(tag)) {
        return Err(Status::IncorrectData);
    }
    let pin_policy = policies(&objects, slot)?;
    if !Piv::session_of(card)?.management {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    let get = |tag| item(&objects, tag).ok_or(Status::IncorrectData);
    let key = match algorithm {
        Algorithm::Rsa2048 => AsymmetricKey::import_rsa_crt(
            algorithm.asymmetric(),
            USAGE,
            (get(0x01)?, get(0x02)?),
            (get(0x03)?, get(0x04)?, get(0x05)?),
        )?,
        Algorithm::EccP256 | Algorithm::EccP384 => {
            let scalar = get(0x06)?;
            // The scalar comes padded to the field length, as yubico-piv-tool sends it.
            if Some(scalar.len()) != algorithm.asymmetric().field_len() {
                return Err(Status::IncorrectData);
            }
            AsymmetricKey::import_ec(algorithm.asymmetric(), USAGE, scalar)?
        }
    };
    let info = SlotInfo {
        algorithm,
        origin: KeyOrigin::Imported,
        pin_policy,
    };
    store(card, index, slot, key, info)?;
    Ok(Status::Success)
}
