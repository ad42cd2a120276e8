//! The profile's `[openpgp]` section, validated: what fills an OpenPGP card 3.4 application
//! (docs/profile.md, "The OpenPGP application"): the cardholder data objects, the three key
//! slots with their algorithm and where each key comes from, the key creation time, the user
//! ID of the certificate, and PW1, PW3 and the resetting code.

use vsc_core::applications::openpgp::{Curve, EccKind, KeyAttributes, Slot};
use vsc_core::security::AsymmetricAlgorithm;

use super::{FieldRef, ValuePlan};

/// The shortest PW1 the specification allows.
pub const PW1_MIN: u8 = 6;
/// The shortest PW3 and resetting code.
pub const PW3_MIN: u8 = 8;
/// The longest PW1, PW3 or resetting code.
pub const PASSWORD_MAX: u8 = 127;
/// The longest name (`5B`) the card takes.
pub const MAX_NAME: usize = 39;
/// The longest language preference (`5F2D`).
pub const MAX_LANGUAGE: usize = 8;

/// The `[openpgp]` section.
#[derive(Debug)]
pub struct OpenPgpSpec {
    /// `5B`: "Surname<<Given".
    pub name: Option<NameSpec>,
    /// `5F2D`: the language preferences (e.g. `deen`).
    pub language: Option<ValuePlan>,
    /// `5F35`: the salutation (ISO 5218 sex).
    pub salutation: Option<SalutationSpec>,
    /// `5F50`: the URL of the public key.
    pub url: Option<ValuePlan>,
    /// `5E`: login data.
    pub login: Option<ValuePlan>,
    /// `0101`–`0104`: the private use DOs, by number (1 to 4).
    pub private_use: Vec<(u8, ValuePlan)>,
    /// `7F21`: cardholder certificates, per slot.
    pub certificates: Vec<CertificateSpec>,
    /// The user ID of the exported OpenPGP certificate.
    pub user_id: Option<ValuePlan>,
    /// When generated (and PKCS#8-imported) keys were made; `None`: when preparation started.
    pub created: Option<CreatedSpec>,
    /// The key slots the profile fills, in slot order (signature, decryption, authentication).
    pub slots: Vec<SlotSpec>,
    /// PW1, the user PIN.
    pub pw1: OpenPgpPassword,
    /// PW3, the admin PIN.
    pub pw3: OpenPgpPassword,
    /// The resetting code, if the card gets one.
    pub resetting_code: Option<OpenPgpPassword>,
}

impl OpenPgpSpec {
    /// The spec of `slot`, if the profile fills it.
    pub fn slot(&self, slot: Slot) -> Option<&SlotSpec> {
        self.slots.iter().find(|s| s.slot == slot)
    }
}

/// The name DO: two fields joined as the specification writes names.
#[derive(Debug)]
pub struct NameSpec {
    /// The surname's field.
    pub surname: FieldRef,
    /// The given names' field (optional in the record: a name may be the surname alone).
    pub given: Option<FieldRef>,
}

/// The salutation DO.
#[derive(Debug, Clone, Copy)]
pub enum SalutationSpec {
    /// A record field: `M`/`male`/`1`, `F`/`female`/`2`, `X`/`9`, `0` (or empty: not written).
    Field(FieldRef),
    /// The same for every card.
    Constant(u8),
}

/// A cardholder certificate (`7F21`) of one slot.
#[derive(Debug)]
pub struct CertificateSpec {
    /// Which key's certificate (SELECT DATA's occurrence).
    pub slot: Slot,
    /// The record field holding it.
    pub field: FieldRef,
    /// Hex digits in the field, or the name of a file holding the DER bytes.
    pub form: CertificateForm,
    /// An empty field writes nothing.
    pub optional: bool,
}

/// How a record gives a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateForm {
    /// Hexadecimal digits in the field.
    Hex,
    /// The field names a file (absolute, or relative to the working folder).
    File,
}

/// A key creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedSpec {
    /// Seconds since 1970, the same for every card.
    Fixed(u32),
    /// A record field: RFC 3339 (`2026-01-01T00:00:00Z`) or a date (`2026-01-01`, midnight UTC).
    Field(FieldRef),
}

/// One key slot.
#[derive(Debug)]
pub struct SlotSpec {
    /// Which.
    pub slot: Slot,
    /// Its algorithm.
    pub algorithm: OpenPgpAlgorithm,
    /// Where each card's key comes from.
    pub source: KeySource,
    /// This slot's creation time, over the section's.
    pub created: Option<CreatedSpec>,
}

/// Where a slot's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Generated at preparation: the private key rests only in the sealed store and the
    /// transcript.
    Generated,
    /// Imported from an escrowed key file named by a record field.
    Imported {
        /// The field naming the file.
        field: FieldRef,
        /// The file's format.
        format: KeyFileFormat,
        /// The field holding the passphrase of an encrypted file.
        passphrase: Option<FieldRef>,
    },
}

/// The formats of escrowed key files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileFormat {
    /// PKCS #8 (`PRIVATE KEY` or `ENCRYPTED PRIVATE KEY`, PEM or DER), or PKCS #1 / SEC 1 PEM.
    Pkcs8,
    /// An OpenPGP transferable secret key (armored or binary), possibly passphrase-protected.
    OpenPgp,
}

