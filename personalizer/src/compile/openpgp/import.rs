//! Escrowed keys imported from a record's file: PKCS #8 (and the PKCS #1 / SEC 1 PEM forms)
//! through OpenSSL, OpenPGP transferable secret keys through rPGP (the `pgp` crate: packets,
//! S2K, unlocking). Each error says what is wrong with the file without showing any of it.

use openssl::pkey::{Id, PKey, Private};
use pgp::composed::{Deserializable, SignedSecretKey};
use pgp::types::{KeyDetails, Password};
use vsc_core::applications::openpgp::Slot;
use zeroize::Zeroizing;

use super::key::{PrivateKey, ec_from_scalar, rsa_checked};
use super::packets::{KeyPacket, fingerprint};
use crate::profile::openpgp::{KeyFileFormat, OpenPgpAlgorithm};

/// Why an escrowed key cannot be used (never a byte of the key or the passphrase).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read.
    #[error("cannot read the key file: {0}")]
    Read(String),
    /// It is encrypted and the profile gives no passphrase for it.
    #[error("the key file is encrypted and the profile names no passphrase_field")]
    NeedsPassphrase,
    /// The passphrase does not open it.
    #[error("the passphrase does not open the key file")]
    WrongPassphrase,
    /// It does not parse (truncated, or another format).
    #[error("the key file is not {0} (truncated or another format)")]
    Malformed(&'static str),
    /// It holds another algorithm than the slot's.
    #[error("the key file holds a {found} key, the slot takes {expected}")]
    WrongAlgorithm {
        /// What the file holds.
        found: String,
        /// What the profile says.
        expected: &'static str,
    },
    /// An OpenPGP file without a key for the slot.
    #[error("the OpenPGP key has no {0} key (by its key flags)")]
    NoKeyForSlot(&'static str),
    /// The key does not check (an RSA key whose parts do not fit, a scalar off the curve).
    #[error("the key does not check (inconsistent parts)")]
    Inconsistent,
}

/// A key imported for a slot: the private key and, from an OpenPGP file, the key packet as the
/// file has it (so that the card's fingerprint is the key's own).
#[derive(Debug)]
pub struct Imported {
    /// The private key.
    pub key: PrivateKey,
    /// The OpenPGP key packet, for OpenPGP files.
    pub packet: Option<KeyPacket>,
}

/// Reads the key file `bytes` of `format` for `slot`, which takes `algorithm`.
pub fn import(
    bytes: &[u8],
    format: KeyFileFormat,
    passphrase: Option<&[u8]>,
    slot: Slot,
    algorithm: OpenPgpAlgorithm,
) -> Result<Imported, ImportError> {
    let imported = match format {
        KeyFileFormat::Pkcs8 => Imported {
            key: pkcs8(bytes, passphrase)?,
            packet: None,
        },
        KeyFileFormat::OpenPgp => openpgp(bytes, passphrase, slot)?,
    };
    let found = imported.key.algorithm();
    if found != algorithm {
        return Err(ImportError::WrongAlgorithm {
            found: found.name().to_string(),
            expected: algorithm.name(),
        });
    }
    Ok(imported)
}

/// A PKCS #8 key (plain or encrypted, PEM or DER), or a PKCS #1 / SEC 1 PEM one: also what a
/// PIV slot imports.
pub fn pkcs8(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, ImportError> {
    let pem = bytes.starts_with(b"-----BEGIN");
    let encrypted = pem
        && (contains(bytes, b"ENCRYPTED PRIVATE KEY")
            || contains(bytes, b"Proc-Type: 4,ENCRYPTED"));
    let key: PKey<Private> = match (pem, passphrase) {
        (true, Some(passphrase)) => PKey::private_key_from_pem_passphrase(bytes, passphrase)
            .map_err(|_| {
                if encrypted {
                    ImportError::WrongPassphrase
                } else {
                    ImportError::Malformed("a PKCS #8 key")
                }
            })?,
        (true, None) => {
            if encrypted {
                return Err(ImportError::NeedsPassphrase);
            }
            // No passphrase callback that could ask a terminal: an empty answer.
            PKey::private_key_from_pem_callback(bytes, |_| Ok(0))
                .map_err(|_| ImportError::Malformed("a PKCS #8 key"))?
        }
        (false, Some(passphrase)) => PKey::private_key_from_pkcs8_passphrase(bytes, passphrase)
            .map_err(|_| ImportError::WrongPassphrase)?,
        (false, None) => PKey::private_key_from_pkcs8(bytes).map_err(|_| {
            if PKey::private_key_from_pkcs8_passphrase(bytes, b"").is_ok() {
                ImportError::NeedsPassphrase
            } else {
                ImportError::Malformed("a PKCS #8 key")
            }
        })?,
    };
    from_pkey(&key)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn from_pkey(key: &PKey<Private>) -> Result<PrivateKey, ImportError> {
    let found = |name: &str| ImportError::WrongAlgorithm {
        found: name.to_string(),
        expected: "",
    };
    Ok(match key.id() {
        Id::RSA => {
            let rsa = key.rsa().map_err(|_| ImportError::Inconsistent)?;
            if !matches!(rsa.n().num_bits(), 2048 | 3072 | 4096) {
                return Err(found(&format!("RSA-{}", rsa.n().num_bits())));
            }
            PrivateKey::Rsa(rsa_checked(rsa).ok_or(ImportError::Inconsistent)?)
        }
        Id::EC => {
            let ec = key.ec_key().map_err(|_| ImportError::Inconsistent)?;
            let algorithm = match ec.group().curve_name() {
                Some(openssl::nid::Nid::X9_62_PRIME256V1) => OpenPgpAlgorithm::NistP256,
                Some(openssl::nid::Nid::SECP384R1) => OpenPgpAlgorithm::NistP384,
                _ => return Err(found("EC key on another curve")),
            };
            ec.check_key().map_err(|_| ImportError::Inconsistent)?;
            PrivateKey::Ec { algorithm, key: ec }
        }
        Id::ED25519 => {
            let raw = Zeroizing::new(
                key.raw_private_key()
                    .map_err(|_| ImportError::Inconsistent)?,
            );
            let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| ImportError::Inconsistent)?,
            );
            PrivateKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
        }
        Id::X25519 => {
            let raw = Zeroizing::new(
                key.raw_private_key()
                    .map_err(|_| ImportError::Inconsistent)?,
            );
            let scalar: Zeroizing<[u8; 32]> = Zeroizing::new(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| ImportError::Inconsistent)?,
            );
            PrivateKey::x25519(x25519_dalek::StaticSecret::from(*scalar))
        }
        _ => return Err(found("key of another type")),
    })
}

