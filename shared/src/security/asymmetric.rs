//! Asymmetric key objects, the platform's for every application: RSA 2048/3072/4096, ECC P-256
//! and P-384 (ECDSA, ECDH), Ed25519 and X25519. A key is generated on the card or imported, is
//! used only for what its usage allows, and never leaves the card: no function here returns
//! private key bytes except to seal them into an image (serde), and every copy zeroizes.
//!
//! Backends, chosen from the measurements in docs/platform.md: OpenSSL (the `openssl` crate,
//! the system's libcrypto) for RSA and the NIST curves; `ed25519-dalek` and `x25519-dalek` for
//! Ed25519 and X25519. A key's private part rests as bytes (PKCS#1 DER for RSA, SEC1 DER for
//! the NIST curves, the 32-byte seed or scalar for the Edwards and Montgomery curves) and is
//! parsed once into the backend's form, kept beside it until the key object is dropped.

use std::fmt;
use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{KeyUsage, SecretBytes};
use crate::apdu::Status;

/// The algorithm of an asymmetric key object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AsymmetricAlgorithm {
    /// RSA with a 2048-bit modulus, e = 65537 when generated.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECC on NIST P-256 (ECDSA, ECDH).
    P256,
    /// ECC on NIST P-384 (ECDSA, ECDH).
    P384,
    /// Ed25519 signatures (RFC 8032, pure EdDSA).
    Ed25519,
    /// X25519 key agreement (RFC 7748).
    X25519,
}

impl AsymmetricAlgorithm {
    /// Every algorithm.
    pub const ALL: [AsymmetricAlgorithm; 7] = [
        AsymmetricAlgorithm::Rsa2048,
        AsymmetricAlgorithm::Rsa3072,
        AsymmetricAlgorithm::Rsa4096,
        AsymmetricAlgorithm::P256,
        AsymmetricAlgorithm::P384,
        AsymmetricAlgorithm::Ed25519,
        AsymmetricAlgorithm::X25519,
    ];

    /// The name, e.g. `RSA-2048`, `NIST P-256`, `Ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            AsymmetricAlgorithm::Rsa2048 => "RSA-2048",
            AsymmetricAlgorithm::Rsa3072 => "RSA-3072",
            AsymmetricAlgorithm::Rsa4096 => "RSA-4096",
            AsymmetricAlgorithm::P256 => "NIST P-256",
            AsymmetricAlgorithm::P384 => "NIST P-384",
            AsymmetricAlgorithm::Ed25519 => "Ed25519",
            AsymmetricAlgorithm::X25519 => "X25519",
        }
    }

    /// The RSA modulus length in bits, for RSA.
    pub fn rsa_bits(self) -> Option<u32> {
        match self {
            AsymmetricAlgorithm::Rsa2048 => Some(2048),
            AsymmetricAlgorithm::Rsa3072 => Some(3072),
            AsymmetricAlgorithm::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The length in bytes of a field element or scalar, for the elliptic curves.
    pub fn field_len(self) -> Option<usize> {
        match self {
            AsymmetricAlgorithm::P256 | AsymmetricAlgorithm::Ed25519 => Some(32),
            AsymmetricAlgorithm::X25519 => Some(32),
            AsymmetricAlgorithm::P384 => Some(48),
            _ => None,
        }
    }

    fn nid(self) -> Option<Nid> {
        match self {
            AsymmetricAlgorithm::P256 => Some(Nid::X9_62_PRIME256V1),
            AsymmetricAlgorithm::P384 => Some(Nid::SECP384R1),
            _ => None,
        }
    }
}

/// How a key came onto the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyOrigin {
    /// Generated on the card.
    Generated,
    /// Imported from outside.
    Imported,
}

/// A public key as cards hand it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: the modulus and the public exponent, big-endian without leading zeros.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
    },
    /// An elliptic curve point: `04 ‖ x ‖ y` for the NIST curves, the 32-byte encoding for
    /// Ed25519 and X25519.
    Ec {
        /// The encoded point.
        point: Vec<u8>,
    },
}

/// What went wrong with a key operation: each is the status word the card answers.
fn bad_input() -> Status {
    Status::IncorrectData
}

