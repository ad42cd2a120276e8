//! The PIV card application (NIST SP 800-73-4 parts 1 and 2) with the Yubico extensions that
//! yubico-piv-tool uses (GET VERSION, GET SERIAL, GET METADATA, IMPORT ASYMMETRIC KEY, SET
//! MANAGEMENT KEY, SET PIN RETRIES, RESET), as OpenSC's PIV driver and yubico-piv-tool use it.
//! docs/piv.md lists what is implemented, the factory state, the choices made where the
//! standard leaves one, and every client quirk met.
//!
//! Its objects are filed under the platform's areas: the data objects anyone may read
//! (CCC, CHUID, certificates, key history, security object, BIT group) and what is public about
//! each key slot in the clear area; the data objects behind the PIN (printed information,
//! fingerprints, facial image, iris images, pairing code) in the private area; the management
//! key 9B and the private keys in the secret key area; the PIN and the PUK in the password area.

mod authenticate;
mod keys;
pub mod objects;
mod passwords;
mod yubico;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Uid;
use crate::apdu::{Command, Status};
use crate::applications::Hosted;
use crate::card::Card;
use crate::security::{
    AsymmetricAlgorithm, AsymmetricKey, BlockAlgorithm, BlockKey, KeyOrigin, Password,
    PasswordPolicy,
};

/// The PIV AID: NIST's RID `A0 00 00 03 08`, PIX `00 00 10 00` (the PIV card application) and
/// `01 00` (version 1.0). SELECT of the RID alone selects it (the platform selects by prefix).
pub const AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
/// The PIN's factory value, as it travels (padded with `FF` to 8 bytes).
pub const DEFAULT_PIN: &[u8; 8] = b"123456\xFF\xFF";
/// The PUK's factory value.
pub const DEFAULT_PUK: &[u8; 8] = b"12345678";
/// The management key's factory value (3DES): Yubico's default,
/// `010203040506070801020304050607080102030405060708`.
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];
/// The PIN's and the PUK's retry counters at the factory.
pub const DEFAULT_TRIES: u8 = 3;
/// The version GET VERSION answers: the YubiKey firmware whose PIV extensions this
/// application implements (GET METADATA came with 5.3; 5.7's Ed25519, X25519 and key moves are
/// not here).
pub const VERSION: [u8; 3] = [5, 4, 3];

/// The PIN's and the PUK's lengths: 6 to 8 characters, padded with `FF` to 8 bytes.
const MIN_LEN: u8 = 6;
const MAX_LEN: u8 = 8;

/// A key reference that holds an asymmetric key: 9A, 9C, 9D, 9E, or a retired key management
/// slot 82–95.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot(u8);

impl Slot {
    /// PIV Authentication (9A).
    pub const AUTHENTICATION: Slot = Slot(0x9A);
    /// Digital Signature (9C).
    pub const SIGNATURE: Slot = Slot(0x9C);
    /// Key Management (9D).
    pub const KEY_MANAGEMENT: Slot = Slot(0x9D);
    /// Card Authentication (9E).
    pub const CARD_AUTHENTICATION: Slot = Slot(0x9E);

    /// The slot a key reference names, if it names one.
    pub fn new(reference: u8) -> Option<Slot> {
        matches!(reference, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95).then_some(Slot(reference))
    }

    /// Every slot, in the order yubico-piv-tool lists them.
    pub fn all() -> impl Iterator<Item = Slot> {
        [0x9A, 0x9C, 0x9D, 0x9E]
            .into_iter()
            .chain(0x82..=0x95)
            .map(Slot)
    }

    /// The key reference byte.
    pub fn byte(self) -> u8 {
        self.0
    }

    /// The tag of the certificate object that goes with the key.
    pub fn certificate_tag(self) -> u32 {
        match self.0 {
            0x9A => 0x5FC105,
            0x9C => 0x5FC10A,
            0x9D => 0x5FC10B,
            0x9E => 0x5FC101,
            retired => 0x5FC10D + u32::from(retired - 0x82),
        }
    }

    /// The PIN policy a key gets when its generation or import names none: 9C needs the PIN
    /// right before every use, 9E never, the others once per session (as on a YubiKey).
    pub fn default_pin_policy(self) -> PinPolicy {
        match self.0 {
            0x9C => PinPolicy::Always,
            0x9E => PinPolicy::Never,
            _ => PinPolicy::Once,
        }
    }

