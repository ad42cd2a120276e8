//! Certificates issued at preparation by the profile's CA (OpenSSL's X.509 builder): X.509 v3,
//! a random 127-bit serial number, the CA's subject as issuer, the profile's subject, valid from
//! preparation for the CA's `validity_days`, the slot key's public key, and the extensions a PIV
//! certificate of that slot carries; signed with SHA-256 (SHA-384 for a P-384 CA key).

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};
use vsc_core::applications::piv::Slot;

use crate::profile::piv::CaSpec;

/// Why a certificate could not be issued (OpenSSL refused; no key material in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("issuing the {slot} certificate: {what}")]
pub struct IssueError {
    /// The slot, e.g. `9A`.
    pub slot: String,
    /// What failed.
    pub what: &'static str,
}

/// The DER certificate of `public` for `slot`, issued by `ca` to `subject`.
pub fn issue(
    ca: &CaSpec,
    slot: Slot,
    subject: &[(&'static str, openssl::nid::Nid, String)],
    public: &PKey<Private>,
    not_before: u32,
) -> Result<Vec<u8>, IssueError> {
    let failed = |what| IssueError {
        slot: format!("{:02X}", slot.byte()),
        what,
    };
    let mut name = X509NameBuilder::new().map_err(|_| failed("no name builder"))?;
    for (_, nid, value) in subject {
        name.append_entry_by_nid(*nid, value).map_err(|_| {
            failed("a subject attribute is refused (too long, or not printable for C)")
        })?;
    }
    let name = name.build();
    let mut builder = X509::builder().map_err(|_| failed("no builder"))?;
    builder.set_version(2).map_err(|_| failed("version"))?;
    let mut serial = BigNum::new().map_err(|_| failed("serial"))?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(|_| failed("serial"))?;
    let serial = Asn1Integer::from_bn(&serial).map_err(|_| failed("serial"))?;
    builder
        .set_serial_number(&serial)
        .map_err(|_| failed("serial"))?;
    builder
        .set_issuer_name(ca.certificate.subject_name())
        .map_err(|_| failed("issuer"))?;
    builder
        .set_subject_name(&name)
        .map_err(|_| failed("subject"))?;
    let start = Asn1Time::from_unix(i64::from(not_before)).map_err(|_| failed("notBefore"))?;
    let end = Asn1Time::from_unix(i64::from(not_before) + i64::from(ca.validity_days) * 86_400)
        .map_err(|_| failed("notAfter"))?;
    builder
        .set_not_before(&start)
        .map_err(|_| failed("notBefore"))?;
    builder
        .set_not_after(&end)
        .map_err(|_| failed("notAfter"))?;
    builder
        .set_pubkey(public)
        .map_err(|_| failed("public key"))?;
    let basic = BasicConstraints::new()
        .critical()
        .build()
        .map_err(|_| failed("basicConstraints"))?;
    builder
        .append_extension(basic)
        .map_err(|_| failed("basicConstraints"))?;
    let mut usage = KeyUsage::new();
    usage.critical();
    let rsa = public.id() == Id::RSA;
    match slot.byte() {
        0x9C => {
            usage.digital_signature().non_repudiation();
        }
        0x9D if rsa => {
            usage.key_encipherment();
        }
        0x9D => {
            usage.key_agreement();
        }
        _ => {
            usage.digital_signature();
        }
    }
    let usage = usage.build().map_err(|_| failed("keyUsage"))?;
    builder
        .append_extension(usage)
        .map_err(|_| failed("keyUsage"))?;
    if slot == Slot::AUTHENTICATION {
        let extended = ExtendedKeyUsage::new()
            .client_auth()
            .build()
            .map_err(|_| failed("extendedKeyUsage"))?;
        builder
            .append_extension(extended)
            .map_err(|_| failed("extendedKeyUsage"))?;
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&builder.x509v3_context(Some(&ca.certificate), None))
        .map_err(|_| failed("subjectKeyIdentifier"))?;
    builder
        .append_extension(ski)
        .map_err(|_| failed("subjectKeyIdentifier"))?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&builder.x509v3_context(Some(&ca.certificate), None))
        .map_err(|_| failed("authorityKeyIdentifier"))?;
    builder
        .append_extension(aki)
        .map_err(|_| failed("authorityKeyIdentifier"))?;
    let digest = match ca.key.ec_key().map(|k| k.group().degree()) {
        Ok(384) => MessageDigest::sha384(),
        _ => MessageDigest::sha256(),
    };
    builder
        .sign(&ca.key, digest)
        .map_err(|_| failed("the CA's signature"))?;
    builder.build().to_der().map_err(|_| failed("DER"))
}