fn backend_failure() -> Status {
    Status::ExecutionError
}

/// An asymmetric private key object.
#[derive(Serialize, Deserialize)]
pub struct AsymmetricKey {
    /// Its algorithm.
    pub algorithm: AsymmetricAlgorithm,
    /// What it may be used for: [`KeyUsage::SIGN`], [`KeyUsage::DECIPHER`],
    /// [`KeyUsage::AGREE`], [`KeyUsage::INTERNAL_AUTHENTICATE`].
    pub usage: KeyUsage,
    /// Generated or imported.
    pub origin: KeyOrigin,
    secret: SecretBytes,
    #[serde(skip)]
    loaded: OnceLock<Loaded>,
}

/// The private key in its backend's form.
#[derive(Clone)]
enum Loaded {
    Rsa(Rsa<Private>),
    Ec(EcKey<Private>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    X25519(Box<x25519_dalek::StaticSecret>),
}

impl AsymmetricKey {
    /// A new key generated on the card: RSA and the NIST curves by OpenSSL (its generator is
    /// seeded from the operating system's), Ed25519 and X25519 from the operating system's
    /// generator directly.
    pub fn generate(
        algorithm: AsymmetricAlgorithm,
        usage: KeyUsage,
    ) -> Result<AsymmetricKey, Status> {
        let loaded = match algorithm {
            AsymmetricAlgorithm::Rsa2048
            | AsymmetricAlgorithm::Rsa3072
            | AsymmetricAlgorithm::Rsa4096 => {
                let bits = algorithm.rsa_bits().unwrap_or(2048);
                Loaded::Rsa(Rsa::generate(bits).map_err(|_| backend_failure())?)
            }
            AsymmetricAlgorithm::P256 | AsymmetricAlgorithm::P384 => {
                let group = group(algorithm)?;
                Loaded::Ec(EcKey::generate(&group).map_err(|_| backend_failure())?)
            }
            AsymmetricAlgorithm::Ed25519 => Loaded::Ed25519(Box::new(
                ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
            )),
            AsymmetricAlgorithm::X25519 => Loaded::X25519(Box::new(
                x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng),
            )),
        };
        AsymmetricKey::from_loaded(algorithm, usage, KeyOrigin::Generated, loaded)
    }

    /// An imported RSA key from its public exponent and primes (`6A80` when they do not make a
    /// key of the algorithm's size).
    pub fn import_rsa(
        algorithm: AsymmetricAlgorithm,
        usage: KeyUsage,
        e: &[u8],
        p: &[u8],
        q: &[u8],
    ) -> Result<AsymmetricKey, Status> {
        let bits = algorithm.rsa_bits().ok_or_else(bad_input)?;
        let rsa = rsa_from_primes(e, p, q).map_err(|_| bad_input())?;
        if rsa.n().num_bits() != bits as i32 || !rsa.check_key().unwrap_or(false) {
            return Err(bad_input());
        }
        AsymmetricKey::from_loaded(algorithm, usage, KeyOrigin::Imported, Loaded::Rsa(rsa))
    }

    /// An imported RSA key in the CRT form PIV cards take (YubiKey's IMPORT ASYMMETRIC KEY):
    /// the primes and the CRT values, with the public exponent 65537. The CRT values must be
    /// the ones the primes give (`6A80` otherwise, and when the key does not check).
    pub fn import_rsa_crt(
        algorithm: AsymmetricAlgorithm,
        usage: KeyUsage,
        primes: (&[u8], &[u8]),
        crt: (&[u8], &[u8], &[u8]),
    ) -> Result<AsymmetricKey, Status> {
        let key =
            AsymmetricKey::import_rsa(algorithm, usage, &[0x01, 0x00, 0x01], primes.0, primes.1)?;
        let Loaded::Rsa(rsa) = key.loaded()? else {
            return Err(bad_input());
        };
        let same = |given: &[u8], own: Option<&openssl::bn::BigNumRef>| {
            let zeros = given.iter().take_while(|b| **b == 0).count();
            own.is_some_and(|own| {
                let mut own = own.to_vec();
                let equal = bool::from(subtle::ConstantTimeEq::ct_eq(
                    &given[zeros..],
                    own.as_slice(),
                ));
                own.zeroize();
                equal
            })
        };
        let (dp, dq, qinv) = crt;
        if !(same(dp, rsa.dmp1()) && same(dq, rsa.dmq1()) && same(qinv, rsa.iqmp())) {
            return Err(bad_input());
        }
        Ok(key)
    }

