//! The Yubico extensions yubico-piv-tool uses (YubiKey 5 PIV): GET VERSION (`FD`), GET SERIAL
//! (`F8`), GET METADATA (`F7`), SET MANAGEMENT KEY (`FF`), SET PIN RETRIES (`FA`) and RESET
//! (`FB`). IMPORT ASYMMETRIC KEY (`FE`) is with the other key commands.

use super::{
    DEFAULT_MANAGEMENT_KEY, DEFAULT_PIN, DEFAULT_PUK, Piv, Slot, VERSION,
    keys::push_public_key_items, management_algorithm, management_algorithm_byte, no_data,
};
use crate::apdu::{Command, Status};
use crate::applications::Hosted;
use crate::card::Card;
use crate::security::{BlockKey, KeyOrigin};
use crate::tlv;

/// GET VERSION (`00 FD 00 00`): the three bytes of [`VERSION`].
pub(super) fn get_version(command: &Command, out: &mut Vec<u8>) -> Result<Status, Status> {
    if (command.p1, command.p2) != (0, 0) {
        return Err(Status::IncorrectP1P2);
    }
    no_data(command)?;
    out.extend_from_slice(&VERSION);
    Ok(Status::Success)
}

/// GET SERIAL (`00 F8 00 00`): the serial number, 4 bytes big-endian: the last four bytes of
/// the VSC UID (as OpenPGP's serial number).
pub(super) fn get_serial(
    card: &mut Card,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    if (command.p1, command.p2) != (0, 0) {
        return Err(Status::IncorrectP1P2);
    }
    no_data(command)?;
    let uid = card.state.uid().unwrap_or_default();
    out.extend_from_slice(&uid.0[4..]);
    Ok(Status::Success)
}

/// GET METADATA (`00 F7 00 <reference>`): for a key slot `01` algorithm, `02` PIN and touch
/// policy, `03` origin (`01` generated, `02` imported), `04` the public key; for 9B `01`
/// algorithm, `02` policies, `05` whether it is the factory key; for the PIN (`80`) and PUK
/// (`81`) `01 FF`, `05` whether it is the factory value, `06` tries in all and left. An empty
/// slot answers `6A88`. Nothing secret is in it.
pub(super) fn get_metadata(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    if command.p1 != 0 {
        return Err(Status::IncorrectP1P2);
    }
    no_data(command)?;
    let app = Piv::of(card, index)?;
    match command.p2 {
        0x80 | 0x81 => {
            let (password, default) = if command.p2 == 0x80 {
                (&app.passwords.pin, &DEFAULT_PIN[..])
            } else {
                (&app.passwords.puk, &DEFAULT_PUK[..])
            };
            tlv::push_primitive(out, &[0x01], &[0xFF]);
            tlv::push_primitive(out, &[0x05], &[u8::from(password.has_value(default))]);
            tlv::push_primitive(
                out,
                &[0x06],
                &[password.policy.max_tries, password.tries_left],
            );
        }
        0x9B => {
            let key = &app.keys.management;
            tlv::push_primitive(out, &[0x01], &[management_algorithm_byte(key.algorithm)]);
            tlv::push_primitive(out, &[0x02], &[0x00, 0x01]);
            tlv::push_primitive(
                out,
                &[0x05],
                &[u8::from(key.has_value(&DEFAULT_MANAGEMENT_KEY))],
            );
        }
        reference => {
            let slot = Slot::new(reference).ok_or(Status::IncorrectP1P2)?;
            let info = app
                .public
                .slots
                .get(&slot)
                .ok_or(Status::ReferencedDataNotFound)?;
            let key = app
                .keys
                .keys
                .get(&slot)
                .ok_or(Status::ReferencedDataNotFound)?;
            let public = key.public_key()?;
            tlv::push_primitive(out, &[0x01], &[info.algorithm.byte()]);
            tlv::push_primitive(out, &[0x02], &[info.pin_policy.byte(), 0x01]);
            let origin = match info.origin {
                KeyOrigin::Generated => 0x01,
                KeyOrigin::Imported => 0x02,
            };
            tlv::push_primitive(out, &[0x03], &[origin]);
            let mut items = Vec::new();
            push_public_key_items(&mut items, &public);
            tlv::push_primitive(out, &[0x04], &items);
        }
    }
    Ok(Status::Success)
}

/// SET MANAGEMENT KEY (`00 FF FF FF`, data `<algorithm> 9B <length> <key>`), after the
/// management key: 3DES (`03`, 24 bytes), AES-128 (`08`, 16), AES-192 (`0A`, 24), AES-256
/// (`0C`, 32). P2 `FE` (touch required) answers `6A86`: a VSC has no button.
pub(super) fn set_management_key(
    card: &mut Card,
    index: usize,
    command: &Command,
) -> Result<Status, Status> {
    card.last_public = Some(false);
    if (command.p1, command.p2) != (0xFF, 0xFF) {
        return Err(Status::IncorrectP1P2);
    }
    let [algorithm, 0x9B, len, key @ ..] = command.data else {
        return Err(Status::IncorrectData);
    };
    let algorithm = management_algorithm(*algorithm).ok_or(Status::IncorrectData)?;
    if usize::from(*len) != key.len() {
        return Err(Status::IncorrectData);
    }
    let key = BlockKey::new(algorithm, key)?;
    if !Piv::session_of(card)?.management {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    Piv::of_mut(card, index)?.keys.management = key;
    Ok(Status::Success)
}

/// SET PIN RETRIES (`00 FA <PIN tries> <PUK tries>`), after the management key and the PIN:
/// both counters get their new maximum (1 to 15, what `63Cx` can show) and both passwords
/// their factory values, as on a YubiKey.
pub(super) fn set_pin_retries(
    card: &mut Card,
    index: usize,
    command: &Command,
) -> Result<Status, Status> {
    let (pin_tries, puk_tries) = (command.p1, command.p2);
    let valid = |tries: u8| (1..=crate::security::password::MAX_TRIES).contains(&tries);
    if !valid(pin_tries) || !valid(puk_tries) {
        return Err(Status::IncorrectP1P2);
    }
    no_data(command)?;
    let session_state = Piv::session_of(card)?;
    if !(session_state.management && session_state.pin) {
        return Err(Status::SecurityStatusNotSatisfied);
    }
    let app = Piv::of_mut(card, index)?;
    app.passwords.pin = super::factory_password(DEFAULT_PIN, pin_tries);
    app.passwords.puk = super::factory_password(DEFAULT_PUK, puk_tries);
    let session = Piv::session_of(card)?;
    session.pin = false;
    session.pin_for_always = false;
    Ok(Status::Success)
}

/// RESET (`00 FB 00 00`): the factory state again (keys, certificates, data objects, PIN, PUK
/// and management key), only once both the PIN and the PUK are blocked (`6985` before).
pub(super) fn reset(card: &mut Card, index: usize, command: &Command) -> Result<Status, Status> {
    if (command.p1, command.p2) != (0, 0) {
        return Err(Status::IncorrectP1P2);
    }
    no_data(command)?;
    let state = Piv::of(card, index)?;
    if !(state.passwords.pin.is_blocked() && state.passwords.puk.is_blocked()) {
        return Err(Status::ConditionsOfUseNotSatisfied);
    }
    let uid = card.state.uid();
    *Piv::of_mut(card, index)? = Piv::factory(uid);
    *Piv::session_of(card)? = super::Session::default();
    Ok(Status::Success)
}