fn openpgp(bytes: &[u8], passphrase: Option<&[u8]>, slot: Slot) -> Result<Imported, ImportError> {
    let (key, _) = SignedSecretKey::from_reader_single(bytes)
        .map_err(|_| ImportError::Malformed("an OpenPGP secret key"))?;
    // The slot's key: the primary key signs; subkeys by the flags of their binding signature.
    let subkey = |wanted: fn(&pgp::packet::KeyFlags) -> bool| {
        key.secret_subkeys
            .iter()
            .find(|sub| sub.signatures.iter().any(|s| wanted(&s.key_flags())))
    };
    let password = match passphrase {
        Some(passphrase) => Password::from(passphrase),
        None => Password::empty(),
    };
    let (encrypted, unlocked, public) = match slot {
        Slot::Signature => {
            let primary = &key.primary_key;
            let encrypted = primary.secret_params().is_encrypted();
            (
                encrypted,
                primary.unlock(&password, secret_mpis),
                public_body(primary.public_key())?,
            )
        }
        Slot::Decryption | Slot::Authentication => {
            let wanted: fn(&pgp::packet::KeyFlags) -> bool = if slot == Slot::Decryption {
                |flags| flags.encrypt_comms() || flags.encrypt_storage()
            } else {
                |flags| flags.authentication()
            };
            let sub = subkey(wanted).ok_or(ImportError::NoKeyForSlot(slot.name()))?;
            let encrypted = sub.key.secret_params().is_encrypted();
            (
                encrypted,
                sub.key.unlock(&password, secret_mpis),
                public_body(sub.key.public_key())?,
            )
        }
    };
    let mpis = match unlocked {
        Ok(Ok(mpis)) => mpis,
        _ if encrypted && passphrase.is_none() => return Err(ImportError::NeedsPassphrase),
        _ if encrypted => return Err(ImportError::WrongPassphrase),
        _ => return Err(ImportError::Malformed("an OpenPGP secret key")),
    };
    let (packet, key) = from_openpgp(&public, &mpis)?;
    Ok(Imported {
        key,
        packet: Some(packet),
    })
}

/// The key packet body of a public key, checked against rPGP's fingerprint of it.
fn public_body(key: &(impl KeyDetails + pgp::ser::Serialize)) -> Result<Vec<u8>, ImportError> {
    let body = key
        .to_bytes()
        .map_err(|_| ImportError::Malformed("an OpenPGP secret key"))?;
    match key.fingerprint().as_bytes() {
        theirs if theirs == fingerprint(&body).as_slice() => Ok(body),
        _ => Err(ImportError::Malformed("a version 4 OpenPGP key")),
    }
}

/// The algorithm-specific secret MPIs, as a version 4 packet stores them unencrypted.
fn secret_mpis(
    _public: &pgp::types::PublicParams,
    plain: &pgp::types::PlainSecretParams,
) -> pgp::errors::Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(600));
    plain.to_writer(&mut *out, pgp::types::KeyVersion::V4)?;
    Ok(out)
}

/// Reads MPIs one after another.
struct Mpis<'a>(&'a [u8]);

impl<'a> Mpis<'a> {
    fn next(&mut self) -> Result<&'a [u8], ImportError> {
        let malformed = ImportError::Malformed("a version 4 OpenPGP key");
        let [hi, lo, rest @ ..] = self.0 else {
            return Err(malformed);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).div_ceil(8);
        let (value, rest) = rest.split_at_checked(len).ok_or(malformed)?;
        self.0 = rest;
        Ok(value)
    }
}

