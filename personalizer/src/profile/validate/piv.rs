//! Validation of the `[piv]` section: each slot's algorithm, key source, policies and
//! certificate source; the CA (its certificate and key loaded and checked against each other
//! here, once); the subject; the PIN and PUK lengths.

use std::path::Path;

use openssl::pkey::PKey;
use openssl::x509::X509;
use vsc_core::applications::piv::{PinPolicy, Slot};
use vsc_core::security::BlockAlgorithm;

use super::Compiler;
use super::value::Room;
use crate::profile::piv::{
    CaSpec, CertificateSource, PIN_MAX, PIN_MIN, PUK_LEN, PivAlgorithm, PivKeySource, PivPassword,
    PivSlotSpec, PivSpec, SUBJECT_ATTRIBUTES, SubjectPart, slot_section,
};
use crate::profile::raw::{RawCa, RawOpenPgpPassword, RawPiv, RawPivSlot};
use crate::profile::{FieldKind, PasswordSource, ProfileError};

/// The longest value of one subject attribute (X.520's upper bound for most names).
const MAX_ATTRIBUTE: usize = 64;
/// The longest validity of an issued certificate.
const MAX_VALIDITY_DAYS: u32 = 3650;
/// The validity when the profile gives none.
const DEFAULT_VALIDITY_DAYS: u32 = 365;

impl Compiler {
    pub(super) fn piv(&mut self, raw: &RawPiv, base: &Path) -> Result<PivSpec, ProfileError> {
        let management_key = match raw.management_key.as_deref() {
            None | Some("aes256") => BlockAlgorithm::Aes256,
            Some("aes192") => BlockAlgorithm::Aes192,
            Some("aes128") => BlockAlgorithm::Aes128,
            Some("3des") => BlockAlgorithm::Tdes,
            Some(other) => {
                return Err(ProfileError::invalid(
                    "[piv] management_key",
                    format!("`{other}`: must be 3des, aes128, aes192 or aes256"),
                ));
            }
        };
        let mut slots = Vec::new();
        for (slot, raw_slot) in [
            (Slot::AUTHENTICATION, &raw.authentication),
            (Slot::SIGNATURE, &raw.signature),
            (Slot::KEY_MANAGEMENT, &raw.key_management),
            (Slot::CARD_AUTHENTICATION, &raw.card_authentication),
        ] {
            if let Some(raw_slot) = raw_slot {
                slots.push(self.piv_slot(slot, raw_slot)?);
            }
        }
        let issues = slots
            .iter()
            .any(|s| s.certificate == CertificateSource::Issued);
        let ca = match (&raw.ca, issues) {
            (Some(ca), _) => Some(load_ca(ca, base)?),
            (None, true) => {
                return Err(ProfileError::invalid(
                    "[piv]",
                    "a slot has certificate = \"issued\": give [piv.ca] (certificate and key files)",
                ));
            }
            (None, false) => None,
        };
        let mut subject = Vec::with_capacity(raw.subject.len());
        for part in &raw.subject {
            let item = format!("[[piv.subject]] {}", part.attribute);
            let Some((name, nid)) = SUBJECT_ATTRIBUTES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&part.attribute))
            else {
                let names: Vec<&str> = SUBJECT_ATTRIBUTES.iter().map(|(n, _)| *n).collect();
                return Err(ProfileError::invalid(
                    &item,
                    format!("attribute must be one of {}", names.join(", ")),
                ));
            };
            let value = self.value(&part.value, &item, Room::part(MAX_ATTRIBUTE), false, 0)?;
            subject.push(SubjectPart {
                name,
                nid: *nid,
                value,
            });
        }
        if issues && subject.is_empty() {
            return Err(ProfileError::invalid(
                "[piv]",
                "issued certificates need a subject: give [[piv.subject]] entries (e.g. CN)",
            ));
        }
        let pin = self.piv_password(&raw.pin, "[piv] pin", PIN_MIN, PIN_MAX)?;
        let puk = self.piv_password(&raw.puk, "[piv] puk", PUK_LEN, PUK_LEN)?;
        Ok(PivSpec {
            management_key,
            ca,
            subject,
            slots,
            pin,
            puk,
        })
    }

    fn piv_slot(&mut self, slot: Slot, raw: &RawPivSlot) -> Result<PivSlotSpec, ProfileError> {
        let item = format!("[piv.{}]", slot_section(slot));
        let algorithm = PivAlgorithm::NAMES
            .iter()
            .find(|(name, _)| raw.algorithm.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                ProfileError::invalid(
                    &item,
                    format!(
                        "algorithm `{}`: must be rsa2048, nistp256 or nistp384",
                        raw.algorithm
                    ),
                )
            })?;
        let source = match raw.source.as_str() {
            "generated" => {
                if raw.field.is_some() || raw.passphrase_field.is_some() {
                    return Err(ProfileError::invalid(
                        &item,
                        "`field` and `passphrase_field` apply to source = \"imported\" only",
                    ));
                }
                PivKeySource::Generated
            }
            "imported" => {
                let field = raw.field.as_deref().ok_or_else(|| {
                    ProfileError::invalid(
                        &item,
                        "source = \"imported\" needs field: the record field naming the PKCS #8 key file",
                    )
                })?;
                let field = self.use_field(field, &item, FieldKind::File)?;
                let passphrase = match &raw.passphrase_field {
                    Some(name) => Some(self.use_field(name, &item, FieldKind::Passphrase)?),
                    None => None,
                };
                PivKeySource::Imported { field, passphrase }
            }
            other => {
                return Err(ProfileError::invalid(
                    &item,
                    format!("source `{other}`: must be generated or imported"),
                ));
            }
        };
        let pin_policy = match raw.pin_policy.as_deref() {
            None | Some("default") => None,
            Some("never") => Some(PinPolicy::Never),
            Some("once") => Some(PinPolicy::Once),
            Some("always") => Some(PinPolicy::Always),
            Some(other) => {
                return Err(ProfileError::invalid(
                    &item,
                    format!("pin_policy `{other}`: must be default, never, once or always"),
                ));
            }
        };
        let touch_never = match raw.touch_policy.as_deref() {
            None => false,
            Some("never") => true,
            Some(other) => {
                return Err(ProfileError::invalid(
                    &item,
                    format!(
                        "touch_policy `{other}`: only never (a VSC has no button, and the card refuses other policies)"
                    ),
                ));
            }
        };
        let certificate = match (raw.certificate.as_deref(), &raw.certificate_field) {
            (None | Some("none"), None) => CertificateSource::None,
            (Some("issued"), None) => CertificateSource::Issued,
            (Some("record"), Some(name)) => {
                if source == PivKeySource::Generated {
                    return Err(ProfileError::invalid(
                        &item,
                        "a certificate from the record must certify the record's key: give source = \"imported\" and field (the key file) too",
                    ));
                }
                CertificateSource::Record(self.use_field(name, &item, FieldKind::File)?)
            }
            (Some("record"), None) => {
                return Err(ProfileError::invalid(
                    &item,
                    "certificate = \"record\" needs certificate_field: the record field naming the PEM or DER file",
                ));
            }
            (_, Some(_)) => {
                return Err(ProfileError::invalid(
                    &item,
                    "certificate_field applies to certificate = \"record\" only",
                ));
            }
            (Some(other), None) => {
                return Err(ProfileError::invalid(
                    &item,
                    format!("certificate `{other}`: must be issued, record or none"),
                ));
            }
        };
        Ok(PivSlotSpec {
            slot,
            algorithm,
            source,
            pin_policy,
            touch_never,
            certificate,
        })
    }

    fn piv_password(
        &mut self,
        raw: &RawOpenPgpPassword,
        item: &str,
        min: u8,
        max: u8,
    ) -> Result<PivPassword, ProfileError> {
        let source = match (&raw.field, raw.generate) {
            (Some(name), None) => {
                let kind = FieldKind::Password { min, max };
                PasswordSource::Field(self.use_field(name, item, kind)?)
            }
            (None, Some(length)) => {
                let length = super::in_range(item, "generate", length, min.into(), max.into())?;
                PasswordSource::Generated {
                    length: length as u8,
                }
            }
            _ => {
                return Err(ProfileError::invalid(
                    item,
                    "give exactly one of field and generate",
                ));
            }
        };
        Ok(PivPassword { min, max, source })
    }
}