    /// The name, e.g. `9A (PIV Authentication)`.
    pub fn name(self) -> String {
        match self.0 {
            0x9A => "9A (PIV Authentication)".to_string(),
            0x9C => "9C (Digital Signature)".to_string(),
            0x9D => "9D (Key Management)".to_string(),
            0x9E => "9E (Card Authentication)".to_string(),
            retired => format!("{retired:02X} (Retired Key Management {})", retired - 0x81),
        }
    }
}

/// The asymmetric algorithms, by their identifier in SP 800-78-4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// RSA 2048 (`07`).
    Rsa2048,
    /// ECC P-256 (`11`).
    EccP256,
    /// ECC P-384 (`14`).
    EccP384,
}

impl Algorithm {
    /// The algorithm an identifier names, if this card has it.
    pub fn from_byte(byte: u8) -> Option<Algorithm> {
        match byte {
            0x07 => Some(Algorithm::Rsa2048),
            0x11 => Some(Algorithm::EccP256),
            0x14 => Some(Algorithm::EccP384),
            _ => None,
        }
    }

    /// The identifier.
    pub fn byte(self) -> u8 {
        match self {
            Algorithm::Rsa2048 => 0x07,
            Algorithm::EccP256 => 0x11,
            Algorithm::EccP384 => 0x14,
        }
    }

    /// The platform's algorithm.
    pub fn asymmetric(self) -> AsymmetricAlgorithm {
        match self {
            Algorithm::Rsa2048 => AsymmetricAlgorithm::Rsa2048,
            Algorithm::EccP256 => AsymmetricAlgorithm::P256,
            Algorithm::EccP384 => AsymmetricAlgorithm::P384,
        }
    }
}

/// The management key algorithms, by their identifier in SP 800-78-4 (`00` is accepted as
/// another name of 3DES, as OpenSC does).
pub fn management_algorithm(byte: u8) -> Option<BlockAlgorithm> {
    match byte {
        0x00 | 0x03 => Some(BlockAlgorithm::Tdes),
        0x08 => Some(BlockAlgorithm::Aes128),
        0x0A => Some(BlockAlgorithm::Aes192),
        0x0C => Some(BlockAlgorithm::Aes256),
        _ => None,
    }
}

/// The identifier of a management key algorithm.
pub fn management_algorithm_byte(algorithm: BlockAlgorithm) -> u8 {
    match algorithm {
        BlockAlgorithm::Tdes => 0x03,
        BlockAlgorithm::Aes128 => 0x08,
        BlockAlgorithm::Aes192 => 0x0A,
        BlockAlgorithm::Aes256 => 0x0C,
    }
}

/// When a private key needs the PIN (Yubico's PIN policy, tag `AA`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PinPolicy {
    /// Never (`01`).
    Never,
    /// Once per session (`02`).
    Once,
    /// Right before every use (`03`).
    Always,
}

impl PinPolicy {
    /// The policy a byte names (`00` is the slot's default).
    fn from_byte(byte: u8, slot: Slot) -> Option<PinPolicy> {
        match byte {
            0x00 => Some(slot.default_pin_policy()),
            0x01 => Some(PinPolicy::Never),
            0x02 => Some(PinPolicy::Once),
            0x03 => Some(PinPolicy::Always),
            _ => None,
        }
    }

    /// The byte.
    pub fn byte(self) -> u8 {
        match self {
            PinPolicy::Never => 0x01,
            PinPolicy::Once => 0x02,
            PinPolicy::Always => 0x03,
        }
    }

    /// The name, e.g. `once`.
    pub fn name(self) -> &'static str {
        match self {
            PinPolicy::Never => "never",
            PinPolicy::Once => "once",
            PinPolicy::Always => "always",
        }
    }
}

/// What is public about a slot that holds a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// Generated on the card or imported.
    pub origin: KeyOrigin,
    /// When the key needs the PIN.
    pub pin_policy: PinPolicy,
}

/// The clear area's part: the data objects anyone may read, by tag (`5FC1xx`, `7F61`,
/// `5FFF00`), and the slots that hold keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicData {
    /// The objects' values (the content of their `53` wrapper, or the whole `7F61`).
    pub objects: BTreeMap<u32, Vec<u8>>,
    /// The slots that hold a key.
    pub slots: BTreeMap<Slot, SlotInfo>,
}

