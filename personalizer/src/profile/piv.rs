//! The profile's `[piv]` section, validated: what fills a PIV card application (docs/profile.md,
//! "The PIV application"): the key slots 9A, 9C, 9D and 9E with their algorithm, key source,
//! PIN and touch policy and certificate; the certificate authority that issues certificates at
//! preparation and the subject it writes; the PIN and PUK; the algorithm of the card's own
//! management key.

use std::fmt;
use std::path::PathBuf;

use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use vsc_core::applications::piv::{Algorithm, PinPolicy, Slot};
use vsc_core::security::BlockAlgorithm;

use super::{FieldRef, PasswordSource, ValuePlan};
use crate::profile::openpgp::OpenPgpAlgorithm;

/// The shortest PIV PIN.
pub const PIN_MIN: u8 = 6;
/// The longest PIV PIN (and the PUK's only length here).
pub const PIN_MAX: u8 = 8;
/// The PUK's length.
pub const PUK_LEN: u8 = 8;
/// The longest certificate the card takes (its object limit, less the `70`/`71`/`FE` framing).
pub const MAX_CERTIFICATE: usize = 3000;

/// The `[piv]` section.
#[derive(Debug)]
pub struct PivSpec {
    /// The algorithm of the card's own management key (set last, derived from the issuer key).
    pub management_key: BlockAlgorithm,
    /// The certificate authority issuing certificates at preparation, if any slot asks for it.
    pub ca: Option<CaSpec>,
    /// The subject of issued certificates, in order (most significant first).
    pub subject: Vec<SubjectPart>,
    /// The key slots the profile fills, in the order 9A, 9C, 9D, 9E.
    pub slots: Vec<PivSlotSpec>,
    /// The PIN: 6 to 8 digits.
    pub pin: PivPassword,
    /// The PUK: 8 digits.
    pub puk: PivPassword,
}

/// A certificate authority: its certificate and private key, loaded with the profile.
pub struct CaSpec {
    /// Where the certificate was read from.
    pub certificate_path: PathBuf,
    /// The CA certificate.
    pub certificate: X509,
    /// The CA's private key (never printed).
    pub key: PKey<Private>,
    /// How long issued certificates are valid, in days from preparation.
    pub validity_days: u32,
}

impl fmt::Debug for CaSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaSpec")
            .field("certificate_path", &self.certificate_path)
            .field("validity_days", &self.validity_days)
            .finish_non_exhaustive()
    }
}

/// One attribute of the subject's distinguished name.
#[derive(Debug)]
pub struct SubjectPart {
    /// The attribute's name as the profile writes it (`CN`, `O`, …).
    pub name: &'static str,
    /// Its OpenSSL identifier.
    pub nid: Nid,
    /// Its value (UTF-8 text).
    pub value: ValuePlan,
}

/// The distinguished-name attributes a subject may have: profile name and OpenSSL identifier.
pub const SUBJECT_ATTRIBUTES: [(&str, Nid); 9] = [
    ("C", Nid::COUNTRYNAME),
    ("ST", Nid::STATEORPROVINCENAME),
    ("L", Nid::LOCALITYNAME),
    ("O", Nid::ORGANIZATIONNAME),
    ("OU", Nid::ORGANIZATIONALUNITNAME),
    ("CN", Nid::COMMONNAME),
    ("serialNumber", Nid::SERIALNUMBER),
    ("emailAddress", Nid::PKCS9_EMAILADDRESS),
    ("UID", Nid::USERID),
];

/// One key slot.
#[derive(Debug)]
pub struct PivSlotSpec {
    /// Which (9A, 9C, 9D or 9E).
    pub slot: Slot,
    /// Its algorithm.
    pub algorithm: PivAlgorithm,
    /// Where each card's key comes from.
    pub source: PivKeySource,
    /// The PIN policy written with the key (`None`: the slot's default).
    pub pin_policy: Option<PinPolicy>,
    /// Whether the import names the touch policy "never" (the VSC has no button).
    pub touch_never: bool,
    /// Where the slot's certificate comes from.
    pub certificate: CertificateSource,
}

/// Where a slot's key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PivKeySource {
    /// Generated at preparation and imported (IMPORT ASYMMETRIC KEY).
    Generated,
    /// Read from a PKCS #8 (or PKCS #1 / SEC 1 PEM) file the record names.
    Imported {
        /// The field naming the file.
        field: FieldRef,
        /// The field holding the passphrase of an encrypted file.
        passphrase: Option<FieldRef>,
    },
}

/// Where a slot's certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateSource {
    /// None is written.
    None,
    /// Issued at preparation by the profile's CA, for the slot's key.
    Issued,
    /// A PEM or DER file the record names; it must certify the record's key.
    Record(FieldRef),
}

/// A key algorithm a PIV slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PivAlgorithm {
    /// RSA-2048 (`07`), e = 65537.
    Rsa2048,
    /// ECC P-256 (`11`).
    NistP256,
    /// ECC P-384 (`14`).
    NistP384,
}

impl PivAlgorithm {
    /// Every algorithm, with its profile name.
    pub const NAMES: [(&'static str, PivAlgorithm); 3] = [
        ("rsa2048", PivAlgorithm::Rsa2048),
        ("nistp256", PivAlgorithm::NistP256),
        ("nistp384", PivAlgorithm::NistP384),
    ];

    /// The profile name.
    pub fn name(self) -> &'static str {
        match self {
            PivAlgorithm::Rsa2048 => "rsa2048",
            PivAlgorithm::NistP256 => "nistp256",
            PivAlgorithm::NistP384 => "nistp384",
        }
    }

    /// The card's algorithm.
    pub fn card(self) -> Algorithm {
        match self {
            PivAlgorithm::Rsa2048 => Algorithm::Rsa2048,
            PivAlgorithm::NistP256 => Algorithm::EccP256,
            PivAlgorithm::NistP384 => Algorithm::EccP384,
        }
    }

    /// The same key type as the key generation and import code names it (shared with the
    /// OpenPGP backend).
    pub fn key_type(self) -> OpenPgpAlgorithm {
        match self {
            PivAlgorithm::Rsa2048 => OpenPgpAlgorithm::Rsa2048,
            PivAlgorithm::NistP256 => OpenPgpAlgorithm::NistP256,
            PivAlgorithm::NistP384 => OpenPgpAlgorithm::NistP384,
        }
    }
}

/// The PIN or the PUK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PivPassword {
    /// The fewest digits.
    pub min: u8,
    /// The most digits.
    pub max: u8,
    /// Where each card's value comes from.
    pub source: PasswordSource,
}

/// The profile's name of a slot (`authentication` for 9A, …), as its table is named.
pub fn slot_section(slot: Slot) -> &'static str {
    match slot.byte() {
        0x9A => "authentication",
        0x9C => "signature",
        0x9D => "key_management",
        _ => "card_authentication",
    }
}

/// The slot's hex name (`9A`).
pub fn slot_hex(slot: Slot) -> String {
    format!("{:02X}", slot.byte())
}
