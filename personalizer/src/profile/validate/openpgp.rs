//! Validation of the `[openpgp]` section: every data object's value plan with the card's
//! length limits, each slot's algorithm against what the slot can hold, the key sources, the
//! creation time and the three passwords.

use vsc_core::applications::openpgp::{MAX_CERTIFICATE, MAX_SPECIAL_DO, Slot};

use super::Compiler;
use super::value::Room;
use crate::profile::openpgp::{
    CertificateForm, CertificateSpec, CreatedSpec, KeyFileFormat, KeySource, MAX_LANGUAGE,
    NameSpec, OpenPgpAlgorithm, OpenPgpPassword, OpenPgpSpec, PASSWORD_MAX, PW1_MIN, PW3_MIN,
    SalutationSpec, SlotSpec, parse_time, salutation_byte,
};
use crate::profile::raw::{RawCreated, RawOpenPgp, RawOpenPgpPassword, RawSlot};
use crate::profile::{FieldKind, PasswordSource, ProfileError};

/// The longest user ID written into the certificate.
const MAX_USER_ID: usize = 1024;

impl Compiler {
    pub(super) fn openpgp(&mut self, raw: &RawOpenPgp) -> Result<OpenPgpSpec, ProfileError> {
        let name = match &raw.name {
            Some(name) => {
                let item = "[openpgp] name";
                let kind = || FieldKind::Text {
                    ascii: true,
                    min: 1,
                    max: 18,
                };
                Some(NameSpec {
                    surname: self.use_field(&name.surname, item, kind())?,
                    given: match &name.given {
                        Some(given) => Some(self.use_field(given, item, kind())?),
                        None => None,
                    },
                })
            }
            None => None,
        };
        let plan = |compiler: &mut Compiler, value: &Option<_>, item: &str, max: usize| {
            value
                .as_ref()
                .map(|value| compiler.value(value, item, Room::part(max), false, 0))
                .transpose()
        };
        let language = plan(self, &raw.language, "[openpgp] language", MAX_LANGUAGE)?;
        let salutation = match &raw.salutation {
            Some(salutation) => Some(self.salutation(salutation)?),
            None => None,
        };
        let url = plan(self, &raw.url, "[openpgp] url", MAX_SPECIAL_DO)?;
        let login = plan(self, &raw.login, "[openpgp] login", MAX_SPECIAL_DO)?;
        let mut private_use = Vec::new();
        for (number, value) in [
            (1, &raw.private_use_1),
            (2, &raw.private_use_2),
            (3, &raw.private_use_3),
            (4, &raw.private_use_4),
        ] {
            let item = format!("[openpgp] private_use_{number}");
            if let Some(value) = plan(self, value, &item, MAX_SPECIAL_DO)? {
                private_use.push((number, value));
            }
        }
        let mut certificates: Vec<CertificateSpec> = Vec::new();
        for raw_certificate in &raw.certificate {
            let item = format!("[[openpgp.certificate]] {}", raw_certificate.slot);
            let slot = slot_named(&item, &raw_certificate.slot)?;
            if certificates.iter().any(|c| c.slot == slot) {
                return Err(ProfileError::invalid(
                    &item,
                    "the slot has a certificate already",
                ));
            }
            let (form, kind) = match raw_certificate.form.as_str() {
                "hex" => (
                    CertificateForm::Hex,
                    FieldKind::Hex {
                        min: 1,
                        max: MAX_CERTIFICATE,
                    },
                ),
                "file" => (CertificateForm::File, FieldKind::File),
                other => {
                    return Err(ProfileError::invalid(
                        &item,
                        format!("form `{other}`: must be hex or file"),
                    ));
                }
            };
            certificates.push(CertificateSpec {
                slot,
                field: self.use_field(&raw_certificate.field, &item, kind)?,
                form,
                optional: raw_certificate.optional,
            });
        }
        let created = match &raw.created {
            Some(created) => Some(self.created(created, "[openpgp] created")?),
            None => None,
        };
        let mut slots = Vec::new();
        for (slot, raw_slot) in
            Slot::ALL
                .into_iter()
                .zip([&raw.signature, &raw.decryption, &raw.authentication])
        {
            if let Some(raw_slot) = raw_slot {
                slots.push(self.slot(slot, raw_slot)?);
            }
        }
        if !slots.is_empty() && !slots.iter().any(|s| s.slot == Slot::Signature) {
            return Err(ProfileError::invalid(
                "[openpgp]",
                "keys need [openpgp.signature]: the signature key is the primary key of the exported certificate",
            ));
        }
        let user_id = plan(self, &raw.user_id, "[openpgp] user_id", MAX_USER_ID)?;
        if !slots.is_empty() && user_id.is_none() {
            return Err(ProfileError::invalid(
                "[openpgp]",
                "keys need user_id: the exported certificate names its holder",
            ));
        }
        let pw1 = self.openpgp_password(&raw.pw1, "[openpgp] pw1", PW1_MIN)?;
        let pw3 = self.openpgp_password(&raw.pw3, "[openpgp] pw3", PW3_MIN)?;
        let resetting_code = match &raw.resetting_code {
            Some(code) => Some(self.openpgp_password(code, "[openpgp] resetting_code", PW3_MIN)?),
            None => None,
        };
        Ok(OpenPgpSpec {
            name,
            language,
            salutation,
            url,
            login,
            private_use,
            certificates,
            user_id,
            created,
            slots,
            pw1,
            pw3,
            resetting_code,
        })
    }

