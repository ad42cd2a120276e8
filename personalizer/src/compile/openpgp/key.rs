//! A key slot's private key at preparation: generated here (OpenSSL for RSA and the NIST curves,
//! the dalek crates for Ed25519 and X25519, the backends the card itself uses) or imported from
//! an escrowed file; its public part, the card's key import template (`4D`), and the signatures
//! of the exported certificate. The private key never leaves this type except into the import
//! template, whose buffer wipes itself.

use std::fmt;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use spki::der::asn1::BitStringRef;
use spki::der::pem::LineEnding;
use spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};
use vsc_core::applications::openpgp::Slot;
use vsc_core::security::PublicKey;
use vsc_core::tlv;
use zeroize::Zeroizing;

use crate::profile::openpgp::OpenPgpAlgorithm;

/// A key operation failed in the backend (it does not happen with valid keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{algorithm} key: {what}")]
pub struct KeyError {
    /// The algorithm.
    pub algorithm: &'static str,
    /// What failed (never key material).
    pub what: &'static str,
}

/// A private key.
pub enum PrivateKey {
    /// RSA, e = 65537 when generated.
    Rsa(Rsa<Private>),
    /// NIST P-256 or P-384.
    Ec {
        /// Which curve.
        algorithm: OpenPgpAlgorithm,
        /// The key.
        key: EcKey<Private>,
    },
    /// Ed25519.
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// X25519, with its public key (computed once: deriving it is a scalar multiplication,
    /// as dear as the key's generation).
    X25519 {
        /// The secret scalar.
        secret: Box<x25519_dalek::StaticSecret>,
        /// Its public key.
        public: x25519_dalek::PublicKey,
    },
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.algorithm().name())
    }
}

