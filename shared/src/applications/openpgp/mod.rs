//! The OpenPGP card application, version 3.4 ("Functional Specification of the OpenPGP
//! application on ISO Smart Card Operating Systems", Achim Pietig, 2020), as GnuPG's scdaemon
//! and OpenSC's openpgp driver use it. docs/openpgp.md lists what is implemented, the choices
//! made where the specification leaves one, and every client quirk met.
//!
//! Its objects are filed under the platform's areas: the public data objects (cardholder data,
//! URL, login, algorithm attributes, fingerprints, the signature counter) in the clear area, the
//! private use DOs 3 and 4 in the private area, the three private keys in the secret key area,
//! and PW1, the resetting code and PW3 in the password area.

mod attributes;
mod data;
mod keys;
mod security;

use serde::{Deserialize, Serialize};

pub use attributes::{Curve, EccKind, KeyAttributes};

use crate::Uid;
use crate::apdu::{Command, Ins, Status};
use crate::applications::Hosted;
use crate::card::Card;
use crate::security::{AsymmetricKey, Password, PasswordPolicy};

/// The registered application identifier: RID `D2 76 00 01 24` (FSFE) and PIX `01`.
pub const RID_PIX: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
/// The specification version in the AID: 3.4.
pub const VERSION: [u8; 2] = [0x03, 0x04];
/// The manufacturer ID in the AID: `FF56`, in the range the specification leaves for
/// unmanaged serial numbers (`FF00`–`FFFE`), `56` for "V"SC (docs/openpgp.md).
pub const MANUFACTURER: [u8; 2] = [0xFF, 0x56];
/// PW1's factory value.
pub const DEFAULT_PW1: &[u8] = b"123456";
/// PW3's factory value.
pub const DEFAULT_PW3: &[u8] = b"12345678";
/// The longest value of the private use DOs, login data and URL (extended capabilities).
pub const MAX_SPECIAL_DO: usize = 255;
/// The longest cardholder certificate.
pub const MAX_CERTIFICATE: usize = 2048;
/// The longest command and response data the card announces (DO `7F66`).
pub const MAX_APDU_DATA: u16 = 2048;
/// The longest GET CHALLENGE answer.
pub const MAX_CHALLENGE: usize = 255;

/// The full AID: RID and PIX, version, manufacturer, the serial number (the last four bytes of
/// the VSC UID) and two RFU bytes.
pub fn aid(uid: Option<Uid>) -> [u8; 16] {
    let uid = uid.unwrap_or_default().0;
    let mut aid = [0; 16];
    aid[..6].copy_from_slice(&RID_PIX);
    aid[6..8].copy_from_slice(&VERSION);
    aid[8..10].copy_from_slice(&MANUFACTURER);
    aid[10..14].copy_from_slice(&uid[4..]);
    aid
}

/// The three key slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Slot {
    /// The signature key (CRT `B6`, attributes `C1`).
    Signature,
    /// The decryption key (CRT `B8`, attributes `C2`).
    Decryption,
    /// The authentication key (CRT `A4`, attributes `C3`).
    Authentication,
}

impl Slot {
    /// Every slot, in key number order (1, 2, 3).
    pub const ALL: [Slot; 3] = [Slot::Signature, Slot::Decryption, Slot::Authentication];

    fn index(self) -> usize {
        match self {
            Slot::Signature => 0,
            Slot::Decryption => 1,
            Slot::Authentication => 2,
        }
    }

    /// The slot a control reference template tag names.
    fn from_crt(tag: u16) -> Option<Slot> {
        match tag {
            0xB6 => Some(Slot::Signature),
            0xB8 => Some(Slot::Decryption),
            0xA4 => Some(Slot::Authentication),
            _ => None,
        }
    }

    /// The name, e.g. `signature`.
    pub fn name(self) -> &'static str {
        match self {
            Slot::Signature => "signature",
            Slot::Decryption => "decryption",
            Slot::Authentication => "authentication",
        }
    }
}

/// How a slot's key came to be (DO `DE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// No key (`00`).
    #[default]
    Absent,
    /// Generated on the card (`01`).
    Generated,
    /// Imported (`02`).
    Imported,
}

impl KeyStatus {
    fn byte(self) -> u8 {
        match self {
            KeyStatus::Absent => 0x00,
            KeyStatus::Generated => 0x01,
            KeyStatus::Imported => 0x02,
        }
    }
}

/// What is public about one key slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    /// The algorithm attributes (`C1`–`C3`).
    pub attributes: KeyAttributes,
    /// The fingerprint the terminal wrote (`C7`–`C9`), 20 zero bytes when none.
    pub fingerprint: [u8; 20],
    /// The CA fingerprint (`CA`–`CC`).
    pub ca_fingerprint: [u8; 20],
    /// The generation date and time the terminal wrote (`CE`–`D0`), seconds since 1970.
    pub generated_at: u32,
    /// The key status (`DE`).
    pub status: KeyStatus,
}

