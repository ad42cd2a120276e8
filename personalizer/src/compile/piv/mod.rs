//! The PIV backend (docs/piv.md, "Personalizing it").
//!
//! Pre-initialization makes the card as it leaves its factory: EF.UID with the UID (the PIV
//! application derives its CHUID, CCC and GET SERIAL from it), PIV installed in its factory
//! state, the card activated. Real PIV tokens arrive so; only a VSC needs this transcript.
//!
//! Personalization, in plain with the application's own commands: SELECT; GET SERIAL, whose
//! exact answer (the UID's last four bytes) stops another card's replay; VERIFY of the
//! factory PIN (before anything is written); `live piv-management-key 03 factory`; PUT DATA of
//! the CHUID and the CCC (the UID's, from the same functions the card's factory state uses);
//! per slot IMPORT ASYMMETRIC KEY and PUT DATA of its certificate; CHANGE REFERENCE DATA of the
//! PUK and the PIN; SET MANAGEMENT KEY to the card's own key (derived from the issuer key),
//! then `live piv-management-key <alg> card <check>`, which proves it.
//!
//! Each expected response is the answer of the reference card OS, an in-process PIV token, to
//! the same command; the live steps run on it with the same keys.

mod certificate;

use serde::{Deserialize, Serialize};
use vsc_core::Uid;
use vsc_core::apdu::Status;
use vsc_core::applications::piv::{DEFAULT_PIN, DEFAULT_PUK, management_algorithm_byte, objects};
use vsc_core::applications::{ApplicationKind, install_fcp};
use vsc_core::commands::{self, CommandBuf, piv as cmd};
use vsc_core::crypto::MasterKey;
use vsc_core::tlv;
use vsc_core::transcript::{
    CommandApdu, Comment, Expectation, LiveStep, Step, derive_management_key,
};
use zeroize::Zeroizing;

pub use certificate::IssueError;

use super::{Builder, CompileError};
use crate::compile::openpgp::key::PrivateKey;
use crate::content::CardContent;
use crate::content::piv::{PivCertificate, PivContent};
use crate::profile::piv::PivSpec;
use crate::replay::{CardOsLink, run_live_step};

/// What preparation exports of a PIV card: nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exports {
    /// The slots, in the order 9A, 9C, 9D, 9E.
    pub piv: Vec<ExportedSlot>,
}

/// One slot's public side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedSlot {
    /// The slot, e.g. `9A`.
    pub slot: String,
    /// The profile's algorithm name, e.g. `nistp256`.
    pub algorithm: String,
    /// The public key in PEM.
    pub public_pem: String,
    /// The certificate in PEM, if the slot has one.
    pub certificate_pem: Option<String>,
    /// What GET DATA of the certificate object answers (`53 { 70 …, 71 00, FE 00 }`), hex.
    pub certificate_object: Option<String>,
    /// The public key in GET METADATA's tag `04` (`81 n 82 e` or `86 point`), hex.
    pub metadata_public: String,
}

impl Exports {
    /// The exports of one card as stored: JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The exports stored as JSON (`None` for another application's).
    pub fn from_json(text: &str) -> Option<Exports> {
        serde_json::from_str(text).ok()
    }

    /// The certificates in PEM, each after a line naming its slot.
    pub fn certificates_pem(&self) -> String {
        let mut out = String::new();
        for slot in &self.piv {
            if let Some(pem) = &slot.certificate_pem {
                out.push_str(&format!("slot {} ({})\n{pem}", slot.slot, slot.algorithm));
            }
        }
        out
    }

    /// The public keys in PEM, each after a line naming its slot.
    pub fn public_keys_pem(&self) -> String {
        let mut out = String::new();
        for slot in &self.piv {
            out.push_str(&format!(
                "slot {} ({})\n{}",
                slot.slot, slot.algorithm, slot.public_pem
            ));
        }
        out
    }