/// The private area's part: the data objects behind the PIN, by tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateData {
    /// The objects' values.
    pub objects: BTreeMap<u32, Vec<u8>>,
}

/// The secret key area's part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    /// The card management key (9B).
    pub management: BlockKey,
    /// The private keys, by slot.
    pub keys: BTreeMap<Slot, AsymmetricKey>,
}

/// The password area's part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passwords {
    /// The PIV Card Application PIN (80).
    pub pin: Password,
    /// The PIN Unblocking Key (81).
    pub puk: Password,
}

/// Which password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PivPassword {
    /// The PIN (80).
    Pin,
    /// The PUK (81).
    Puk,
}

/// The PIV application's persistent state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piv {
    /// Data objects anyone reads, and the slots.
    pub public: PublicData,
    /// Data objects behind the PIN.
    pub private: PrivateData,
    /// The management key and the private keys.
    pub keys: Keys,
    /// The PIN and the PUK.
    pub passwords: Passwords,
}

impl Piv {
    /// The application as it leaves the factory on the card with `uid` (docs/piv.md, "Factory
    /// state"): PIN `123456`, PUK `12345678`, 3 tries each, the default 3DES management key, no
    /// keys, and a CHUID and CCC derived from the UID (none without a UID).
    pub fn factory(uid: Option<Uid>) -> Piv {
        let mut public = PublicData::default();
        if let Some(uid) = uid {
            public
                .objects
                .insert(objects::CHUID, objects::factory_chuid(uid));
            public
                .objects
                .insert(objects::CCC, objects::factory_ccc(uid));
        }
        Piv {
            public,
            private: PrivateData::default(),
            keys: Keys {
                management: default_management_key(),
                keys: BTreeMap::new(),
            },
            passwords: Passwords {
                pin: factory_password(DEFAULT_PIN, DEFAULT_TRIES),
                puk: factory_password(DEFAULT_PUK, DEFAULT_TRIES),
            },
        }
    }

    pub(crate) fn password_mut(&mut self, which: PivPassword) -> &mut Password {
        match which {
            PivPassword::Pin => &mut self.passwords.pin,
            PivPassword::Puk => &mut self.passwords.puk,
        }
    }

    fn password(&self, which: PivPassword) -> &Password {
        match which {
            PivPassword::Pin => &self.passwords.pin,
            PivPassword::Puk => &self.passwords.puk,
        }
    }

    /// The value of a data object, wherever it is filed.
    pub fn object(&self, tag: u32) -> Option<&[u8]> {
        self.public
            .objects
            .get(&tag)
            .or_else(|| self.private.objects.get(&tag))
            .map(Vec::as_slice)
    }
}

/// The factory management key.
fn default_management_key() -> BlockKey {
    match BlockKey::new(BlockAlgorithm::Tdes, &DEFAULT_MANAGEMENT_KEY) {
        Ok(key) => key,
        // 24 bytes are a 3DES key's length.
        Err(_) => unreachable!("the default management key has the 3DES length"),
    }
}

/// A PIN or PUK object with a factory value and `tries`.
fn factory_password(value: &[u8], tries: u8) -> Password {
    let policy = match PasswordPolicy::new(MIN_LEN, MAX_LEN, tries) {
        Ok(policy) => policy,
        // 6 to 8 characters and 1 to 15 tries make a valid policy.
        Err(_) => unreachable!("the PIV password policy is valid"),
    };
    let mut password = Password::new(policy);
    // The factory values have the policy's form.
    let _ = password.set(value);
    password
}

/// A witness or a challenge the card sent for the management key, waiting for its answer.
enum Pending {
    /// Mutual authentication: the witness in clear (the terminal got it enciphered).
    Witness(Zeroizing<Vec<u8>>),
    /// External authentication: the challenge the terminal must encipher.
    Challenge(Zeroizing<Vec<u8>>),
}

/// What the application keeps while selected.
#[derive(Default)]
pub struct Session {
    /// The PIN was verified.
    pin: bool,
    /// The PIN was verified and no key whose PIN policy is "always" has used it yet.
    pin_for_always: bool,
    /// The terminal authenticated with the management key.
    management: bool,
    /// A witness or challenge waiting for its answer; used once, whatever the answer.
    pending: Option<Pending>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = match self.pending {
            None => "none",
            Some(Pending::Witness(_)) => "witness",
            Some(Pending::Challenge(_)) => "challenge",
        };
        f.debug_struct("Session")
            .field("pin", &self.pin)
            .field("pin_for_always", &self.pin_for_always)
            .field("management", &self.management)
            .field("pending", &pending)
            .finish()
    }
}

