//! Algorithm attributes (DOs `C1`, `C2`, `C3`, and their list `FA`): what each key slot holds,
//! in the specification's encoding (§4.4.3.9), and the platform algorithm behind it.

use serde::{Deserialize, Serialize};

use super::Slot;
use crate::apdu::Status;
use crate::security::AsymmetricAlgorithm;

/// An elliptic curve OpenPGP names by OID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Curve {
    /// NIST P-256 (`1.2.840.10045.3.1.7`).
    P256,
    /// NIST P-384 (`1.3.132.0.34`).
    P384,
    /// Ed25519 (`1.3.6.1.4.1.11591.15.1`).
    Ed25519,
    /// Curve25519 for X25519 (`1.3.6.1.4.1.3029.1.5.1`).
    X25519,
}

impl Curve {
    const ALL: [Curve; 4] = [Curve::P256, Curve::P384, Curve::Ed25519, Curve::X25519];

    /// The OID's DER content bytes, as the attributes carry them.
    pub fn oid(self) -> &'static [u8] {
        match self {
            Curve::P256 => &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
            Curve::P384 => &[0x2B, 0x81, 0x04, 0x00, 0x22],
            Curve::Ed25519 => &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01],
            Curve::X25519 => &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01],
        }
    }
}

/// What an ECC key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EccKind {
    /// ECDH (algorithm ID `12`).
    Ecdh,
    /// ECDSA (`13`).
    Ecdsa,
    /// EdDSA (`16`).
    Eddsa,
}

impl EccKind {
    fn id(self) -> u8 {
        match self {
            EccKind::Ecdh => 0x12,
            EccKind::Ecdsa => 0x13,
            EccKind::Eddsa => 0x16,
        }
    }
}

/// A slot's algorithm attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAttributes {
    /// RSA (`01`): modulus bits, public exponent bits (32), import format (`00` e, p, q;
    /// `01` with n; `02` CRT; `03` CRT with n).
    Rsa {
        /// Modulus length: 2048, 3072 or 4096.
        bits: u16,
        /// The private key import format byte.
        import_format: u8,
    },
    /// ECC: the kind, the curve, and whether imports carry the public key (trailing `FF`).
    Ecc {
        /// ECDH, ECDSA or EdDSA.
        kind: EccKind,
        /// The curve.
        curve: Curve,
        /// Import format `FF`: with the public key.
        with_public_key: bool,
    },
}

impl KeyAttributes {
    /// The factory attributes: RSA-2048 everywhere.
    pub fn default_for(_slot: Slot) -> KeyAttributes {
        KeyAttributes::Rsa {
            bits: 2048,
            import_format: 0x00,
        }
    }

    /// The encoding in `C1`–`C3`.
    pub fn to_bytes(self) -> Vec<u8> {
        match self {
            KeyAttributes::Rsa {
                bits,
                import_format,
            } => {
                let [hi, lo] = bits.to_be_bytes();
                vec![0x01, hi, lo, 0x00, 0x20, import_format]
            }
            KeyAttributes::Ecc {
                kind,
                curve,
                with_public_key,
            } => {
                let mut out = vec![kind.id()];
                out.extend_from_slice(curve.oid());
                if with_public_key {
                    out.push(0xFF);
                }
                out
            }
        }
    }

    /// Attributes written for `slot` (`6A80` for an algorithm this card or the slot does not
    /// have: a signature or authentication key signs, a decryption key deciphers or agrees).
    pub fn parse(bytes: &[u8], slot: Slot) -> Result<KeyAttributes, Status> {
        let (&id, rest) = bytes.split_first().ok_or(Status::IncorrectData)?;
        let attributes = match id {
            0x01 => match rest {
                [hi, lo, 0x00, 0x20, rest @ ..] => {
                    let bits = u16::from_be_bytes([*hi, *lo]);
                    let import_format = match rest {
                        [] => 0x00,
                        [format @ 0x00..=0x03] => *format,
                        _ => return Err(Status::IncorrectData),
                    };
                    if !matches!(bits, 2048 | 3072 | 4096) {
                        return Err(Status::IncorrectData);
                    }
                    KeyAttributes::Rsa {
                        bits,
                        import_format,
                    }
                }
                _ => return Err(Status::IncorrectData),
            },
            0x12 | 0x13 | 0x16 => {
                let kind = match id {
                    0x12 => EccKind::Ecdh,
                    0x13 => EccKind::Ecdsa,
                    _ => EccKind::Eddsa,
                };
                let (oid, with_public_key) = match rest {
                    [oid @ .., 0xFF] => (oid, true),
                    oid => (oid, false),
                };
                let curve = Curve::ALL
                    .into_iter()
                    .find(|curve| curve.oid() == oid)
                    .ok_or(Status::IncorrectData)?;
                KeyAttributes::Ecc {
                    kind,
                    curve,
                    with_public_key,
                }
            }
            _ => return Err(Status::IncorrectData),
        };
        if attributes.algorithm().is_none() || !attributes.fits(slot) {
            return Err(Status::IncorrectData);
        }
        Ok(attributes)
    }