    /// One `slot algorithm sha256-of-certificate` line per slot with a certificate.
    pub fn fingerprints(&self) -> String {
        use sha2::Digest as _;
        let mut out = String::new();
        for slot in &self.piv {
            let Some(object) = slot
                .certificate_pem
                .as_deref()
                .and_then(|pem| openssl::x509::X509::from_pem(pem.as_bytes()).ok())
                .and_then(|c| c.to_der().ok())
            else {
                continue;
            };
            out.push_str(&format!(
                "{} {} {}\n",
                slot.slot,
                slot.algorithm,
                hex::encode_upper(sha2::Sha256::digest(&object))
            ));
        }
        out
    }
}

/// The first step of every PIV personalization transcript: SELECT by the RID.
pub fn select() -> CommandBuf {
    cmd::select()
}

/// The card as it leaves its factory.
pub(super) fn preinitialize(b: &mut Builder, uid: Uid) -> Result<(), CompileError> {
    super::write_uid(b, uid)?;
    b.step("select the MF", commands::select_mf())?;
    b.step(
        "install the PIV application in its factory state (PIN 123456, PUK 12345678, the default management key, no keys)",
        commands::create_file(&install_fcp(ApplicationKind::Piv)),
    )?;
    b.step(
        "activate the card: a PIV token as it leaves its factory",
        commands::activate_mf(),
    )
}

/// The personalization steps of the card, and its exports.
pub(super) fn personalize(
    spec: &PivSpec,
    content: &CardContent,
    piv: &PivContent,
    master: &MasterKey,
) -> Result<(Vec<Step>, Exports), CompileError> {
    let uid = content.uid;
    let mut keys = Vec::with_capacity(piv.keys.len());
    for slot in &piv.keys {
        let generated;
        let key = match &slot.imported {
            Some(key) => key,
            None => {
                generated = PrivateKey::generate(slot.algorithm.key_type())?;
                &generated
            }
        };
        let pkey = key.to_pkey()?;
        let certificate = match &slot.certificate {
            PivCertificate::None => None,
            PivCertificate::Given(der) => Some(der.to_vec()),
            PivCertificate::Issue => {
                let ca = spec.ca.as_ref().ok_or(CompileError::Empty)?;
                Some(certificate::issue(
                    ca,
                    slot.slot,
                    &piv.subject,
                    &pkey,
                    piv.not_before,
                )?)
            }
        };
        keys.push((
            slot,
            import_template(key, slot)?,
            certificate,
            key.public_pem()?,
        ));
    }

    let mut r = Reference::new(uid, master);
    r.step("select the PIV application", cmd::select())?;
    r.step(
        "GET SERIAL: this card's (the UID's last four bytes), before anything is written",
        cmd::get_serial(),
    )?;
    r.step(
        "verify the factory PIN (123456): before anything is written",
        cmd::verify(0x80, DEFAULT_PIN),
    )?;
    r.live(
        "authenticate with the factory management key",
        LiveStep::factory_management_key(),
    )?;
    r.step(
        "CHUID (5FC102): FASC-N and the GUID of the UID",
        cmd::put_data(objects::CHUID, &objects::factory_chuid(uid)),
    )?;
    r.step(
        "Card Capability Container (5FC107)",
        cmd::put_data(objects::CCC, &objects::factory_ccc(uid)),
    )?;
    for (slot, template, certificate, _) in &keys {
        let name = format!("{:02X}", slot.slot.byte());
        r.step(
            format!("{name}: import the {} key", slot.algorithm.name()),
            cmd::import_key(slot.algorithm.card().byte(), slot.slot, template),
        )?;
        if let Some(der) = certificate {
            r.step(
                format!("{name}: certificate ({:06X})", slot.slot.certificate_tag()),
                cmd::put_data(slot.slot.certificate_tag(), &certificate_object(der)),
            )?;
        }
    }
    r.step(
        "change the PUK from its factory value (12345678)",
        cmd::change_reference_data(0x81, DEFAULT_PUK, content.puk.expose()),
    )?;
    r.step(
        "change the PIN from its factory value (123456)",
        cmd::change_reference_data(0x80, DEFAULT_PIN, content.pin.expose()),
    )?;
    let algorithm = spec.management_key;
    let own = derive_management_key(master, algorithm, &uid.0);
    r.step(
        format!(
            "set the card's own management key ({}, derived from the issuer key): the last write",
            algorithm.name()
        ),
        cmd::set_management_key(management_algorithm_byte(algorithm), &own),
    )?;
    drop(own);
    r.live(
        "authenticate with the card's own management key: it is set",
        LiveStep::card_management_key(master, algorithm, &uid.0),
    )?;

    let mut exported = Vec::with_capacity(keys.len());
    for (slot, _, certificate, public_pem) in &keys {
        let metadata = r.read(cmd::get_metadata(slot.slot.byte()))?;
        let metadata_public = tlv::parse_all(&metadata)
            .ok()
            .and_then(|objects| tlv::find_primitive(&objects, 0x04).map(hex::encode_upper))
            .unwrap_or_default();
        let certificate_pem = certificate.as_ref().map(|der| {
            openssl::x509::X509::from_der(der)
                .and_then(|c| c.to_pem())
                .ok()
                .and_then(|pem| String::from_utf8(pem).ok())
                .unwrap_or_default()
        });
        exported.push(ExportedSlot {
            slot: format!("{:02X}", slot.slot.byte()),
            algorithm: slot.algorithm.name().to_string(),
            public_pem: public_pem.clone(),
            certificate_pem,
            certificate_object: certificate
                .as_ref()
                .map(|der| hex::encode_upper(wrapped_object(der))),
            metadata_public,
        });
    }
    Ok((r.steps, Exports { piv: exported }))
}

