//! GET DATA and PUT DATA: the data objects of §4.4, with their access conditions, and key
//! import through the extended header list `4D` (PUT DATA odd, P1-P2 `3FFF`).

use super::attributes::KeyAttributes;
use super::{
    KeyStatus, MAX_APDU_DATA, MAX_CERTIFICATE, MAX_CHALLENGE, MAX_SPECIAL_DO, OpenPgp, Slot, aid,
};
use crate::apdu::{Command, Status};
use crate::applications::Hosted;
use crate::card::Card;
use crate::tlv;

/// Historical bytes (`5F52`): category `00`, card capabilities `73 C0 01 C0` (selection by full
/// and partial DF name; command chaining; extended Lc and Le), status `05 90 00`.
pub const HISTORICAL_BYTES: [u8; 8] = [0x00, 0x73, 0xC0, 0x01, 0xC0, 0x05, 0x90, 0x00];

/// Who may read or write a data object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Always,
    /// PW1 verified for other commands (`82`).
    Pw1,
    /// PW3 verified.
    Pw3,
    Never,
}

pub(super) fn get_data(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    if command.ins == 0xCB {
        return Err(Status::IncorrectP1P2);
    }
    if !command.data.is_empty() {
        return Err(Status::WrongLength);
    }
    let tag = u16::from_be_bytes([command.p1, command.p2]);
    let access = read_access(tag);
    card.last_public = Some(access == Access::Always);
    check(card, access)?;
    let uid = card.state.uid();
    let certificate = OpenPgp::session_of(card)?.certificate;
    let app = OpenPgp::of(card, index)?;
    let value = match tag {
        0x7F21 => app.public.certificates[certificate].clone(),
        _ => read(app, uid, tag).ok_or(Status::ReferencedDataNotFound)?,
    };
    out.extend_from_slice(&value);
    Ok(Status::Success)
}

fn read_access(tag: u16) -> Access {
    match tag {
        0x0103 => Access::Pw1,
        0x0104 => Access::Pw3,
        _ => Access::Always,
    }
}

fn check(card: &mut Card, access: Access) -> Result<(), Status> {
    let session = OpenPgp::session_of(card)?;
    let allowed = match access {
        Access::Always => true,
        Access::Pw1 => session.pw1_other,
        Access::Pw3 => session.pw3,
        Access::Never => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Status::SecurityStatusNotSatisfied)
    }
}

/// The value GET DATA answers for `tag` (constructed DOs with their own tag and length, as
/// GnuPG and OpenSC parse them).
fn read(app: &OpenPgp, uid: Option<crate::Uid>, tag: u16) -> Option<Vec<u8>> {
    let public = &app.public;
    let mut out = Vec::new();
    match tag {
        0x004F => out.extend_from_slice(&aid(uid)),
        0x005E => out.extend_from_slice(&public.login),
        0x5F50 => out.extend_from_slice(&public.url),
        0x5F52 => out.extend_from_slice(&HISTORICAL_BYTES),
        0x005B => out.extend_from_slice(&public.name),
        0x5F2D => out.extend_from_slice(&public.language),
        0x5F35 => out.extend_from_slice(&public.sex),
        0x0065 => tlv::push_constructed(&mut out, &[0x65], |out| {
            tlv::push_primitive(out, &[0x5B], &public.name);
            tlv::push_primitive(out, &[0x5F, 0x2D], &public.language);
            tlv::push_primitive(out, &[0x5F, 0x35], &public.sex);
        }),
        0x006E => tlv::push_constructed(&mut out, &[0x6E], |out| {
            tlv::push_primitive(out, &[0x4F], &aid(uid));
            tlv::push_primitive(out, &[0x5F, 0x52], &HISTORICAL_BYTES);
            push_extended_length(out);
            push_general_features(out);
            tlv::push_constructed(out, &[0x73], |out| {
                for tag in [0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xCD, 0xDE] {
                    if let Some(value) = simple(app, tag) {
                        tlv::push_primitive(out, &[tag], &value);
                    }
                }
            });
        }),
        0x007A => tlv::push_constructed(&mut out, &[0x7A], |out| {
            tlv::push_primitive(out, &[0x93], &public.signature_counter.to_be_bytes()[1..]);
        }),
        0x7F21 => out.extend_from_slice(&public.certificates[0]),
        0x7F66 => push_extended_length(&mut out),
        0x7F74 => push_general_features(&mut out),
        0x0101 => out.extend_from_slice(&public.private_use_1),
        0x0102 => out.extend_from_slice(&public.private_use_2),
        0x0103 => out.extend_from_slice(&app.private.private_use_3),
        0x0104 => out.extend_from_slice(&app.private.private_use_4),
        0x00FA => tlv::push_constructed(&mut out, &[0xFA], |out| {
            for (slot, tag) in Slot::ALL.into_iter().zip([0xC1u8, 0xC2, 0xC3]) {
                for attributes in KeyAttributes::supported(slot) {
                    tlv::push_primitive(out, &[tag], &attributes.to_bytes());
                }
            }
        }),
        0x0093 => out.extend_from_slice(&public.signature_counter.to_be_bytes()[1..]),
        tag @ (0x00C0..=0x00C6 | 0x00CD | 0x00DE) => out = simple(app, tag as u8)?,
        _ => return None,
    }
    Some(out)
}