/// The public data objects: the clear area's part of the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicData {
    /// TERMINATE DF ran: only SELECT (`6285`) and ACTIVATE FILE (factory reset) are answered.
    pub terminated: bool,
    /// Name (`5B`).
    pub name: Vec<u8>,
    /// Language preferences (`5F2D`).
    pub language: Vec<u8>,
    /// Sex (`5F35`, ISO 5218), empty when not set.
    pub sex: Vec<u8>,
    /// Login data (`5E`).
    pub login: Vec<u8>,
    /// URL of the public key (`5F50`).
    pub url: Vec<u8>,
    /// The cardholder certificates (`7F21`), one per key: authentication, decryption,
    /// signature, in SELECT DATA's occurrence order.
    pub certificates: [Vec<u8>; 3],
    /// Private use DO 1 (`0101`, read always, written after PW1 `82`).
    pub private_use_1: Vec<u8>,
    /// Private use DO 2 (`0102`, read always, written after PW3).
    pub private_use_2: Vec<u8>,
    /// PW1 stays valid for several signatures (first byte of `C4`).
    pub pw1_valid_for_several_signatures: bool,
    /// The three slots.
    pub slots: [SlotInfo; 3],
    /// The digital signature counter (`93` in `7A`), 3 bytes on the card.
    pub signature_counter: u32,
}

/// The private data objects: the private area's part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateData {
    /// Private use DO 3 (`0103`, read and written after PW1 `82`).
    pub private_use_3: Vec<u8>,
    /// Private use DO 4 (`0104`, read and written after PW3).
    pub private_use_4: Vec<u8>,
}

/// The private keys: the secret key area's part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    /// One per slot.
    pub keys: [Option<AsymmetricKey>; 3],
}

/// The passwords: the password area's part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passwords {
    /// PW1, the user PIN (6 to 127 bytes).
    pub pw1: Password,
    /// The resetting code (8 to 127 bytes), without a value until PUT DATA `D3` sets it.
    pub rc: Password,
    /// PW3, the admin PIN (8 to 127 bytes).
    pub pw3: Password,
}

/// Which password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pw {
    /// PW1.
    Pw1,
    /// The resetting code.
    Rc,
    /// PW3.
    Pw3,
}

/// The OpenPGP application's persistent state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPgp {
    /// Public data objects.
    pub public: PublicData,
    /// Private data objects.
    pub private: PrivateData,
    /// Private keys.
    pub keys: Keys,
    /// Passwords.
    pub passwords: Passwords,
}

/// What the application keeps while selected: which passwords are verified, and which keys
/// MANAGE SECURITY ENVIRONMENT chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// PW1 verified for PSO: COMPUTE DIGITAL SIGNATURE (`81`).
    pub pw1_sign: bool,
    /// PW1 verified for the other commands (`82`).
    pub pw1_other: bool,
    /// PW3 verified (`83`).
    pub pw3: bool,
    /// The key PSO: DECIPHER uses (MSE `B8`).
    pub decipher_key: Slot,
    /// The key INTERNAL AUTHENTICATE uses (MSE `A4`).
    pub authenticate_key: Slot,
    /// The certificate `7F21` names (SELECT DATA's occurrence: 0 authentication, 1
    /// decryption, 2 signature).
    pub certificate: usize,
}

impl Default for Session {
    fn default() -> Session {
        Session {
            pw1_sign: false,
            pw1_other: false,
            pw3: false,
            decipher_key: Slot::Decryption,
            authenticate_key: Slot::Authentication,
            certificate: 0,
        }
    }
}

/// The retry counters' maximum.
const TRIES: u8 = 3;

impl OpenPgp {
    /// The application as a new token arrives: PW1 `123456`, PW3 `12345678`, no resetting
    /// code, no keys, RSA-2048 attributes in every slot, no cardholder data.
    pub fn factory() -> OpenPgp {
        let policy = |min| PasswordPolicy::plain(min, 127, TRIES);
        let with_value = |min, value: &[u8]| {
            // The factory policies and values are valid by construction.
            let mut password = Password::new(policy(min).unwrap_or(FALLBACK_POLICY));
            let _ = password.set(value);
            password
        };
        let mut rc = Password::new(policy(8).unwrap_or(FALLBACK_POLICY));
        rc.clear();
        let slot = |slot: Slot| SlotInfo {
            attributes: KeyAttributes::default_for(slot),
            fingerprint: [0; 20],
            ca_fingerprint: [0; 20],
            generated_at: 0,
            status: KeyStatus::Absent,
        };
        OpenPgp {
            public: PublicData {
                terminated: false,
                name: Vec::new(),
                language: Vec::new(),
                sex: Vec::new(),
                login: Vec::new(),
                url: Vec::new(),
                certificates: Default::default(),
                private_use_1: Vec::new(),
                private_use_2: Vec::new(),
                pw1_valid_for_several_signatures: false,
                slots: Slot::ALL.map(slot),
                signature_counter: 0,
            },
            private: PrivateData::default(),
            keys: Keys::default(),
            passwords: Passwords {
                pw1: with_value(6, DEFAULT_PW1),
                rc,
                pw3: with_value(8, DEFAULT_PW3),
            },
        }
    }

