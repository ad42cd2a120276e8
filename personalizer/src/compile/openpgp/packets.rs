//! The OpenPGP version 4 packets preparation writes (RFC 9580, formerly RFC 4880 with RFC 6637
//! for ECC): the public key packet of each slot's key, whose SHA-1 is the fingerprint the card
//! stores in `C7`–`C9`, and the certificate that binds the three keys to the holder's user ID
//! (the signature key primary, self-signed; the decryption and authentication keys subkeys with
//! their binding signatures), armored for `gpg --import`.
//!
//! Written here rather than through rPGP's builders because every byte must follow from the
//! card's data: the signatures are made with the card's own keys at their creation time (rPGP's
//! builders stamp the current time), so the same card always gives the same certificate
//! (Ed25519 and RSA signatures are deterministic) and its fingerprints are exactly those the
//! card holds. rPGP reads what is written here back in the tests, and GnuPG imports it in the
//! integration tests.

use sha1::Digest as _;
use vsc_core::security::PublicKey;

use super::key::{KeyError, PrivateKey};
use crate::profile::openpgp::OpenPgpAlgorithm;

/// A slot's key as OpenPGP sees it: its algorithm, creation time and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPacket {
    /// The version 4 public key packet's body.
    pub body: Vec<u8>,
    /// SHA-1 of `99 ‖ length ‖ body`.
    pub fingerprint: [u8; 20],
    /// Seconds since 1970.
    pub created: u32,
    /// The public key algorithm ID (1 RSA, 18 ECDH, 19 ECDSA, 22 EdDSA).
    pub algorithm_id: u8,
}

/// What a key is used for in the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The primary key: certifies and signs (the card's signature key).
    Primary,
    /// Encrypts (the card's decryption key).
    Encryption,
    /// Authenticates (the card's authentication key).
    Authentication,
}