/// The key of a version 4 public key packet body and its secret MPIs.
fn from_openpgp(body: &[u8], secret: &[u8]) -> Result<(KeyPacket, PrivateKey), ImportError> {
    let malformed = ImportError::Malformed("a version 4 OpenPGP key");
    let [0x04, c0, c1, c2, c3, algorithm_id, params @ ..] = body else {
        return Err(malformed);
    };
    let created = u32::from_be_bytes([*c0, *c1, *c2, *c3]);
    let mut secret = Mpis(secret);
    let key = match algorithm_id {
        1..=3 => {
            let mut public = Mpis(params);
            let (n, e) = (public.next()?, public.next()?);
            let _d = secret.next()?;
            let (p, q) = (secret.next()?, secret.next()?);
            let rsa = rsa_from(n, e, p, q).ok_or(ImportError::Inconsistent)?;
            if !matches!(rsa.n().num_bits(), 2048 | 3072 | 4096) {
                return Err(ImportError::WrongAlgorithm {
                    found: format!("RSA-{}", rsa.n().num_bits()),
                    expected: "",
                });
            }
            PrivateKey::Rsa(rsa)
        }
        18 | 19 | 22 => {
            let (oid_len, rest) = params.split_first().ok_or(malformed.clone())?;
            let oid = rest.get(..usize::from(*oid_len)).ok_or(malformed.clone())?;
            let scalar = Zeroizing::new(secret.next()?.to_vec());
            match (algorithm_id, oid) {
                (22, [0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01]) => {
                    let seed = pad32(&scalar)?;
                    PrivateKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
                }
                (18, [0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01]) => {
                    // OpenPGP stores the Curve25519 secret big-endian, the reverse of X25519's
                    // native order.
                    let mut native = pad32(&scalar)?;
                    native.reverse();
                    PrivateKey::x25519(x25519_dalek::StaticSecret::from(*native))
                }
                (18 | 19, [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]) => PrivateKey::Ec {
                    algorithm: OpenPgpAlgorithm::NistP256,
                    key: ec_from_scalar(OpenPgpAlgorithm::NistP256, &scalar)
                        .ok_or(ImportError::Inconsistent)?,
                },
                (18 | 19, [0x2B, 0x81, 0x04, 0x00, 0x22]) => PrivateKey::Ec {
                    algorithm: OpenPgpAlgorithm::NistP384,
                    key: ec_from_scalar(OpenPgpAlgorithm::NistP384, &scalar)
                        .ok_or(ImportError::Inconsistent)?,
                },
                _ => {
                    return Err(ImportError::WrongAlgorithm {
                        found: "ECC key on another curve".to_string(),
                        expected: "",
                    });
                }
            }
        }
        other => {
            return Err(ImportError::WrongAlgorithm {
                found: format!("OpenPGP algorithm {other}"),
                expected: "",
            });
        }
    };
    let packet = KeyPacket {
        body: body.to_vec(),
        fingerprint: fingerprint(body),
        created,
        algorithm_id: *algorithm_id,
    };
    Ok((packet, key))
}

/// A secret scalar left-padded to 32 bytes, wiped when dropped.
fn pad32(value: &[u8]) -> Result<Zeroizing<[u8; 32]>, ImportError> {
    if value.len() > 32 {
        return Err(ImportError::Inconsistent);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out[32 - value.len()..].copy_from_slice(value);
    Ok(out)
}

fn rsa_from(n: &[u8], e: &[u8], p: &[u8], q: &[u8]) -> Option<openssl::rsa::Rsa<Private>> {
    use openssl::bn::{BigNum, BigNumContext};
    let mut ctx = BigNumContext::new_secure().ok()?;
    let (n, e, p, q) = (
        BigNum::from_slice(n).ok()?,
        BigNum::from_slice(e).ok()?,
        BigNum::from_slice(p).ok()?,
        BigNum::from_slice(q).ok()?,
    );
    let one = BigNum::from_u32(1).ok()?;
    let mut p1 = BigNum::new().ok()?;
    p1.checked_sub(&p, &one).ok()?;
    let mut q1 = BigNum::new().ok()?;
    q1.checked_sub(&q, &one).ok()?;
    let mut phi = BigNum::new_secure().ok()?;
    phi.checked_mul(&p1, &q1, &mut ctx).ok()?;
    let mut d = BigNum::new_secure().ok()?;
    d.mod_inverse(&e, &phi, &mut ctx).ok()?;
    let mut dp = BigNum::new_secure().ok()?;
    dp.nnmod(&d, &p1, &mut ctx).ok()?;
    let mut dq = BigNum::new_secure().ok()?;
    dq.nnmod(&d, &q1, &mut ctx).ok()?;
    let mut qi = BigNum::new_secure().ok()?;
    qi.mod_inverse(&q, &p, &mut ctx).ok()?;
    let rsa = openssl::rsa::Rsa::from_private_components(n, e, d, p, q, dp, dq, qi).ok()?;
    rsa_checked(rsa)
}