    /// An imported elliptic curve key from its private scalar (big-endian for the NIST curves,
    /// the 32-byte seed for Ed25519, the 32-byte scalar for X25519; shorter values are padded
    /// with leading zeros as OpenPGP allows).
    pub fn import_ec(
        algorithm: AsymmetricAlgorithm,
        usage: KeyUsage,
        private: &[u8],
    ) -> Result<AsymmetricKey, Status> {
        let len = algorithm.field_len().ok_or_else(bad_input)?;
        if private.is_empty() || private.len() > len {
            return Err(bad_input());
        }
        let mut padded = Zeroizing::new(vec![0; len]);
        padded[len - private.len()..].copy_from_slice(private);
        let loaded = match algorithm {
            AsymmetricAlgorithm::P256 | AsymmetricAlgorithm::P384 => {
                Loaded::Ec(ec_from_scalar(algorithm, &padded)?)
            }
            AsymmetricAlgorithm::Ed25519 => {
                let seed: [u8; 32] = padded.as_slice().try_into().map_err(|_| bad_input())?;
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                let mut seed = seed;
                seed.zeroize();
                Loaded::Ed25519(Box::new(key))
            }
            AsymmetricAlgorithm::X25519 => {
                let mut scalar: [u8; 32] = padded.as_slice().try_into().map_err(|_| bad_input())?;
                let key = x25519_dalek::StaticSecret::from(scalar);
                scalar.zeroize();
                Loaded::X25519(Box::new(key))
            }
            _ => return Err(bad_input()),
        };
        AsymmetricKey::from_loaded(algorithm, usage, KeyOrigin::Imported, loaded)
    }

    fn from_loaded(
        algorithm: AsymmetricAlgorithm,
        usage: KeyUsage,
        origin: KeyOrigin,
        loaded: Loaded,
    ) -> Result<AsymmetricKey, Status> {
        let secret = match &loaded {
            Loaded::Rsa(rsa) => {
                let mut der = rsa.private_key_to_der().map_err(|_| backend_failure())?;
                let secret = SecretBytes::new(&der);
                der.zeroize();
                secret
            }
            Loaded::Ec(ec) => {
                let mut der = ec.private_key_to_der().map_err(|_| backend_failure())?;
                let secret = SecretBytes::new(&der);
                der.zeroize();
                secret
            }
            Loaded::Ed25519(key) => SecretBytes::new(key.as_bytes()),
            Loaded::X25519(key) => SecretBytes::new(key.as_bytes()),
        };
        let cell = OnceLock::new();
        let _ = cell.set(loaded);
        Ok(AsymmetricKey {
            algorithm,
            usage,
            origin,
            secret,
            loaded: cell,
        })
    }