/// Reads the CA's certificate and key (PEM or DER; paths relative to the profile's folder) and
/// checks that the key is the certificate's.
fn load_ca(raw: &RawCa, base: &Path) -> Result<CaSpec, ProfileError> {
    let item = "[piv.ca]";
    let read = |name: &str, what: &str| {
        let path = base.join(name);
        std::fs::read(&path)
            .map(|bytes| (path.clone(), bytes))
            .map_err(|e| {
                ProfileError::invalid(
                    item,
                    format!(
                        "the {what} file {} cannot be read: {}",
                        path.display(),
                        e.kind()
                    ),
                )
            })
    };
    let (certificate_path, certificate) = read(&raw.certificate, "certificate")?;
    let certificate = if is_pem(&certificate) {
        X509::from_pem(&certificate)
    } else {
        X509::from_der(&certificate)
    }
    .map_err(|_| {
        ProfileError::invalid(
            item,
            format!(
                "{} is not an X.509 certificate (PEM or DER)",
                certificate_path.display()
            ),
        )
    })?;
    let (key_path, key) = read(&raw.key, "key")?;
    let key = zeroize::Zeroizing::new(key);
    let key = if is_pem(&key) {
        PKey::private_key_from_pem_callback(&key, |_| Ok(0))
    } else {
        PKey::private_key_from_der(&key)
    }
    .map_err(|_| {
        ProfileError::invalid(
            item,
            format!(
                "{} is not an unencrypted private key (PKCS #8, PKCS #1 or SEC 1; PEM or DER)",
                key_path.display()
            ),
        )
    })?;
    let matches = certificate
        .public_key()
        .map(|public| public.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(ProfileError::invalid(
            item,
            "the key is not the CA certificate's key",
        ));
    }
    let validity_days = raw.validity_days.unwrap_or(DEFAULT_VALIDITY_DAYS);
    if !(1..=MAX_VALIDITY_DAYS).contains(&validity_days) {
        return Err(ProfileError::OutOfRange {
            item: item.to_string(),
            what: "validity_days",
            value: validity_days.into(),
            min: 1,
            max: MAX_VALIDITY_DAYS.into(),
        });
    }
    Ok(CaSpec {
        certificate_path,
        certificate,
        key,
        validity_days,
    })
}

/// Whether a file is PEM (text may precede the `-----BEGIN` line, as OpenSSL allows).
fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(10).any(|w| w == b"-----BEGIN")
}