impl PrivateKey {
    /// A new key of `algorithm` from the operating system's generator.
    pub fn generate(algorithm: OpenPgpAlgorithm) -> Result<PrivateKey, KeyError> {
        let failed = |what| KeyError {
            algorithm: algorithm.name(),
            what,
        };
        Ok(match algorithm {
            OpenPgpAlgorithm::Rsa2048 | OpenPgpAlgorithm::Rsa3072 | OpenPgpAlgorithm::Rsa4096 => {
                let bits = algorithm.platform().rsa_bits().unwrap_or(2048);
                PrivateKey::Rsa(Rsa::generate(bits).map_err(|_| failed("generation failed"))?)
            }
            OpenPgpAlgorithm::NistP256 | OpenPgpAlgorithm::NistP384 => {
                let group = group(algorithm).map_err(|_| failed("no such curve"))?;
                PrivateKey::Ec {
                    algorithm,
                    key: EcKey::generate(&group).map_err(|_| failed("generation failed"))?,
                }
            }
            OpenPgpAlgorithm::Ed25519 => PrivateKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
            )),
            OpenPgpAlgorithm::Cv25519 => PrivateKey::x25519(
                x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng),
            ),
        })
    }

    /// An X25519 key from its secret scalar, its public key computed.
    pub fn x25519(secret: x25519_dalek::StaticSecret) -> PrivateKey {
        let public = x25519_dalek::PublicKey::from(&secret);
        PrivateKey::X25519 {
            secret: Box::new(secret),
            public,
        }
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> OpenPgpAlgorithm {
        match self {
            PrivateKey::Rsa(rsa) => match rsa.n().num_bits() {
                3072 => OpenPgpAlgorithm::Rsa3072,
                4096 => OpenPgpAlgorithm::Rsa4096,
                _ => OpenPgpAlgorithm::Rsa2048,
            },
            PrivateKey::Ec { algorithm, .. } => *algorithm,
            PrivateKey::Ed25519(_) => OpenPgpAlgorithm::Ed25519,
            PrivateKey::X25519 { .. } => OpenPgpAlgorithm::Cv25519,
        }
    }

    fn failed(&self, what: &'static str) -> KeyError {
        KeyError {
            algorithm: self.algorithm().name(),
            what,
        }
    }

    /// The public key as the card answers it (`7F49`): RSA n and e, the uncompressed point of
    /// the NIST curves, the 32-byte point of Ed25519 and X25519.
    pub fn public(&self) -> Result<PublicKey, KeyError> {
        Ok(match self {
            PrivateKey::Rsa(rsa) => PublicKey::Rsa {
                n: rsa.n().to_vec(),
                e: rsa.e().to_vec(),
            },
            PrivateKey::Ec { key, .. } => {
                let mut ctx = BigNumContext::new().map_err(|_| self.failed("no context"))?;
                let point = key
                    .public_key()
                    .to_bytes(key.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
                    .map_err(|_| self.failed("no public point"))?;
                PublicKey::Ec { point }
            }
            PrivateKey::Ed25519(key) => PublicKey::Ec {
                point: key.verifying_key().to_bytes().to_vec(),
            },
            PrivateKey::X25519 { public, .. } => PublicKey::Ec {
                point: public.to_bytes().to_vec(),
            },
        })
    }

    /// The key as an OpenSSL key (RSA and the NIST curves; the 25519 keys live in the dalek
    /// crates): for X.509 certificates of PIV keys.
    pub fn to_pkey(&self) -> Result<PKey<Private>, KeyError> {
        match self {
            PrivateKey::Rsa(rsa) => PKey::from_rsa(rsa.clone()),
            PrivateKey::Ec { key, .. } => PKey::from_ec_key(key.clone()),
            _ => return Err(self.failed("no OpenSSL key")),
        }
        .map_err(|_| self.failed("no OpenSSL key"))
    }

    /// The public key in PEM (SubjectPublicKeyInfo, `BEGIN PUBLIC KEY`): Ed25519 and X25519
    /// (RFC 8410) through RustCrypto's `spki`, RSA and the NIST curves through OpenSSL.
    /// (OpenSSL 3's encoder cost a 25519 key more than its generation: about 500,000
    /// instructions under callgrind, against 200,000.)
    pub fn public_pem(&self) -> Result<String, KeyError> {
        let (oid, point) = match self {
            PrivateKey::Rsa(rsa) => {
                return self.openssl_pem(PKey::from_rsa(rsa.clone()));
            }
            PrivateKey::Ec { key, .. } => return self.openssl_pem(PKey::from_ec_key(key.clone())),
            PrivateKey::Ed25519(key) => (ID_ED25519, key.verifying_key().to_bytes()),
            PrivateKey::X25519 { public, .. } => (ID_X25519, public.to_bytes()),
        };
        use spki::der::EncodePem as _;
        let subject_public_key =
            BitStringRef::from_bytes(&point).map_err(|_| self.failed("no PEM"))?;
        SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef {
                oid,
                parameters: None,
            },
            subject_public_key,
        }
        .to_pem(LineEnding::LF)
        .map_err(|_| self.failed("no PEM"))
    }

    fn openssl_pem<T: openssl::pkey::HasPublic>(
        &self,
        key: Result<PKey<T>, openssl::error::ErrorStack>,
    ) -> Result<String, KeyError> {
        let pem = key
            .and_then(|k| k.public_key_to_pem())
            .map_err(|_| self.failed("no PEM"))?;
        String::from_utf8(pem).map_err(|_| self.failed("no PEM"))
    }

    /// What the card answers to GENERATE ASYMMETRIC KEY PAIR P1 `81` for this key, as the
    /// OpenPGP card specification 3.4 (4.4.3.3) writes it: `7F49 { 81 n, 82 e }` for RSA,
    /// `7F49 { 86 point }` for the curves (the 25519 points native, without `40`).
    pub fn card_public_template(&self) -> Result<Vec<u8>, KeyError> {
        let public = self.public()?;
        let mut out = Vec::with_capacity(600);
        tlv::push_constructed(&mut out, &[0x7F, 0x49], |out| match &public {
            PublicKey::Rsa { n, e } => {
                tlv::push_primitive(out, &[0x81], n);
                tlv::push_primitive(out, &[0x82], e);
            }
            PublicKey::Ec { point } => tlv::push_primitive(out, &[0x86], point),
        });
        Ok(out)
    }

    /// The data of the key import (PUT DATA odd, `3FFF`): `4D { CRT, 7F48 <tags and lengths>,
    /// 5F48 <values> }`, RSA as e, p, q (import format `00`), ECC as the private key and, as
    /// real cards want it, the public key (`99`).
    pub fn import_template(&self, slot: Slot) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let mut parts: Vec<(u8, Zeroizing<Vec<u8>>)> = Vec::with_capacity(3);
        match self {
            PrivateKey::Rsa(rsa) => {
                let (Some(p), Some(q)) = (rsa.p(), rsa.q()) else {
                    return Err(self.failed("no primes"));
                };
                parts.push((0x91, Zeroizing::new(rsa.e().to_vec())));
                parts.push((0x92, Zeroizing::new(p.to_vec())));
                parts.push((0x93, Zeroizing::new(q.to_vec())));
            }
            PrivateKey::Ec { algorithm, key } => {
                let len = algorithm.platform().field_len().unwrap_or(32) as i32;
                let private = key
                    .private_key()
                    .to_vec_padded(len)
                    .map_err(|_| self.failed("no scalar"))?;
                parts.push((0x92, Zeroizing::new(private)));
            }
            PrivateKey::Ed25519(key) => parts.push((0x92, Zeroizing::new(key.to_bytes().to_vec()))),
            PrivateKey::X25519 { secret, .. } => {
                parts.push((0x92, Zeroizing::new(secret.to_bytes().to_vec())))
            }
        }
        if let PublicKey::Ec { point } = self.public()? {
            parts.push((0x99, Zeroizing::new(point)));
        }
        let mut list = Vec::with_capacity(12);
        let mut values = Zeroizing::new(Vec::with_capacity(1100));
        for (tag, value) in &parts {
            list.push(*tag);
            tlv::push_length(&mut list, value.len());
            values.extend_from_slice(value);
        }
        let crt = match slot {
            Slot::Signature => 0xB6,
            Slot::Decryption => 0xB8,
            Slot::Authentication => 0xA4,
        };
        let mut out = Zeroizing::new(Vec::with_capacity(values.len() + 32));
        tlv::push_constructed(&mut out, &[0x4D], |out| {
            tlv::push_primitive(out, &[crt], &[]);
            tlv::push_primitive(out, &[0x7F, 0x48], &list);
            tlv::push_primitive(out, &[0x5F, 0x48], &values);
        });
        Ok(out)
    }

    /// An OpenPGP signature's values over `digest` (SHA-256, or SHA-384 for P-384): RSA PKCS #1
    /// v1.5 with the DigestInfo, ECDSA and EdDSA `r` and `s` (EdDSA signs the digest, as
    /// OpenPGP's version 4 EdDSA does).
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<Vec<u8>>, KeyError> {
        match self {
            PrivateKey::Rsa(rsa) => {
                let prefix: &[u8] = match digest.len() {
                    48 => &SHA384_DIGEST_INFO,
                    _ => &SHA256_DIGEST_INFO,
                };
                let mut input = prefix.to_vec();
                input.extend_from_slice(digest);
                let mut out = vec![0; rsa.size() as usize];
                let len = rsa
                    .private_encrypt(&input, &mut out, Padding::PKCS1)
                    .map_err(|_| self.failed("signature failed"))?;
                out.truncate(len);
                Ok(vec![out])
            }
            PrivateKey::Ec { key, .. } => {
                let signature =
                    EcdsaSig::sign(digest, key).map_err(|_| self.failed("signature failed"))?;
                Ok(vec![signature.r().to_vec(), signature.s().to_vec()])
            }
            PrivateKey::Ed25519(key) => {
                use ed25519_dalek::Signer;
                let signature = key.sign(digest).to_bytes();
                Ok(vec![signature[..32].to_vec(), signature[32..].to_vec()])
            }
            PrivateKey::X25519 { .. } => Err(self.failed("X25519 does not sign")),
        }
    }
}

