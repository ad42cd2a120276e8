//! The OpenPGP card 3.4 backend (docs/openpgp.md, "Personalization").
//!
//! Pre-initialization makes the token as it leaves its factory: EF.UID with the UID (the VSC
//! takes its AID serial from it), the OpenPGP application installed in its factory state, the
//! card activated. Real tokens arrive so; only a VSC needs this transcript.
//!
//! Personalization, in plain with the application's own commands: SELECT; VERIFY PW3 (the
//! factory default); per key slot the algorithm attributes, the key import (extended header
//! list `4D`, the public key too for ECC), the fingerprint and the creation date; the
//! cardholder data objects, certificates and private use DOs (DOs 1 and 3 after VERIFY PW1,
//! its factory default); the resetting code; PW1 set after PW3 (RESET RETRY COUNTER), PW3
//! changed last; and a GET DATA of `6E` checked against the fingerprints. Every step before
//! the PW3 change is idempotent.
//!
//! Each expected response is the answer of the reference card OS, an in-process token, to the
//! same command; in `6E` the bytes that legitimately differ between products are masked.

pub mod import;
pub mod key;
pub mod packets;

use std::ops::Deref;

use serde::{Deserialize, Serialize};
use vsc_core::Uid;
use vsc_core::apdu::Status;
use vsc_core::applications::openpgp::{DEFAULT_PW1, DEFAULT_PW3, Slot};
use vsc_core::applications::{ApplicationKind, install_fcp};
use vsc_core::card::{Card, LifeCycle};
use vsc_core::commands::{self, CommandBuf, openpgp as op};
use vsc_core::transcript::{CommandApdu, Comment, Expectation, Step};
use zeroize::Zeroizing;

use super::{Builder, CompileError};
use crate::content::openpgp::{KeyMaterial, OpenPgpContent};
use key::PrivateKey;
use packets::{CertificateInput, KeyPacket, Role};

/// What preparation exports of an OpenPGP card: nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exports {
    /// The OpenPGP certificate of the card's keys, armored (for `gpg --import`).
    pub certificate: String,
    /// The keys, in slot order.
    pub keys: Vec<ExportedKey>,
}

/// One key's public side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedKey {
    /// `signature`, `decryption` or `authentication`.
    pub slot: String,
    /// The profile's algorithm name, e.g. `ed25519`.
    pub algorithm: String,
    /// The creation time, seconds since 1970 (`CE`–`D0`).
    pub created: u32,
    /// The OpenPGP version 4 fingerprint (`C7`–`C9`), 40 hex digits.
    pub fingerprint: String,
    /// The public key in PEM.
    pub public_pem: String,
    /// What the card answers to GENERATE ASYMMETRIC KEY PAIR P1 `81` (`7F49 { … }`), hex.
    pub card_public_key: String,
}

impl Exports {
    /// The exports of one card as stored: JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The exports stored as JSON.
    pub fn from_json(text: &str) -> Option<Exports> {
        serde_json::from_str(text).ok()
    }

    /// The fingerprints as text, one `slot algorithm fingerprint created` line per key.
    pub fn fingerprints(&self) -> String {
        let mut out = String::new();
        for key in &self.keys {
            out.push_str(&format!(
                "{} {} {} {}\n",
                key.slot,
                key.algorithm,
                key.fingerprint,
                time::OffsetDateTime::from_unix_timestamp(i64::from(key.created))
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default()
            ));
        }
        out
    }

    /// The public keys in PEM, each after a line naming it.
    pub fn public_keys_pem(&self) -> String {
        let mut out = String::new();
        for key in &self.keys {
            out.push_str(&format!(
                "{} key, {}, fingerprint {}\n{}",
                key.slot, key.algorithm, key.fingerprint, key.public_pem
            ));
        }
        out
    }
}

/// The ATR of a VSC token (operational): the personalization transcript's header.
pub fn token_atr() -> Vec<u8> {
    vsc_core::atr::atr(LifeCycle::Operational.byte())
}