    /// The platform algorithm, if the curve and kind go together.
    pub fn algorithm(self) -> Option<AsymmetricAlgorithm> {
        match self {
            KeyAttributes::Rsa { bits: 2048, .. } => Some(AsymmetricAlgorithm::Rsa2048),
            KeyAttributes::Rsa { bits: 3072, .. } => Some(AsymmetricAlgorithm::Rsa3072),
            KeyAttributes::Rsa { bits: 4096, .. } => Some(AsymmetricAlgorithm::Rsa4096),
            KeyAttributes::Rsa { .. } => None,
            KeyAttributes::Ecc { kind, curve, .. } => match (kind, curve) {
                (EccKind::Ecdsa | EccKind::Ecdh, Curve::P256) => Some(AsymmetricAlgorithm::P256),
                (EccKind::Ecdsa | EccKind::Ecdh, Curve::P384) => Some(AsymmetricAlgorithm::P384),
                (EccKind::Eddsa, Curve::Ed25519) => Some(AsymmetricAlgorithm::Ed25519),
                (EccKind::Ecdh, Curve::X25519) => Some(AsymmetricAlgorithm::X25519),
                _ => None,
            },
        }
    }

    /// Whether a key of these attributes can serve `slot`.
    fn fits(self, slot: Slot) -> bool {
        match (self, slot) {
            (KeyAttributes::Rsa { .. }, _) => true,
            (KeyAttributes::Ecc { kind, .. }, Slot::Decryption) => kind == EccKind::Ecdh,
            (KeyAttributes::Ecc { kind, .. }, _) => kind != EccKind::Ecdh,
        }
    }

    /// A short description, e.g. `rsa2048`, `ed25519`, `nistp256 (ECDH)`.
    pub fn describe(self) -> String {
        match self {
            KeyAttributes::Rsa { bits, .. } => format!("rsa{bits}"),
            KeyAttributes::Ecc { kind, curve, .. } => {
                let curve = match curve {
                    Curve::P256 => "nistp256",
                    Curve::P384 => "nistp384",
                    Curve::Ed25519 => "ed25519",
                    Curve::X25519 => "cv25519",
                };
                match kind {
                    EccKind::Ecdh => format!("{curve} (ECDH)"),
                    EccKind::Ecdsa => format!("{curve} (ECDSA)"),
                    EccKind::Eddsa => format!("{curve} (EdDSA)"),
                }
            }
        }
    }

    /// Every attribute value a slot accepts (for DO `FA`).
    pub fn supported(slot: Slot) -> Vec<KeyAttributes> {
        let mut out: Vec<KeyAttributes> = [2048, 3072, 4096]
            .map(|bits| KeyAttributes::Rsa {
                bits,
                import_format: 0x00,
            })
            .to_vec();
        let ecc = |kind, curve| KeyAttributes::Ecc {
            kind,
            curve,
            with_public_key: false,
        };
        match slot {
            Slot::Decryption => {
                out.extend(
                    [Curve::P256, Curve::P384, Curve::X25519].map(|c| ecc(EccKind::Ecdh, c)),
                );
            }
            Slot::Signature | Slot::Authentication => {
                out.extend([Curve::P256, Curve::P384].map(|c| ecc(EccKind::Ecdsa, c)));
                out.push(ecc(EccKind::Eddsa, Curve::Ed25519));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_and_refuse_what_a_slot_cannot_hold() {
        for slot in Slot::ALL {
            for attributes in KeyAttributes::supported(slot) {
                assert_eq!(
                    KeyAttributes::parse(&attributes.to_bytes(), slot),
                    Ok(attributes)
                );
            }
        }
        let ed25519 = hex::decode("162B06010401DA470F01").unwrap();
        assert!(KeyAttributes::parse(&ed25519, Slot::Signature).is_ok());
        assert_eq!(
            KeyAttributes::parse(&ed25519, Slot::Decryption),
            Err(Status::IncorrectData)
        );
        assert_eq!(
            KeyAttributes::parse(&hex::decode("010400002000").unwrap(), Slot::Signature),
            Err(Status::IncorrectData),
            "RSA-1024"
        );
        assert_eq!(
            KeyAttributes::parse(&[], Slot::Signature),
            Err(Status::IncorrectData)
        );
        assert_eq!(
            KeyAttributes::parse(
                &hex::decode("122B060104019755010501").unwrap(),
                Slot::Decryption
            )
            .unwrap()
            .algorithm(),
            Some(AsymmetricAlgorithm::X25519)
        );
    }
}