    /// The key in its backend's form, parsed from its bytes the first time.
    fn loaded(&self) -> Result<&Loaded, Status> {
        if let Some(loaded) = self.loaded.get() {
            return Ok(loaded);
        }
        let bytes = self.secret.expose();
        let loaded = match self.algorithm {
            AsymmetricAlgorithm::Rsa2048
            | AsymmetricAlgorithm::Rsa3072
            | AsymmetricAlgorithm::Rsa4096 => Loaded::Rsa(
                Rsa::private_key_from_der(bytes).map_err(|_| Status::ReferenceDataNotUsable)?,
            ),
            AsymmetricAlgorithm::P256 | AsymmetricAlgorithm::P384 => Loaded::Ec(
                EcKey::private_key_from_der(bytes).map_err(|_| Status::ReferenceDataNotUsable)?,
            ),
            AsymmetricAlgorithm::Ed25519 => {
                let seed: &[u8; 32] = bytes
                    .try_into()
                    .map_err(|_| Status::ReferenceDataNotUsable)?;
                Loaded::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(seed)))
            }
            AsymmetricAlgorithm::X25519 => {
                let mut scalar: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| Status::ReferenceDataNotUsable)?;
                let key = x25519_dalek::StaticSecret::from(scalar);
                scalar.zeroize();
                Loaded::X25519(Box::new(key))
            }
        };
        Ok(self.loaded.get_or_init(|| loaded))
    }

    /// The public key.
    pub fn public_key(&self) -> Result<PublicKey, Status> {
        Ok(match self.loaded()? {
            Loaded::Rsa(rsa) => PublicKey::Rsa {
                n: rsa.n().to_vec(),
                e: rsa.e().to_vec(),
            },
            Loaded::Ec(ec) => {
                let mut ctx = BigNumContext::new().map_err(|_| backend_failure())?;
                let point = ec
                    .public_key()
                    .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
                    .map_err(|_| backend_failure())?;
                PublicKey::Ec { point }
            }
            Loaded::Ed25519(key) => PublicKey::Ec {
                point: key.verifying_key().to_bytes().to_vec(),
            },
            Loaded::X25519(key) => PublicKey::Ec {
                point: x25519_dalek::PublicKey::from(key.as_ref())
                    .to_bytes()
                    .to_vec(),
            },
        })
    }

    /// A signature over `input`: RSA PKCS #1 v1.5 over `input` as given (a DigestInfo, or
    /// whatever the application lets its terminal sign), ECDSA over the hash `input` (raw
    /// `r ‖ s`, each the field's length), Ed25519 over the message `input`. Needs
    /// [`KeyUsage::SIGN`] or [`KeyUsage::INTERNAL_AUTHENTICATE`] (`6985` otherwise).
    pub fn sign(&self, input: &[u8], usage: KeyUsage) -> Result<Vec<u8>, Status> {
        self.allow(usage)?;
        match self.loaded()? {
            Loaded::Rsa(rsa) => {
                let size = rsa.size() as usize;
                if input.is_empty() || input.len() + 11 > size {
                    return Err(bad_input());
                }
                let mut out = vec![0; size];
                let len = rsa
                    .private_encrypt(input, &mut out, Padding::PKCS1)
                    .map_err(|_| backend_failure())?;
                out.truncate(len);
                Ok(out)
            }
            Loaded::Ec(ec) => {
                if input.is_empty() || input.len() > 64 {
                    return Err(bad_input());
                }
                let len = self.algorithm.field_len().ok_or_else(backend_failure)?;
                let signature = EcdsaSig::sign(input, ec).map_err(|_| backend_failure())?;
                let mut out = signature
                    .r()
                    .to_vec_padded(len as i32)
                    .map_err(|_| backend_failure())?;
                out.extend(
                    signature
                        .s()
                        .to_vec_padded(len as i32)
                        .map_err(|_| backend_failure())?,
                );
                Ok(out)
            }
            Loaded::Ed25519(key) => {
                use ed25519_dalek::Signer;
                Ok(key.sign(input).to_bytes().to_vec())
            }
            Loaded::X25519(_) => Err(Status::ConditionsOfUseNotSatisfied),
        }
    }

    /// The raw RSA private key operation (no padding) on `input`, exactly the modulus long and
    /// below it: PIV's signature and decipherment, where the terminal pads. Needs `usage`
    /// ([`KeyUsage::SIGN`] or [`KeyUsage::DECIPHER`]).
    pub fn rsa_raw(&self, input: &[u8], usage: KeyUsage) -> Result<Zeroizing<Vec<u8>>, Status> {
        self.allow(usage)?;
        let Loaded::Rsa(rsa) = self.loaded()? else {
            return Err(Status::ConditionsOfUseNotSatisfied);
        };
        let size = rsa.size() as usize;
        if input.len() != size {
            return Err(bad_input());
        }
        let mut out = Zeroizing::new(vec![0; size]);
        // OpenSSL refuses an input not below the modulus.
        let len = rsa
            .private_decrypt(input, &mut out, Padding::NONE)
            .map_err(|_| bad_input())?;
        out.truncate(len);
        Ok(out)
    }

    /// An ECDSA signature over the hash `digest` in DER (`SEQUENCE { r, s }`), as PIV answers
    /// it. Needs [`KeyUsage::SIGN`] (or whatever `usage` names).
    pub fn sign_ecdsa_der(&self, digest: &[u8], usage: KeyUsage) -> Result<Vec<u8>, Status> {
        self.allow(usage)?;
        let Loaded::Ec(ec) = self.loaded()? else {
            return Err(Status::ConditionsOfUseNotSatisfied);
        };
        if digest.is_empty() || digest.len() > 64 {
            return Err(bad_input());
        }
        let signature = EcdsaSig::sign(digest, ec).map_err(|_| backend_failure())?;
        signature.to_der().map_err(|_| backend_failure())
    }

    /// RSA PKCS #1 v1.5 decryption of `cryptogram` (at most the modulus length). Needs
    /// [`KeyUsage::DECIPHER`].
    pub fn decipher(&self, cryptogram: &[u8]) -> Result<Zeroizing<Vec<u8>>, Status> {
        self.allow(KeyUsage::DECIPHER)?;
        let Loaded::Rsa(rsa) = self.loaded()? else {
            return Err(Status::ConditionsOfUseNotSatisfied);
        };
        let size = rsa.size() as usize;
        if cryptogram.is_empty() || cryptogram.len() > size {
            return Err(bad_input());
        }
        let mut input = vec![0; size];
        input[size - cryptogram.len()..].copy_from_slice(cryptogram);
        let mut out = Zeroizing::new(vec![0; size]);
        let len = rsa
            .private_decrypt(&input, &mut out, Padding::PKCS1)
            .map_err(|_| bad_input())?;
        out.truncate(len);
        Ok(out)
    }

    /// ECDH with the peer's public point: the x coordinate of the shared point for the NIST
    /// curves, the X25519 output for X25519 (an all-zero result, from a small-order point, is
    /// refused). Needs [`KeyUsage::AGREE`].
    pub fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, Status> {
        self.allow(KeyUsage::AGREE)?;
        match self.loaded()? {
            Loaded::Ec(ec) => {
                let mut ctx = BigNumContext::new().map_err(|_| backend_failure())?;
                let point =
                    EcPoint::from_bytes(ec.group(), peer, &mut ctx).map_err(|_| bad_input())?;
                let peer_key =
                    EcKey::from_public_key(ec.group(), &point).map_err(|_| bad_input())?;
                peer_key.check_key().map_err(|_| bad_input())?;
                let peer_key = PKey::from_ec_key(peer_key).map_err(|_| backend_failure())?;
                let own = PKey::from_ec_key(ec.clone()).map_err(|_| backend_failure())?;
                let mut deriver = Deriver::new(&own).map_err(|_| backend_failure())?;
                deriver.set_peer(&peer_key).map_err(|_| bad_input())?;
                let secret = deriver.derive_to_vec().map_err(|_| bad_input())?;
                Ok(Zeroizing::new(secret))
            }
            Loaded::X25519(key) => {
                let peer: [u8; 32] = peer.try_into().map_err(|_| bad_input())?;
                let shared = key.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
                if !shared.was_contributory() {
                    return Err(bad_input());
                }
                Ok(Zeroizing::new(shared.as_bytes().to_vec()))
            }
            Loaded::Rsa(_) | Loaded::Ed25519(_) => Err(Status::ConditionsOfUseNotSatisfied),
        }
    }

    fn allow(&self, usage: KeyUsage) -> Result<(), Status> {
        if self.usage.allows(usage) {
            Ok(())
        } else {
            Err(Status::ConditionsOfUseNotSatisfied)
        }
    }
}