/// The token as it leaves its factory.
pub(super) fn preinitialize(b: &mut Builder, uid: Uid) -> Result<(), CompileError> {
    super::write_uid(b, uid)?;
    b.step("select the MF", commands::select_mf())?;
    b.step(
        "install the OpenPGP application in its factory state (PW1 123456, PW3 12345678, no keys)",
        commands::create_file(&install_fcp(ApplicationKind::OpenPgp)),
    )?;
    b.step(
        "activate the card: a token as it leaves its factory",
        commands::activate_mf(),
    )
}

/// A key for the compiler: generated here, or borrowed from the imported content.
enum SlotPrivate<'a> {
    Generated(PrivateKey),
    Imported(&'a PrivateKey),
}

impl Deref for SlotPrivate<'_> {
    type Target = PrivateKey;

    fn deref(&self) -> &PrivateKey {
        match self {
            SlotPrivate::Generated(key) => key,
            SlotPrivate::Imported(key) => key,
        }
    }
}

/// A slot ready to be written.
struct Prepared<'a> {
    slot: Slot,
    key: SlotPrivate<'a>,
    packet: KeyPacket,
}

fn role(slot: Slot) -> Role {
    match slot {
        Slot::Signature => Role::Primary,
        Slot::Decryption => Role::Encryption,
        Slot::Authentication => Role::Authentication,
    }
}

fn slot_index(slot: Slot) -> u16 {
    match slot {
        Slot::Signature => 0,
        Slot::Decryption => 1,
        Slot::Authentication => 2,
    }
}