const OID_P256: [u8; 8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: [u8; 5] = [0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: [u8; 9] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
const OID_CV25519: [u8; 10] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];

/// Hash algorithm IDs.
const SHA256: u8 = 8;
const SHA384: u8 = 9;

impl KeyPacket {
    /// The packet of `public` (of `algorithm`, in the slot for `role`) created at `created`.
    /// ECDH keys carry the KDF parameters GnuPG gives them: SHA-256 and AES-128 for P-256 and
    /// Curve25519, SHA-384 and AES-256 for P-384.
    pub fn new(
        algorithm: OpenPgpAlgorithm,
        role: Role,
        public: &PublicKey,
        created: u32,
    ) -> KeyPacket {
        let mut body = vec![0x04];
        body.extend_from_slice(&created.to_be_bytes());
        let algorithm_id = match (algorithm, role) {
            (
                OpenPgpAlgorithm::Rsa2048 | OpenPgpAlgorithm::Rsa3072 | OpenPgpAlgorithm::Rsa4096,
                _,
            ) => 1,
            (OpenPgpAlgorithm::Ed25519, _) => 22,
            (OpenPgpAlgorithm::Cv25519, _) | (_, Role::Encryption) => 18,
            _ => 19,
        };
        body.push(algorithm_id);
        match public {
            PublicKey::Rsa { n, e } => {
                push_mpi(&mut body, n);
                push_mpi(&mut body, e);
            }
            PublicKey::Ec { point } => {
                let oid: &[u8] = match algorithm {
                    OpenPgpAlgorithm::NistP384 => &OID_P384,
                    OpenPgpAlgorithm::Ed25519 => &OID_ED25519,
                    OpenPgpAlgorithm::Cv25519 => &OID_CV25519,
                    _ => &OID_P256,
                };
                body.push(oid.len() as u8);
                body.extend_from_slice(oid);
                if matches!(
                    algorithm,
                    OpenPgpAlgorithm::Ed25519 | OpenPgpAlgorithm::Cv25519
                ) {
                    // The native point behind OpenPGP's 40 prefix.
                    let mut prefixed = vec![0x40];
                    prefixed.extend_from_slice(point);
                    push_mpi(&mut body, &prefixed);
                } else {
                    push_mpi(&mut body, point);
                }
                if algorithm_id == 18 {
                    let (hash, cipher) = match algorithm {
                        OpenPgpAlgorithm::NistP384 => (SHA384, 9),
                        _ => (SHA256, 7),
                    };
                    body.extend_from_slice(&[0x03, 0x01, hash, cipher]);
                }
            }
        }
        let fingerprint = fingerprint(&body);
        KeyPacket {
            body,
            fingerprint,
            created,
            algorithm_id,
        }
    }

    /// The key ID: the fingerprint's last eight bytes.
    pub fn key_id(&self) -> [u8; 8] {
        let mut id = [0; 8];
        id.copy_from_slice(&self.fingerprint[12..]);
        id
    }

    /// `99 ‖ two-byte length ‖ body`, as signatures hash a key.
    fn hashed_form(&self) -> Vec<u8> {
        let mut out = vec![0x99];
        out.extend_from_slice(&(self.body.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// The version 4 fingerprint of a public key packet body.
pub fn fingerprint(body: &[u8]) -> [u8; 20] {
    let mut hasher = sha1::Sha1::new();
    hasher.update([0x99]);
    hasher.update((body.len() as u16).to_be_bytes());
    hasher.update(body);
    hasher.finalize().into()
}

/// A multiprecision integer: its bit count (two bytes), then its bytes without leading zeros.
fn push_mpi(out: &mut Vec<u8>, value: &[u8]) {
    let zeros = value.iter().take_while(|b| **b == 0).count();
    let value = &value[zeros..];
    let bits = match value.first() {
        Some(first) => (value.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    };
    out.extend_from_slice(&(bits as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// A packet with a new-format header (tag, then a one-, two- or five-byte length).
fn push_packet(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(0xC0 | tag);
    let len = body.len();
    match len {
        0..=191 => out.push(len as u8),
        192..=8383 => {
            let value = len - 192;
            out.push((value >> 8) as u8 + 192);
            out.push((value & 0xFF) as u8);
        }
        _ => {
            out.push(0xFF);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(body);
}

fn push_subpacket(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    // Every subpacket here is shorter than 192 bytes: a one-byte length.
    out.push(data.len() as u8 + 1);
    out.push(kind);
    out.extend_from_slice(data);
}

/// The certificate's parts: the primary key with its private key (to sign), the subkeys, the
/// user ID.
#[derive(Debug)]
pub struct CertificateInput<'a> {
    /// The signature key's packet.
    pub primary: &'a KeyPacket,
    /// Its private key.
    pub signer: &'a PrivateKey,
    /// The decryption and authentication keys present, with their role.
    pub subkeys: Vec<(&'a KeyPacket, Role)>,
    /// The user ID (UTF-8).
    pub user_id: &'a [u8],
}

/// The certificate, binary (a transferable public key).
pub fn certificate(input: &CertificateInput<'_>) -> Result<Vec<u8>, KeyError> {
    let primary = input.primary;
    let mut out = Vec::with_capacity(2048);
    push_packet(&mut out, 6, &primary.body);
    push_packet(&mut out, 13, input.user_id);

    // The positive certification of the user ID (0x13), with the key's preferences.
    let mut hashed = Vec::with_capacity(64);
    push_subpacket(&mut hashed, 2, &primary.created.to_be_bytes());
    let mut issuer = vec![0x04];
    issuer.extend_from_slice(&primary.fingerprint);
    push_subpacket(&mut hashed, 33, &issuer);
    push_subpacket(&mut hashed, 27, &[0x03]);
    push_subpacket(&mut hashed, 11, &[0x09, 0x08, 0x07]);
    push_subpacket(&mut hashed, 21, &[0x0A, 0x09, 0x08]);
    push_subpacket(&mut hashed, 22, &[0x02, 0x01, 0x00]);
    push_subpacket(&mut hashed, 30, &[0x01]);
    push_subpacket(&mut hashed, 25, &[0x01]);
    let mut signed = primary.hashed_form();
    signed.push(0xB4);
    signed.extend_from_slice(&(input.user_id.len() as u32).to_be_bytes());
    signed.extend_from_slice(input.user_id);
    let certification = signature(input, 0x13, &hashed, &signed)?;
    push_packet(&mut out, 2, &certification);

    for (subkey, role) in &input.subkeys {
        push_packet(&mut out, 14, &subkey.body);
        let created = subkey.created.max(primary.created);
        let mut hashed = Vec::with_capacity(40);
        push_subpacket(&mut hashed, 2, &created.to_be_bytes());
        push_subpacket(&mut hashed, 33, &issuer);
        let flags = match role {
            Role::Encryption => 0x0C,
            Role::Authentication => 0x20,
            Role::Primary => 0x03,
        };
        push_subpacket(&mut hashed, 27, &[flags]);
        let mut signed = primary.hashed_form();
        signed.extend_from_slice(&subkey.hashed_form());
        let binding = signature(input, 0x18, &hashed, &signed)?;
        push_packet(&mut out, 2, &binding);
    }
    Ok(out)
}

/// A version 4 signature packet's body of `kind` over `signed` and the hashed subpackets.
fn signature(
    input: &CertificateInput<'_>,
    kind: u8,
    hashed: &[u8],
    signed: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let hash = match input.signer.algorithm() {
        OpenPgpAlgorithm::NistP384 => SHA384,
        _ => SHA256,
    };
    let mut header = vec![0x04, kind, input.primary.algorithm_id, hash];
    header.extend_from_slice(&(hashed.len() as u16).to_be_bytes());
    header.extend_from_slice(hashed);
    let mut trailer = vec![0x04, 0xFF];
    trailer.extend_from_slice(&(header.len() as u32).to_be_bytes());
    let digest: Vec<u8> = if hash == SHA384 {
        let mut hasher = sha2::Sha384::new();
        hasher.update(signed);
        hasher.update(&header);
        hasher.update(&trailer);
        hasher.finalize().to_vec()
    } else {
        let mut hasher = sha2::Sha256::new();
        hasher.update(signed);
        hasher.update(&header);
        hasher.update(&trailer);
        hasher.finalize().to_vec()
    };
    let values = input.signer.sign_digest(&digest)?;
    let mut body = header;
    let mut unhashed = Vec::with_capacity(10);
    push_subpacket(&mut unhashed, 16, &input.primary.key_id());
    body.extend_from_slice(&(unhashed.len() as u16).to_be_bytes());
    body.extend_from_slice(&unhashed);
    body.extend_from_slice(&digest[..2]);
    for value in values {
        push_mpi(&mut body, &value);
    }
    Ok(body)
}

/// Binary packets as rPGP serializes them, for its armor writer.
struct Packets<'a>(&'a [u8]);

impl pgp::ser::Serialize for Packets<'_> {
    fn to_writer<W: std::io::Write>(&self, writer: &mut W) -> pgp::errors::Result<()> {
        writer.write_all(self.0)?;
        Ok(())
    }

    fn write_len(&self) -> usize {
        self.0.len()
    }
}

/// The certificate in ASCII armor (`BEGIN PGP PUBLIC KEY BLOCK`, with its CRC-24).
pub fn armor(certificate: &[u8]) -> String {
    let mut out = Vec::with_capacity(certificate.len() * 4 / 3 + 128);
    // Writing into memory cannot fail.
    let _ = pgp::armor::write(
        &Packets(certificate),
        pgp::armor::BlockType::PublicKey,
        &mut out,
        None,
        true,
    );
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpis_and_lengths_follow_rfc_9580() {
        let mut out = Vec::new();
        push_mpi(&mut out, &[0x00, 0x01, 0xFF]);
        assert_eq!(out, [0x00, 0x09, 0x01, 0xFF], "RFC 9580 3.2: 511 is 9 bits");
        let mut out = Vec::new();
        push_packet(&mut out, 2, &[0; 200]);
        assert_eq!(&out[..3], &[0xC2, 0xC0, 0x08], "two-octet length 200");
        let mut out = Vec::new();
        push_packet(&mut out, 2, &vec![0; 9000]);
        assert_eq!(&out[..6], &[0xC2, 0xFF, 0x00, 0x00, 0x23, 0x28]);
    }

    #[test]
    fn an_ed25519_key_has_the_fingerprint_gnupg_gives_it() {
        // RFC 9580 A.3 ("Sample Version 4 Ed25519Legacy key"): created 2014-08-19 14:28:27 UTC,
        // fingerprint C959BDBAFA32A2F89A153B678CFDE12197965A9A.
        let point = hex::decode("3f098994bdd916ed4053197934e4a87c80733a1280d62f8010992e43ee3b2406")
            .unwrap();
        let packet = KeyPacket::new(
            OpenPgpAlgorithm::Ed25519,
            Role::Primary,
            &PublicKey::Ec { point },
            0x53F35F0B,
        );
        assert_eq!(
            hex::encode_upper(packet.fingerprint),
            "C959BDBAFA32A2F89A153B678CFDE12197965A9A"
        );
    }
}