/// A key algorithm as a slot holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenPgpAlgorithm {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA-3072.
    Rsa3072,
    /// RSA-4096.
    Rsa4096,
    /// NIST P-256 (ECDSA in the signature and authentication slots, ECDH in the decryption one).
    NistP256,
    /// NIST P-384.
    NistP384,
    /// Ed25519 (signature, authentication).
    Ed25519,
    /// X25519 / cv25519 (decryption).
    Cv25519,
}

impl OpenPgpAlgorithm {
    /// Every algorithm, with its profile name.
    pub const NAMES: [(&'static str, OpenPgpAlgorithm); 7] = [
        ("rsa2048", OpenPgpAlgorithm::Rsa2048),
        ("rsa3072", OpenPgpAlgorithm::Rsa3072),
        ("rsa4096", OpenPgpAlgorithm::Rsa4096),
        ("nistp256", OpenPgpAlgorithm::NistP256),
        ("nistp384", OpenPgpAlgorithm::NistP384),
        ("ed25519", OpenPgpAlgorithm::Ed25519),
        ("cv25519", OpenPgpAlgorithm::Cv25519),
    ];

    /// The profile name.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("", |(name, _)| name)
    }

    /// The card's platform algorithm.
    pub fn platform(self) -> AsymmetricAlgorithm {
        match self {
            OpenPgpAlgorithm::Rsa2048 => AsymmetricAlgorithm::Rsa2048,
            OpenPgpAlgorithm::Rsa3072 => AsymmetricAlgorithm::Rsa3072,
            OpenPgpAlgorithm::Rsa4096 => AsymmetricAlgorithm::Rsa4096,
            OpenPgpAlgorithm::NistP256 => AsymmetricAlgorithm::P256,
            OpenPgpAlgorithm::NistP384 => AsymmetricAlgorithm::P384,
            OpenPgpAlgorithm::Ed25519 => AsymmetricAlgorithm::Ed25519,
            OpenPgpAlgorithm::Cv25519 => AsymmetricAlgorithm::X25519,
        }
    }

    /// Whether `slot` can hold it: the signature and authentication slots sign, the decryption
    /// slot deciphers or agrees.
    pub fn fits(self, slot: Slot) -> bool {
        match self {
            OpenPgpAlgorithm::Ed25519 => slot != Slot::Decryption,
            OpenPgpAlgorithm::Cv25519 => slot == Slot::Decryption,
            _ => true,
        }
    }

    /// The algorithm attributes (`C1`–`C3`) for `slot`: RSA with import format `00` (e, p,
    /// q), ECC without the import-format byte.
    pub fn attributes(self, slot: Slot) -> KeyAttributes {
        let ecc = |curve| KeyAttributes::Ecc {
            kind: match (curve, slot) {
                (Curve::Ed25519, _) => EccKind::Eddsa,
                (_, Slot::Decryption) => EccKind::Ecdh,
                _ => EccKind::Ecdsa,
            },
            curve,
            with_public_key: false,
        };
        match self {
            OpenPgpAlgorithm::Rsa2048 => rsa(2048),
            OpenPgpAlgorithm::Rsa3072 => rsa(3072),
            OpenPgpAlgorithm::Rsa4096 => rsa(4096),
            OpenPgpAlgorithm::NistP256 => ecc(Curve::P256),
            OpenPgpAlgorithm::NistP384 => ecc(Curve::P384),
            OpenPgpAlgorithm::Ed25519 => ecc(Curve::Ed25519),
            OpenPgpAlgorithm::Cv25519 => ecc(Curve::X25519),
        }
    }
}

fn rsa(bits: u16) -> KeyAttributes {
    KeyAttributes::Rsa {
        bits,
        import_format: 0x00,
    }
}

/// PW1, PW3 or the resetting code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPgpPassword {
    /// The fewest characters the card takes.
    pub min: u8,
    /// Where each card's value comes from: digits from a field or generated.
    pub source: super::PasswordSource,
}

/// The ISO 5218 byte a salutation names: `Some(None)` for an empty value (nothing written),
/// `None` for one that names nothing.
pub fn salutation_byte(text: &str) -> Option<Option<u8>> {
    Some(Some(match text.trim().to_ascii_lowercase().as_str() {
        "" => return Some(None),
        "0" | "unknown" => b'0',
        "1" | "m" | "male" | "mr" => b'1',
        "2" | "f" | "female" | "ms" | "mrs" => b'2',
        "9" | "x" | "not applicable" => b'9',
        _ => return None,
    }))
}

/// Seconds since 1970 from RFC 3339 or a date (midnight UTC), if it fits a `u32`.
pub fn parse_time(text: &str) -> Option<u32> {
    use time::format_description::well_known::Rfc3339;
    let seconds = match time::OffsetDateTime::parse(text, &Rfc3339) {
        Ok(time) => time.unix_timestamp(),
        Err(_) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format)
                .ok()?
                .midnight()
                .assume_utc()
                .unix_timestamp()
        }
    };
    u32::try_from(seconds).ok()
}