/// The personalization steps of the card `uid`, and its exports.
pub(super) fn personalize(
    content: &OpenPgpContent,
    uid: Uid,
) -> Result<(Vec<Step>, Option<Exports>), CompileError> {
    let mut slots = Vec::with_capacity(content.keys.len());
    for slot_key in &content.keys {
        let (key, packet) = match &slot_key.material {
            KeyMaterial::Generate => (
                SlotPrivate::Generated(PrivateKey::generate(slot_key.algorithm)?),
                None,
            ),
            KeyMaterial::Imported(imported) => (
                SlotPrivate::Imported(&imported.key),
                imported.packet.clone(),
            ),
        };
        let packet = match packet {
            Some(packet) => packet,
            None => KeyPacket::new(
                slot_key.algorithm,
                role(slot_key.slot),
                &key.public()?,
                slot_key.created,
            ),
        };
        slots.push(Prepared {
            slot: slot_key.slot,
            key,
            packet,
        });
    }

    let mut r = Reference::new(uid);
    r.step("select the OpenPGP application", op::select())?;
    r.step(
        "verify the admin PIN PW3 (the factory default)",
        op::verify(0x83, DEFAULT_PW3),
    )?;
    for prepared in &slots {
        let name = prepared.slot.name();
        let index = slot_index(prepared.slot);
        let algorithm = prepared.key.algorithm();
        r.step(
            format!("{name} key: algorithm attributes {}", algorithm.name()),
            op::put_data(
                0xC1 + index,
                &algorithm.attributes(prepared.slot).to_bytes(),
            ),
        )?;
        let template = prepared.key.import_template(prepared.slot)?;
        r.step(
            format!("{name} key: import ({})", algorithm.name()),
            op::import_key(&template),
        )?;
        r.step(
            format!(
                "{name} key: fingerprint {}",
                hex::encode_upper(prepared.packet.fingerprint)
            ),
            op::put_data(0xC7 + index, &prepared.packet.fingerprint),
        )?;
        r.step(
            format!("{name} key: creation time {}", prepared.packet.created),
            op::put_data(0xCE + index, &prepared.packet.created.to_be_bytes()),
        )?;
    }
    let (after_pw1, objects): (Vec<_>, Vec<_>) = content
        .objects
        .iter()
        .partition(|(tag, _, _)| matches!(tag, 0x0101 | 0x0103));
    for (tag, name, value) in objects {
        r.step(format!("{name} ({tag:X})"), op::put_data(*tag, value))?;
    }
    for (slot, certificate) in &content.certificates {
        r.step(
            format!("select the {} key's certificate", slot.name()),
            op::select_certificate(*slot),
        )?;
        r.step(
            format!("cardholder certificate of the {} key (7F21)", slot.name()),
            op::put_data(0x7F21, certificate),
        )?;
    }
    if !after_pw1.is_empty() {
        r.step(
            "verify PW1 (the factory default) for the private use DOs 1 and 3",
            op::verify(0x82, DEFAULT_PW1),
        )?;
        for (tag, name, value) in after_pw1 {
            r.step(format!("{name} ({tag:X})"), op::put_data(*tag, value))?;
        }
    }
    if let Some(code) = &content.resetting_code {
        r.step(
            "set the resetting code (D3)",
            op::put_data(0xD3, code.expose()),
        )?;
    }
    r.step(
        "set the user PIN PW1 (after PW3)",
        op::reset_pw1_after_pw3(content.pw1.expose()),
    )?;
    let mut change = Zeroizing::new(DEFAULT_PW3.to_vec());
    change.extend_from_slice(content.pw3.expose());
    r.step(
        "change the admin PIN PW3 from its factory default: the last write",
        op::change_reference_data(0x83, &change),
    )?;
    r.step_masked(
        "read back the application related data (6E): the fingerprints and dates",
        commands::get_data(0x006E, 65_536),
        application_data_care,
    )?;

    let exports = match (slots.first(), &content.user_id) {
        (Some(primary), Some(user_id)) if primary.slot == Slot::Signature => {
            let subkeys = slots[1..]
                .iter()
                .map(|s| (&s.packet, role(s.slot)))
                .collect();
            let certificate = packets::certificate(&CertificateInput {
                primary: &primary.packet,
                signer: &primary.key,
                subkeys,
                user_id,
            })?;
            let mut keys = Vec::with_capacity(slots.len());
            for prepared in &slots {
                // The answer the prepared key gives, built from it rather than read from the
                // reference card (whose X25519 key would derive its public key once more);
                // the tests hold the two equal.
                let answer = prepared.key.card_public_template()?;
                keys.push(ExportedKey {
                    slot: prepared.slot.name().to_string(),
                    algorithm: prepared.key.algorithm().name().to_string(),
                    created: prepared.packet.created,
                    fingerprint: hex::encode_upper(prepared.packet.fingerprint),
                    public_pem: prepared.key.public_pem()?,
                    card_public_key: hex::encode_upper(answer),
                });
            }
            Some(Exports {
                certificate: packets::armor(&certificate),
                keys,
            })
        }
        _ => None,
    };
    Ok((r.steps, exports))
}

/// Steps checked against the reference card OS.
struct Reference {
    card: Card,
    steps: Vec<Step>,
}

impl Reference {
    fn new(uid: Uid) -> Reference {
        Reference {
            card: vsc_core::sample::openpgp_token(uid.0),
            steps: Vec::with_capacity(24),
        }
    }

    /// Sends `command` to the reference card; its answer must be `9000` (with or without
    /// data); the response data.
    fn exchange(
        &mut self,
        comment: &str,
        command: &CommandBuf,
    ) -> Result<(Vec<u8>, Vec<u8>), CompileError> {
        let step = self.steps.len() + 1;
        let bytes = command.to_vec().map_err(|_| CompileError::Encoding {
            step,
            comment: comment.to_string(),
        })?;
        let response = self.card.transmit(&bytes);
        match response.as_slice() {
            [.., 0x90, 0x00] => Ok((bytes, response)),
            [.., sw1, sw2] => Err(CompileError::Refused {
                step,
                comment: comment.to_string(),
                status: Status::from(u16::from_be_bytes([*sw1, *sw2])),
            }),
            _ => Err(CompileError::Refused {
                step,
                comment: comment.to_string(),
                status: Status::NoPreciseDiagnosis,
            }),
        }
    }