/// A certificate object's value: `70 <DER> 71 00 FE 00` (uncompressed, no error detection).
pub fn certificate_object(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(der.len() + 10);
    tlv::push_primitive(&mut out, &[0x70], der);
    tlv::push_primitive(&mut out, &[0x71], &[0x00]);
    tlv::push_primitive(&mut out, &[0xFE], &[]);
    out
}

/// What GET DATA of a certificate answers: `53 { certificate object }`.
fn wrapped_object(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(der.len() + 14);
    tlv::push_primitive(&mut out, &[0x53], &certificate_object(der));
    out
}

/// IMPORT ASYMMETRIC KEY's data: RSA `01` p, `02` q, `03` dP, `04` dQ, `05` qInv; ECC `06` the
/// scalar at the field's length; then the PIN policy `AA` and touch policy `AB` if named.
fn import_template(
    key: &PrivateKey,
    slot: &crate::content::piv::PivSlotKey,
) -> Result<Zeroizing<Vec<u8>>, CompileError> {
    let failed = |what| {
        CompileError::Key(crate::compile::openpgp::key::KeyError {
            algorithm: slot.algorithm.name(),
            what,
        })
    };
    let mut out = Zeroizing::new(Vec::with_capacity(700));
    match key {
        PrivateKey::Rsa(rsa) => {
            let parts = [rsa.p(), rsa.q(), rsa.dmp1(), rsa.dmq1(), rsa.iqmp()];
            for (tag, part) in (1u8..).zip(parts) {
                let part = part.ok_or_else(|| failed("no CRT parts"))?;
                // Each CRT part at half the modulus length, as the card's import takes them.
                let value =
                    Zeroizing::new(part.to_vec_padded(128).map_err(|_| failed("CRT part"))?);
                tlv::push_primitive(&mut out, &[tag], &value);
            }
        }
        PrivateKey::Ec { algorithm, key } => {
            let len = algorithm.platform().field_len().unwrap_or(32) as i32;
            let scalar = Zeroizing::new(
                key.private_key()
                    .to_vec_padded(len)
                    .map_err(|_| failed("no scalar"))?,
            );
            tlv::push_primitive(&mut out, &[0x06], &scalar);
        }
        _ => return Err(failed("not a PIV algorithm")),
    }
    if let Some(policy) = slot.pin_policy {
        tlv::push_primitive(&mut out, &[0xAA], &[policy.byte()]);
    }
    if slot.touch_never {
        tlv::push_primitive(&mut out, &[0xAB], &[0x01]);
    }
    Ok(out)
}