    pub(crate) fn password_mut(&mut self, pw: Pw) -> Option<&mut Password> {
        Some(match pw {
            Pw::Pw1 => &mut self.passwords.pw1,
            Pw::Rc => &mut self.passwords.rc,
            Pw::Pw3 => &mut self.passwords.pw3,
        })
    }

    fn password(&self, pw: Pw) -> &Password {
        match pw {
            Pw::Pw1 => &self.passwords.pw1,
            Pw::Rc => &self.passwords.rc,
            Pw::Pw3 => &self.passwords.pw3,
        }
    }

    /// The slot's public information.
    pub fn slot(&self, slot: Slot) -> &SlotInfo {
        &self.public.slots[slot.index()]
    }

    /// The slot's key, if it has one.
    pub fn key(&self, slot: Slot) -> Option<&AsymmetricKey> {
        self.keys.keys[slot.index()].as_ref()
    }
}

/// Never used: the factory policies above are valid.
const FALLBACK_POLICY: PasswordPolicy = PasswordPolicy {
    min_len: 8,
    max_len: 127,
    max_tries: TRIES,
    format: crate::security::PasswordFormat::Plain,
};

/// The instructions the application answers.
pub(crate) fn knows_instruction(ins: u8) -> bool {
    matches!(
        Ins::from_byte(ins),
        Some(
            Ins::GetData
                | Ins::SelectData
                | Ins::PutData
                | Ins::PutDataOdd
                | Ins::Verify
                | Ins::ChangeReferenceData
                | Ins::ResetRetryCounter
                | Ins::GenerateAsymmetricKeyPair
                | Ins::PerformSecurityOperation
                | Ins::InternalAuthenticate
                | Ins::GetChallenge
                | Ins::ManageSecurityEnvironment
                | Ins::TerminateDf
                | Ins::ActivateFile
        )
    )
}

/// SELECT by AID: the FCI (`6F { 84 AID }`) when P2 asks for it and Le is there, nothing
/// otherwise (GnuPG sends no Le and wants a plain `9000`); `6285` once terminated.
pub(crate) fn select(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    let terminated = OpenPgp::of(card, index)?.public.terminated;
    if command.ne.is_some() && (command.p2 & 0x0C == 0x00 || command.p2 & 0x0C == 0x04) {
        // An FCI or FCP was asked for: the DF name, as ISO 7816-4 gives it.
        let aid = aid(card.state.uid());
        crate::tlv::push_constructed(
            out,
            &[if command.p2 & 0x0C == 0 { 0x6F } else { 0x62 }],
            |out| {
                crate::tlv::push_primitive(out, &[0x84], &aid);
            },
        );
    }
    Ok(if terminated {
        Status::FileTerminated
    } else {
        Status::Success
    })
}

/// A command for the selected application.
pub(crate) fn dispatch(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    let Some(ins) = Ins::from_byte(command.ins) else {
        return Err(Status::InstructionNotSupported);
    };
    if OpenPgp::of(card, index)?.public.terminated {
        return match ins {
            Ins::ActivateFile => security::activate(card, index, command),
            _ if knows_instruction(command.ins) => Err(Status::FileTerminated),
            _ => Err(Status::InstructionNotSupported),
        };
    }
    match ins {
        Ins::GetData => data::get_data(card, index, command, out),
        Ins::SelectData => data::select_data(card, command),
        Ins::PutData | Ins::PutDataOdd => data::put_data(card, index, command),
        Ins::Verify => security::verify(card, index, command),
        Ins::ChangeReferenceData => security::change_reference_data(card, index, command),
        Ins::ResetRetryCounter => security::reset_retry_counter(card, index, command),
        Ins::TerminateDf => security::terminate(card, index, command),
        Ins::ActivateFile => security::activate(card, index, command),
        Ins::GetChallenge => security::get_challenge(command, out),
        Ins::GenerateAsymmetricKeyPair => keys::generate(card, index, command, out),
        Ins::PerformSecurityOperation => {
            keys::perform_security_operation(card, index, command, out)
        }
        Ins::InternalAuthenticate => keys::internal_authenticate(card, index, command, out),
        Ins::ManageSecurityEnvironment => keys::manage_security_environment(card, command),
        _ => Err(Status::InstructionNotSupported),
    }
}

#[cfg(test)]
mod tests;