/// The simple DOs inside `73` (discretionary data objects).
fn simple(app: &OpenPgp, tag: u8) -> Option<Vec<u8>> {
    let public = &app.public;
    let slots = &public.slots;
    Some(match tag {
        0xC0 => {
            let [challenge_hi, challenge_lo] = (MAX_CHALLENGE as u16).to_be_bytes();
            let [cert_hi, cert_lo] = (MAX_CERTIFICATE as u16).to_be_bytes();
            let [special_hi, special_lo] = (MAX_SPECIAL_DO as u16).to_be_bytes();
            // GET CHALLENGE, key import, PW status changeable, private use DOs, algorithm
            // attributes changeable; no SM, no AES, no KDF; MSE for keys 2 and 3.
            vec![
                0x7C,
                0x00,
                challenge_hi,
                challenge_lo,
                cert_hi,
                cert_lo,
                special_hi,
                special_lo,
                0x00,
                0x01,
            ]
        }
        0xC1..=0xC3 => slots[usize::from(tag - 0xC1)].attributes.to_bytes(),
        0xC4 => {
            let p = &app.passwords;
            vec![
                u8::from(public.pw1_valid_for_several_signatures),
                p.pw1.policy.max_len,
                p.rc.policy.max_len,
                p.pw3.policy.max_len,
                p.pw1.tries_left,
                if p.rc.is_set() { p.rc.tries_left } else { 0 },
                p.pw3.tries_left,
            ]
        }
        0xC5 => slots.iter().flat_map(|s| s.fingerprint).collect(),
        0xC6 => slots.iter().flat_map(|s| s.ca_fingerprint).collect(),
        0xCD => slots
            .iter()
            .flat_map(|s| s.generated_at.to_be_bytes())
            .collect(),
        0xDE => Slot::ALL
            .iter()
            .zip(slots)
            .flat_map(|(slot, info)| [slot.index() as u8 + 1, info.status.byte()])
            .collect(),
        _ => return None,
    })
}

fn push_extended_length(out: &mut Vec<u8>) {
    tlv::push_constructed(out, &[0x7F, 0x66], |out| {
        tlv::push_primitive(out, &[0x02], &MAX_APDU_DATA.to_be_bytes());
        tlv::push_primitive(out, &[0x02], &MAX_APDU_DATA.to_be_bytes());
    });
}

fn push_general_features(out: &mut Vec<u8>) {
    // No display, biometrics, button, keypad, LED, loudspeaker, microphone or touchscreen.
    tlv::push_constructed(out, &[0x7F, 0x74], |out| {
        tlv::push_primitive(out, &[0x81], &[0x00]);
    });
}

/// SELECT DATA (P1 the occurrence 0 to 2, P2 `04`, data `60 { 5C 02 7F 21 }`, or the bare
/// tag list as GnuPG 2.2 sends it): which certificate `7F21` means until the next one.
pub(super) fn select_data(card: &mut Card, command: &Command) -> Result<Status, Status> {
    card.last_public = Some(true);
    if command.p2 != 0x04 || command.p1 > 2 {
        return Err(Status::IncorrectP1P2);
    }
    match command.data {
        [0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21] | [0x5C, 0x02, 0x7F, 0x21] => {}
        _ => return Err(Status::ReferencedDataNotFound),
    }
    OpenPgp::session_of(card)?.certificate = usize::from(command.p1);
    Ok(Status::Success)
}