/// id-Ed25519 and id-X25519 (RFC 8410, 3).
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const ID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");

/// DER of DigestInfo for SHA-256 before the hash (RFC 8017, 9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// DER of DigestInfo for SHA-384 before the hash.
const SHA384_DIGEST_INFO: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];

pub(super) fn group(algorithm: OpenPgpAlgorithm) -> Result<EcGroup, openssl::error::ErrorStack> {
    let nid = match algorithm {
        OpenPgpAlgorithm::NistP384 => Nid::SECP384R1,
        _ => Nid::X9_62_PRIME256V1,
    };
    EcGroup::from_curve_name(nid)
}

/// An RSA key from its parts, checked (`None` when they do not make a valid key).
pub(super) fn rsa_checked(rsa: Rsa<Private>) -> Option<Rsa<Private>> {
    rsa.check_key().ok().filter(|ok| *ok).map(|_| rsa)
}

/// A NIST curve key from its private scalar (big-endian), the public point computed.
pub(super) fn ec_from_scalar(algorithm: OpenPgpAlgorithm, scalar: &[u8]) -> Option<EcKey<Private>> {
    let group = group(algorithm).ok()?;
    let mut ctx = BigNumContext::new().ok()?;
    let d = BigNum::from_slice(scalar).ok()?;
    let mut public = openssl::ec::EcPoint::new(&group).ok()?;
    public.mul_generator2(&group, &d, &mut ctx).ok()?;
    let key = EcKey::from_private_components(&group, &d, &public).ok()?;
    key.check_key().ok()?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::Id;

    #[test]
    fn every_algorithm_generates_an_import_template_the_card_takes() {
        use vsc_core::card::Card;
        for (slot, algorithm) in [
            (Slot::Signature, OpenPgpAlgorithm::Ed25519),
            (Slot::Decryption, OpenPgpAlgorithm::Cv25519),
            (Slot::Authentication, OpenPgpAlgorithm::NistP256),
            (Slot::Signature, OpenPgpAlgorithm::NistP384),
            (Slot::Decryption, OpenPgpAlgorithm::Rsa2048),
        ] {
            let key = PrivateKey::generate(algorithm).unwrap();
            let mut card: Card = vsc_core::sample::openpgp_token([0, 0, 0xFF, 0x56, 0, 0, 0, 1]);
            let send = |card: &mut Card, command: vsc_core::commands::CommandBuf| {
                hex::encode_upper(card.transmit(&command.to_vec().unwrap()))
            };
            assert_eq!(
                send(&mut card, vsc_core::commands::openpgp::select()),
                "9000"
            );
            assert_eq!(
                send(
                    &mut card,
                    vsc_core::commands::openpgp::verify(0x83, b"12345678")
                ),
                "9000"
            );
            let tag = 0xC1 + slot_index(slot);
            let attributes = algorithm.attributes(slot).to_bytes();
            assert_eq!(
                send(
                    &mut card,
                    vsc_core::commands::openpgp::put_data(tag, &attributes)
                ),
                "9000"
            );
            let template = key.import_template(slot).unwrap();
            assert_eq!(
                send(
                    &mut card,
                    vsc_core::commands::openpgp::import_key(&template)
                ),
                "9000",
                "{algorithm:?}"
            );
            let read = send(
                &mut card,
                vsc_core::commands::openpgp::read_public_key(slot),
            );
            assert!(read.ends_with("9000"), "{read}");
            let public = match key.public().unwrap() {
                PublicKey::Rsa { n, .. } => n,
                PublicKey::Ec { point } => point,
            };
            assert!(read.contains(&hex::encode_upper(&public)), "{algorithm:?}");
            // The exported answer is built from the key: byte for byte the card's.
            assert_eq!(
                read,
                format!(
                    "{}9000",
                    hex::encode_upper(key.card_public_template().unwrap())
                ),
                "{algorithm:?}"
            );
            assert!(
                key.public_pem()
                    .unwrap()
                    .starts_with("-----BEGIN PUBLIC KEY-----")
            );
            assert!(!format!("{key:?}").contains(&hex::encode_upper(&template[..])));
        }
    }

    #[test]
    fn the_25519_keys_pem_is_the_one_openssl_writes() {
        // RFC 8410 SubjectPublicKeyInfo; OpenSSL, an independent encoder, writes the same.
        for algorithm in [OpenPgpAlgorithm::Ed25519, OpenPgpAlgorithm::Cv25519] {
            let key = PrivateKey::generate(algorithm).unwrap();
            let PublicKey::Ec { point } = key.public().unwrap() else {
                panic!("a 25519 key has a point");
            };
            let id = match algorithm {
                OpenPgpAlgorithm::Ed25519 => Id::ED25519,
                _ => Id::X25519,
            };
            let openssl = PKey::public_key_from_raw_bytes(&point, id)
                .unwrap()
                .public_key_to_pem()
                .unwrap();
            assert_eq!(
                key.public_pem().unwrap(),
                String::from_utf8(openssl).unwrap()
            );
        }
        // And the X25519 public key kept with the secret is the secret's.
        let key = PrivateKey::generate(OpenPgpAlgorithm::Cv25519).unwrap();
        let PrivateKey::X25519 { secret, public } = &key else {
            panic!("an X25519 key");
        };
        assert_eq!(x25519_dalek::PublicKey::from(secret.as_ref()), *public);
    }

    fn slot_index(slot: Slot) -> u16 {
        match slot {
            Slot::Signature => 0,
            Slot::Decryption => 1,
            Slot::Authentication => 2,
        }
    }
}