    fn push(
        &mut self,
        comment: String,
        bytes: Vec<u8>,
        expect: Expectation,
    ) -> Result<(), CompileError> {
        let step = self.steps.len() + 1;
        let command = CommandApdu::new(bytes).map_err(|_| CompileError::Encoding {
            step,
            comment: comment.clone(),
        })?;
        self.steps.push(Step::Command {
            comment: Comment::new(comment.replace(['\n', '\r'], " ")).ok(),
            command,
            expect,
        });
        Ok(())
    }

    fn step(
        &mut self,
        comment: impl Into<String>,
        command: CommandBuf,
    ) -> Result<(), CompileError> {
        let comment = comment.into();
        let (bytes, response) = self.exchange(&comment, &command)?;
        let step = self.steps.len() + 1;
        let expect = Expectation::exact(response).map_err(|_| CompileError::Encoding {
            step,
            comment: comment.clone(),
        })?;
        self.push(comment, bytes, expect)
    }

    fn step_masked(
        &mut self,
        comment: &str,
        command: CommandBuf,
        care: fn(&[u8]) -> Vec<u8>,
    ) -> Result<(), CompileError> {
        let (bytes, response) = self.exchange(comment, &command)?;
        let step = self.steps.len() + 1;
        let expect = Expectation::masked(&response, &care(&response)).map_err(|_| {
            CompileError::Encoding {
                step,
                comment: comment.to_string(),
            }
        })?;
        self.push(comment.to_string(), bytes, expect)
    }
}

/// The nibbles of a `6E` answer that are checked (`FF`) and those that differ between
/// products (`00`): in the AID the version and the RFU bytes (the manufacturer and serial are
/// the card's identity and checked), the historical bytes, the extended length information, the
/// general feature management, the extended capabilities (`C0`) and the maximum lengths in
/// `C4`. Attributes, the PW1 flag, the retry counters, fingerprints, CA fingerprints, dates and
/// key status are the personalization's result and checked. docs/openpgp.md lists the same.
pub fn application_data_care(response: &[u8]) -> Vec<u8> {
    let mut care = vec![0xFF; response.len()];
    let Some(data_len) = response.len().checked_sub(2) else {
        return care;
    };
    walk(&response[..data_len], 0, &mut care);
    care
}

fn walk(bytes: &[u8], base: usize, care: &mut [u8]) {
    let mut at = 0;
    while at < bytes.len() {
        let Some((tag, value_at, len)) = header(&bytes[at..]) else {
            return;
        };
        let start = base + at + value_at;
        let end = start + len;
        if end > base + bytes.len() {
            return;
        }
        let mut mask = |from: usize, to: usize| {
            for byte in &mut care[(start + from).min(end)..(start + to).min(end)] {
                *byte = 0x00;
            }
        };
        match tag {
            0x6E | 0x73 => walk(&bytes[at + value_at..at + value_at + len], start, care),
            0x4F => {
                mask(6, 8);
                mask(14, 16);
            }
            0x5F52 | 0x7F66 | 0x7F74 | 0xC0 => mask(0, len),
            0xC4 => mask(1, 4),
            _ => {}
        }
        at += value_at + len;
    }
}

/// A BER-TLV header: the tag, where the value starts and its length.
fn header(bytes: &[u8]) -> Option<(u16, usize, usize)> {
    let (tag, rest, tag_len) = match bytes {
        [first, second, rest @ ..] if first & 0x1F == 0x1F => {
            (u16::from_be_bytes([*first, *second]), rest, 2)
        }
        [first, rest @ ..] => (u16::from(*first), rest, 1),
        [] => return None,
    };
    let (len, len_len) = match rest {
        [n @ 0x00..=0x7F, ..] => (usize::from(*n), 1),
        [0x81, n, ..] => (usize::from(*n), 2),
        [0x82, hi, lo, ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), 3),
        _ => return None,
    };
    Some((tag, tag_len + len_len, len))
}

#[cfg(test)]
mod tests;