/// Steps checked against the reference card OS, live steps run on it.
struct Reference<'m> {
    link: CardOsLink,
    master: &'m MasterKey,
    uid: Uid,
    steps: Vec<Step>,
    response: Vec<u8>,
}

impl<'m> Reference<'m> {
    fn new(uid: Uid, master: &'m MasterKey) -> Reference<'m> {
        Reference {
            link: CardOsLink::new(vsc_core::sample::piv_token(uid.0)),
            master,
            uid,
            steps: Vec::with_capacity(24),
            response: Vec::with_capacity(512),
        }
    }

    /// Sends `command`; its answer (in `self.response`) must end in `9000`. The command's
    /// bytes.
    fn exchange(&mut self, comment: &str, command: &CommandBuf) -> Result<Vec<u8>, CompileError> {
        use crate::replay::CardLink;
        let step = self.steps.len() + 1;
        let bytes = command.to_vec().map_err(|_| CompileError::Encoding {
            step,
            comment: comment.to_string(),
        })?;
        let refused = |status| CompileError::Refused {
            step,
            comment: comment.to_string(),
            status,
        };
        self.link
            .transmit(&bytes, &mut self.response)
            .map_err(|_| refused(Status::NoPreciseDiagnosis))?;
        match self.response.as_slice() {
            [.., 0x90, 0x00] => Ok(bytes),
            [.., sw1, sw2] => Err(refused(Status::from(u16::from_be_bytes([*sw1, *sw2])))),
            _ => Err(refused(Status::NoPreciseDiagnosis)),
        }
    }

    fn step(
        &mut self,
        comment: impl Into<String>,
        command: CommandBuf,
    ) -> Result<(), CompileError> {
        let comment = comment.into();
        let bytes = Zeroizing::new(self.exchange(&comment, &command)?);
        let step = self.steps.len() + 1;
        let encoding = || CompileError::Encoding {
            step,
            comment: comment.clone(),
        };
        let expect =
            Expectation::exact(std::mem::take(&mut self.response)).map_err(|_| encoding())?;
        let command = CommandApdu::new(bytes.to_vec()).map_err(|_| encoding())?;
        self.steps.push(Step::Command {
            comment: Comment::new(comment.replace(['\n', '\r'], " ")).ok(),
            command,
            expect,
        });
        Ok(())
    }

    /// A live step, run on the reference card with the key a replayer derives.
    fn live(&mut self, comment: &str, live: LiveStep) -> Result<(), CompileError> {
        let step = self.steps.len() + 1;
        let refused = || CompileError::Refused {
            step,
            comment: comment.to_string(),
            status: Status::SecurityStatusNotSatisfied,
        };
        let key = live
            .key(Some(self.master), &self.uid.0)
            .map_err(|_| refused())?;
        let mut response = Vec::with_capacity(64);
        run_live_step(&mut self.link, &live, &key, &mut response).map_err(|_| refused())?;
        self.steps.push(Step::Live {
            comment: Comment::new(comment).ok(),
            live,
        });
        Ok(())
    }

    /// A read outside the transcript (for the exports): the response data.
    fn read(&mut self, command: CommandBuf) -> Result<Vec<u8>, CompileError> {
        self.exchange("read a key's metadata", &command)?;
        let mut data = std::mem::take(&mut self.response);
        data.truncate(data.len().saturating_sub(2));
        Ok(data)
    }
}

#[cfg(test)]
mod tests;