/// The instructions the application answers (Yubico's `F7`–`FF` among them).
pub(crate) fn knows_instruction(ins: u8) -> bool {
    matches!(
        ins,
        0x20 | 0x24
            | 0x2C
            | 0x47
            | 0x87
            | 0xCB
            | 0xDB
            | 0xF7
            | 0xF8
            | 0xFA
            | 0xFB
            | 0xFD
            | 0xFE
            | 0xFF
    )
}

/// SELECT by AID: the application property template (`61 { 4F PIX, 79 { 4F RID } }`) when Le
/// is there, nothing otherwise (yubico-piv-tool selects without Le and wants a plain `9000`).
pub(crate) fn select(
    _card: &mut Card,
    _index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    if command.ne.is_some() && command.p2 & 0x0C != 0x0C {
        crate::tlv::push_constructed(out, &[0x61], |out| {
            crate::tlv::push_primitive(out, &[0x4F], &AID[5..]);
            crate::tlv::push_constructed(out, &[0x79], |out| {
                crate::tlv::push_primitive(out, &[0x4F], &AID[..5]);
            });
        });
    }
    Ok(Status::Success)
}

/// A command for the selected application.
pub(crate) fn dispatch(
    card: &mut Card,
    index: usize,
    command: &Command,
    out: &mut Vec<u8>,
) -> Result<Status, Status> {
    // A witness or challenge answers the very next command only.
    let pending = Piv::session_of(card)?.pending.take();
    if command.class.byte() & 0xEF != 0x00 {
        return Err(Status::ClassNotSupported);
    }
    match command.ins {
        0x20 => passwords::verify(card, index, command),
        0x24 => passwords::change_reference_data(card, index, command),
        0x2C => passwords::reset_retry_counter(card, index, command),
        0x47 => keys::generate(card, index, command, out),
        0x87 => authenticate::general_authenticate(card, index, command, pending, out),
        0xCB => objects::get_data(card, index, command, out),
        0xDB => objects::put_data(card, index, command),
        0xF7 => yubico::get_metadata(card, index, command, out),
        0xF8 => yubico::get_serial(card, command, out),
        0xFA => yubico::set_pin_retries(card, index, command),
        0xFB => yubico::reset(card, index, command),
        0xFD => yubico::get_version(command, out),
        0xFE => keys::import(card, index, command),
        0xFF => yubico::set_management_key(card, index, command),
        _ => Err(Status::InstructionNotSupported),
    }
}

/// A flat list of data objects (one- or two-byte tags, lengths of up to three bytes), each
/// value taken as it is. Yubico's PIN and touch policy tags `AA` and `AB` have BER's
/// "constructed" bit set but carry a bare byte, so a BER parser (which would read that byte as
/// a nested object) cannot read the templates they appear in.
fn items(mut bytes: &[u8]) -> Result<Vec<(u16, &[u8])>, Status> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (tag, rest) = match bytes {
            [first, second, rest @ ..] if first & 0x1F == 0x1F && second & 0x80 == 0 => {
                (u16::from_be_bytes([*first, *second]), rest)
            }
            [first, rest @ ..] if first & 0x1F != 0x1F => (u16::from(*first), rest),
            _ => return Err(Status::IncorrectData),
        };
        let (len, rest) = match rest {
            [n @ 0x00..=0x7F, rest @ ..] => (usize::from(*n), rest),
            [0x81, n, rest @ ..] => (usize::from(*n), rest),
            [0x82, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => return Err(Status::IncorrectData),
        };
        let (value, rest) = rest.split_at_checked(len).ok_or(Status::IncorrectData)?;
        if out.iter().any(|(seen, _)| *seen == tag) {
            return Err(Status::IncorrectData);
        }
        out.push((tag, value));
        bytes = rest;
    }
    Ok(out)
}

/// The value of `tag` among `items`.
fn item<'a>(items: &[(u16, &'a [u8])], tag: u16) -> Option<&'a [u8]> {
    items
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, value)| *value)
}

/// Refuses data for a command that takes none.
fn no_data(command: &Command) -> Result<(), Status> {
    if command.data.is_empty() {
        Ok(())
    } else {
        Err(Status::WrongLength)
    }
}

#[cfg(test)]
mod tests;