impl Clone for AsymmetricKey {
    fn clone(&self) -> AsymmetricKey {
        AsymmetricKey {
            algorithm: self.algorithm,
            usage: self.usage,
            origin: self.origin,
            secret: self.secret.clone(),
            loaded: self.loaded.clone(),
        }
    }
}

impl PartialEq for AsymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm
            && self.usage == other.usage
            && self.origin == other.origin
            && self.secret == other.secret
    }
}

impl Eq for AsymmetricKey {}

impl fmt::Debug for AsymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsymmetricKey")
            .field("algorithm", &self.algorithm)
            .field("usage", &self.usage)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

fn group(algorithm: AsymmetricAlgorithm) -> Result<EcGroup, Status> {
    let nid = algorithm.nid().ok_or_else(bad_input)?;
    EcGroup::from_curve_name(nid).map_err(|_| backend_failure())
}

fn ec_from_scalar(algorithm: AsymmetricAlgorithm, scalar: &[u8]) -> Result<EcKey<Private>, Status> {
    let group = group(algorithm)?;
    let mut ctx = BigNumContext::new().map_err(|_| backend_failure())?;
    let d = BigNum::from_slice(scalar).map_err(|_| bad_input())?;
    let mut order = BigNum::new().map_err(|_| backend_failure())?;
    group
        .order(&mut order, &mut ctx)
        .map_err(|_| backend_failure())?;
    if d.num_bits() == 0 || d >= order {
        return Err(bad_input());
    }
    let mut public = EcPoint::new(&group).map_err(|_| backend_failure())?;
    public
        .mul_generator2(&group, &d, &mut ctx)
        .map_err(|_| backend_failure())?;
    let key = EcKey::from_private_components(&group, &d, &public).map_err(|_| bad_input())?;
    key.check_key().map_err(|_| bad_input())?;
    Ok(key)
}