pub(super) fn put_data(card: &mut Card, index: usize, command: &Command) -> Result<Status, Status> {
    if command.ins == 0xDB {
        card.last_public = Some(false);
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Err(Status::IncorrectP1P2);
        }
        check(card, Access::Pw3)?;
        return super::keys::import(card, index, command.data);
    }
    let tag = u16::from_be_bytes([command.p1, command.p2]);
    let data = command.data;
    let (access, public) = match tag {
        0x0101 | 0x0103 => (Access::Pw1, tag == 0x0101),
        0x00D3 | 0x0104 => (Access::Pw3, false),
        0x005B
        | 0x5F2D
        | 0x5F35
        | 0x005E
        | 0x5F50
        | 0x7F21
        | 0x0102
        | 0x00C1..=0x00C4
        | 0x00C7..=0x00D0 => (Access::Pw3, true),
        // Read-only objects, and those of features this card does not have (SM keys, AES,
        // KDF, UIF).
        _ => (Access::Never, true),
    };
    card.last_public = Some(public);
    if access == Access::Never {
        return Err(if read(OpenPgp::of(card, index)?, None, tag).is_some() {
            Status::SecurityStatusNotSatisfied
        } else {
            Status::ReferencedDataNotFound
        });
    }
    check(card, access)?;
    let limit = |max: usize| {
        if data.len() > max {
            Err(Status::WrongLength)
        } else {
            Ok(data.to_vec())
        }
    };
    match tag {
        0x005B => {
            let value = limit(39)?;
            OpenPgp::of_mut(card, index)?.public.name = value;
        }
        0x5F2D => {
            let value = limit(8)?;
            OpenPgp::of_mut(card, index)?.public.language = value;
        }
        0x5F35 => {
            if !matches!(data, [] | [0x30 | 0x31 | 0x32 | 0x39]) {
                return Err(Status::IncorrectData);
            }
            OpenPgp::of_mut(card, index)?.public.sex = data.to_vec();
        }
        0x005E => {
            let value = limit(MAX_SPECIAL_DO)?;
            OpenPgp::of_mut(card, index)?.public.login = value;
        }
        0x5F50 => {
            let value = limit(MAX_SPECIAL_DO)?;
            OpenPgp::of_mut(card, index)?.public.url = value;
        }
        0x7F21 => {
            let value = limit(MAX_CERTIFICATE)?;
            let certificate = OpenPgp::session_of(card)?.certificate;
            OpenPgp::of_mut(card, index)?.public.certificates[certificate] = value;
        }
        0x0101 => {
            let value = limit(MAX_SPECIAL_DO)?;
            OpenPgp::of_mut(card, index)?.public.private_use_1 = value;
        }
        0x0102 => {
            let value = limit(MAX_SPECIAL_DO)?;
            OpenPgp::of_mut(card, index)?.public.private_use_2 = value;
        }
        0x0103 => {
            let value = limit(MAX_SPECIAL_DO)?;
            OpenPgp::of_mut(card, index)?.private.private_use_3 = value;
        }
        0x0104 => {
            let value = limit(MAX_SPECIAL_DO)?;
            OpenPgp::of_mut(card, index)?.private.private_use_4 = value;
        }
        0x00C1..=0x00C3 => {
            let slot = Slot::ALL[usize::from(command.p2 - 0xC1)];
            let attributes = KeyAttributes::parse(data, slot)?;
            let app = OpenPgp::of_mut(card, index)?;
            let info = &mut app.public.slots[slot.index()];
            if info.attributes != attributes {
                // Another algorithm: the slot's key is gone.
                info.attributes = attributes;
                info.fingerprint = [0; 20];
                info.generated_at = 0;
                info.status = KeyStatus::Absent;
                app.keys.keys[slot.index()] = None;
            }
        }
        0x00C4 => {
            let several = match data {
                [flag @ (0x00 | 0x01), ..] if data.len() <= 4 => *flag == 0x01,
                [_, ..] => return Err(Status::IncorrectData),
                [] => return Err(Status::WrongLength),
            };
            OpenPgp::of_mut(card, index)?
                .public
                .pw1_valid_for_several_signatures = several;
        }
        0x00C7..=0x00C9 => {
            let fingerprint: [u8; 20] = data.try_into().map_err(|_| Status::WrongLength)?;
            let slot = usize::from(command.p2 - 0xC7);
            OpenPgp::of_mut(card, index)?.public.slots[slot].fingerprint = fingerprint;
        }
        0x00CA..=0x00CC => {
            let fingerprint: [u8; 20] = data.try_into().map_err(|_| Status::WrongLength)?;
            let slot = usize::from(command.p2 - 0xCA);
            OpenPgp::of_mut(card, index)?.public.slots[slot].ca_fingerprint = fingerprint;
        }
        0x00CE..=0x00D0 => {
            let time: [u8; 4] = data.try_into().map_err(|_| Status::WrongLength)?;
            let slot = usize::from(command.p2 - 0xCE);
            OpenPgp::of_mut(card, index)?.public.slots[slot].generated_at =
                u32::from_be_bytes(time);
        }
        0x00D3 => {
            let app = OpenPgp::of_mut(card, index)?;
            if data.is_empty() {
                app.passwords.rc.clear();
            } else {
                app.passwords.rc.set(data)?;
            }
        }
        _ => return Err(Status::ReferencedDataNotFound),
    }
    Ok(Status::Success)
}