    fn salutation(
        &mut self,
        raw: &crate::profile::raw::RawSalutation,
    ) -> Result<SalutationSpec, ProfileError> {
        let item = "[openpgp] salutation";
        match (&raw.field, &raw.constant) {
            (Some(field), None) => Ok(SalutationSpec::Field(self.use_field(
                field,
                item,
                FieldKind::Salutation,
            )?)),
            (None, Some(constant)) => salutation_byte(constant)
                .flatten()
                .map(SalutationSpec::Constant)
                .ok_or_else(|| {
                    ProfileError::invalid(item, "the constant must be M, F, X, 0, 1, 2 or 9")
                }),
            _ => Err(ProfileError::invalid(
                item,
                "give exactly one of field and constant",
            )),
        }
    }

    fn created(&mut self, raw: &RawCreated, item: &str) -> Result<CreatedSpec, ProfileError> {
        match raw {
            RawCreated::Fixed(text) => parse_time(text).map(CreatedSpec::Fixed).ok_or_else(|| {
                ProfileError::invalid(
                    item,
                    "must be RFC 3339 (2026-01-01T00:00:00Z) or a date (2026-01-01), from 1970 to 2106",
                )
            }),
            RawCreated::Field { field } => Ok(CreatedSpec::Field(self.use_field(
                field,
                item,
                FieldKind::Timestamp,
            )?)),
        }
    }

    fn slot(&mut self, slot: Slot, raw: &RawSlot) -> Result<SlotSpec, ProfileError> {
        let item = format!("[openpgp.{}]", slot.name());
        let algorithm = OpenPgpAlgorithm::NAMES
            .iter()
            .find(|(name, _)| raw.algorithm.eq_ignore_ascii_case(name))
            .map(|(_, algorithm)| *algorithm)
            .ok_or_else(|| {
                ProfileError::invalid(
                    &item,
                    format!(
                        "algorithm `{}`: must be one of rsa2048, rsa3072, rsa4096, nistp256, nistp384, ed25519, cv25519",
                        raw.algorithm
                    ),
                )
            })?;
        if !algorithm.fits(slot) {
            return Err(ProfileError::invalid(
                &item,
                format!(
                    "the {} slot cannot hold {} (ed25519 signs, cv25519 deciphers)",
                    slot.name(),
                    algorithm.name()
                ),
            ));
        }
        let no_import = |key: &str, given: bool| {
            if given {
                Err(ProfileError::invalid(
                    &item,
                    format!("`{key}` applies to source = \"imported\" only"),
                ))
            } else {
                Ok(())
            }
        };
        let source = match raw.source.as_str() {
            "generated" => {
                no_import("field", raw.field.is_some())?;
                no_import("format", raw.format.is_some())?;
                no_import("passphrase_field", raw.passphrase_field.is_some())?;
                KeySource::Generated
            }
            "imported" => {
                let format = match raw.format.as_deref() {
                    Some("pkcs8") => KeyFileFormat::Pkcs8,
                    Some("openpgp") => KeyFileFormat::OpenPgp,
                    Some(other) => {
                        return Err(ProfileError::invalid(
                            &item,
                            format!("format `{other}`: must be pkcs8 or openpgp"),
                        ));
                    }
                    None => {
                        return Err(ProfileError::invalid(
                            &item,
                            "source = \"imported\" needs format (pkcs8 or openpgp)",
                        ));
                    }
                };
                let field = raw.field.as_deref().ok_or_else(|| {
                    ProfileError::invalid(
                        &item,
                        "source = \"imported\" needs field: the record field naming the key file",
                    )
                })?;
                let field = self.use_field(field, &item, FieldKind::File)?;
                let passphrase = match &raw.passphrase_field {
                    Some(name) => Some(self.use_field(name, &item, FieldKind::Passphrase)?),
                    None => None,
                };
                KeySource::Imported {
                    field,
                    format,
                    passphrase,
                }
            }
            other => {
                return Err(ProfileError::invalid(
                    &item,
                    format!("source `{other}`: must be generated or imported"),
                ));
            }
        };
        let created = match &raw.created {
            Some(created) => Some(self.created(created, &format!("{item} created"))?),
            None => None,
        };
        Ok(SlotSpec {
            slot,
            algorithm,
            source,
            created,
        })
    }

    fn openpgp_password(
        &mut self,
        raw: &RawOpenPgpPassword,
        item: &str,
        min: u8,
    ) -> Result<OpenPgpPassword, ProfileError> {
        let source = match (&raw.field, raw.generate) {
            (Some(name), None) => {
                // Any length from the minimum to 127 fits; synthetic holders get short ones.
                let kind = FieldKind::Password { min, max: min + 2 };
                PasswordSource::Field(self.use_field(name, item, kind)?)
            }
            (None, Some(length)) => {
                let length =
                    super::in_range(item, "generate", length, min.into(), PASSWORD_MAX.into())?;
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
        Ok(OpenPgpPassword { min, source })
    }
}

fn slot_named(item: &str, name: &str) -> Result<Slot, ProfileError> {
    Slot::ALL
        .into_iter()
        .find(|slot| slot.name() == name)
        .ok_or_else(|| {
            ProfileError::invalid(
                item,
                format!("slot `{name}`: must be signature, decryption or authentication"),
            )
        })
}