/// The RSA key with public exponent `e` and primes `p`, `q`: n = pq, d = e⁻¹ mod (p−1)(q−1) and
/// the CRT values, computed by OpenSSL's bignum functions (constant-time flags are OpenSSL's).
fn rsa_from_primes(
    e: &[u8],
    p: &[u8],
    q: &[u8],
) -> Result<Rsa<Private>, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new_secure()?;
    let e = BigNum::from_slice(e)?;
    let p = BigNum::from_slice(p)?;
    let q = BigNum::from_slice(q)?;
    let one = BigNum::from_u32(1)?;
    let mut n = BigNum::new()?;
    n.checked_mul(&p, &q, &mut ctx)?;
    let mut p1 = BigNum::new()?;
    p1.checked_sub(&p, &one)?;
    let mut q1 = BigNum::new()?;
    q1.checked_sub(&q, &one)?;
    let mut phi = BigNum::new_secure()?;
    phi.checked_mul(&p1, &q1, &mut ctx)?;
    let mut d = BigNum::new_secure()?;
    d.mod_inverse(&e, &phi, &mut ctx)?;
    let mut dp = BigNum::new_secure()?;
    dp.nnmod(&d, &p1, &mut ctx)?;
    let mut dq = BigNum::new_secure()?;
    dq.nnmod(&d, &q1, &mut ctx)?;
    let mut qi = BigNum::new_secure()?;
    qi.mod_inverse(&q, &p, &mut ctx)?;
    Rsa::from_private_components(n, e, d, p, q, dp, dq, qi)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_USES: KeyUsage = KeyUsage::SIGN
        .union_const(KeyUsage::DECIPHER)
        .union_const(KeyUsage::AGREE);

    #[test]
    fn every_algorithm_generates_and_survives_a_round_trip_through_its_bytes() {
        for algorithm in [
            AsymmetricAlgorithm::Rsa2048,
            AsymmetricAlgorithm::P256,
            AsymmetricAlgorithm::P384,
            AsymmetricAlgorithm::Ed25519,
            AsymmetricAlgorithm::X25519,
        ] {
            let key = AsymmetricKey::generate(algorithm, ALL_USES).unwrap();
            let bytes = postcard::to_allocvec(&key).unwrap();
            let back: AsymmetricKey = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, key);
            assert_eq!(back.public_key().unwrap(), key.public_key().unwrap());
            assert!(!format!("{key:?}").contains("secret"), "{key:?}");
        }
    }

    #[test]
    fn signatures_verify_with_openssl() {
        use openssl::hash::MessageDigest;
        use openssl::sign::Verifier;
        let hash = [0x11u8; 32];
        let key = AsymmetricKey::generate(AsymmetricAlgorithm::P256, KeyUsage::SIGN).unwrap();
        let signature = key.sign(&hash, KeyUsage::SIGN).unwrap();
        assert_eq!(signature.len(), 64);
        let PublicKey::Ec { point } = key.public_key().unwrap() else {
            panic!()
        };
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let point = EcPoint::from_bytes(&group, &point, &mut ctx).unwrap();
        let public = EcKey::from_public_key(&group, &point).unwrap();
        let r = BigNum::from_slice(&signature[..32]).unwrap();
        let s = BigNum::from_slice(&signature[32..]).unwrap();
        let sig = EcdsaSig::from_private_components(r, s).unwrap();
        assert!(sig.verify(&hash, &public).unwrap());

        let key = AsymmetricKey::generate(AsymmetricAlgorithm::Ed25519, KeyUsage::SIGN).unwrap();
        let signature = key.sign(b"message", KeyUsage::SIGN).unwrap();
        let PublicKey::Ec { point } = key.public_key().unwrap() else {
            panic!()
        };
        let public = PKey::public_key_from_raw_bytes(&point, openssl::pkey::Id::ED25519).unwrap();
        let mut verifier = Verifier::new_without_digest(&public).unwrap();
        assert!(verifier.verify_oneshot(&signature, b"message").unwrap());
        let _ = MessageDigest::sha256();
    }

    #[test]
    fn usage_is_enforced() {
        let key = AsymmetricKey::generate(AsymmetricAlgorithm::X25519, KeyUsage::AGREE).unwrap();
        assert_eq!(
            key.sign(b"x", KeyUsage::SIGN),
            Err(Status::ConditionsOfUseNotSatisfied)
        );
        assert_eq!(key.agree(&[0; 32]).unwrap_err(), Status::IncorrectData);
        let other = AsymmetricKey::generate(AsymmetricAlgorithm::X25519, KeyUsage::AGREE).unwrap();
        let PublicKey::Ec { point } = other.public_key().unwrap() else {
            panic!()
        };
        let PublicKey::Ec { point: own } = key.public_key().unwrap() else {
            panic!()
        };
        assert_eq!(*key.agree(&point).unwrap(), *other.agree(&own).unwrap());
    }

    #[test]
    fn rsa_import_from_primes_matches_the_generated_key() {
        let generated = Rsa::generate(2048).unwrap();
        let key = AsymmetricKey::import_rsa(
            AsymmetricAlgorithm::Rsa2048,
            ALL_USES,
            &generated.e().to_vec(),
            &generated.p().unwrap().to_vec(),
            &generated.q().unwrap().to_vec(),
        )
        .unwrap();
        assert_eq!(
            key.public_key().unwrap(),
            PublicKey::Rsa {
                n: generated.n().to_vec(),
                e: generated.e().to_vec()
            }
        );
        let mut cryptogram = vec![0; 256];
        let len = generated
            .public_encrypt(b"session key", &mut cryptogram, Padding::PKCS1)
            .unwrap();
        assert_eq!(
            *key.decipher(&cryptogram[..len]).unwrap(),
            b"session key".to_vec()
        );
        assert_eq!(
            AsymmetricKey::import_rsa(
                AsymmetricAlgorithm::Rsa3072,
                ALL_USES,
                &[1, 0, 1],
                &generated.p().unwrap().to_vec(),
                &generated.q().unwrap().to_vec()
            )
            .unwrap_err(),
            Status::IncorrectData,
            "a 2048-bit key for a 3072-bit slot"
        );
        assert!(
            AsymmetricKey::import_rsa(
                AsymmetricAlgorithm::Rsa2048,
                ALL_USES,
                &[1, 0, 1],
                &[4],
                &[6]
            )
            .is_err()
        );
        assert!(
            AsymmetricKey::import_ec(AsymmetricAlgorithm::P256, ALL_USES, &[0xFF; 32]).is_err()
        );
        assert!(AsymmetricKey::import_ec(AsymmetricAlgorithm::P256, ALL_USES, &[0; 33]).is_err());
    }
}
