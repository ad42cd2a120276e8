//! What a VSC holds, described for people and tools (`vsc-emulator inspect`): the file tree
//! with sizes and access rules, public contents, password and key states, and each
//! application's objects (key slots with their algorithm and fingerprint, password states,
//! public data objects). Never a PIN value, a key value or the contents of the private area.

use serde::Serialize;

use crate::applications::{Application, PublicPart, openpgp, piv};
use crate::card::CardState;
use crate::fs::{Df, DfPath, EfBody, Fid, FileSystem, Node, Operation, RecordKind};
use crate::security::PasswordRef;

/// A card described.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardReport {
    /// The UID, hex.
    pub uid: String,
    /// The life cycle, e.g. `operational`.
    pub life_cycle: String,
    /// The MF and everything under it (DF.PRIVATE only when the areas could be opened).
    pub files: FileReport,
    /// The user PIN and PUK, when the password area could be opened.
    pub passwords: Option<Vec<PasswordReport>>,
    /// The key objects, when the secret key area could be opened.
    pub keys: Option<Vec<KeyReport>>,
    /// Whether the personalization channel keys are loaded, when known.
    pub channel_keys: Option<bool>,
    /// The applications beside the VSC file system.
    pub applications: Vec<ApplicationReport>,
}

/// An application described.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApplicationReport {
    /// E.g. `OpenPGP 3.4`.
    pub kind: String,
    /// The full AID, hex.
    pub aid: String,
    /// `active` or `terminated`.
    pub state: String,
    /// Public data objects: name and value as text.
    pub data: Vec<(String, String)>,
    /// The key slots.
    pub keys: Vec<SlotReport>,
    /// The passwords, when the password area could be opened.
    pub passwords: Option<Vec<PasswordReport>>,
}

/// A key slot described: never the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotReport {
    /// E.g. `signature`.
    pub slot: String,
    /// The algorithm attributes, e.g. `ed25519 (EdDSA)`.
    pub algorithm: String,
    /// `none`, `generated` or `imported`.
    pub status: String,
    /// The fingerprint the terminal wrote, hex, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The generation time the terminal wrote (seconds since 1970), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<u32>,
    /// Whether the private key is there, when the secret key area could be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<bool>,
}

/// A file described.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// The FID, hex.
    pub fid: String,
    /// `DF`, `transparent EF`, `linear fixed EF` or `linear variable EF`.
    pub kind: String,
    /// The DF name, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aid: Option<String>,
    /// The short EF identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sfi: Option<u8>,
    /// `activated`, `deactivated` or `terminated`.
    pub state: String,
    /// Bytes reserved.
    pub size: usize,
    /// Records written, for record EFs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<usize>,
    /// The access rules, by operation name.
    pub rules: Vec<(String, String)>,
    /// The contents, for files of the public side (hex), never for DF.PRIVATE's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<String>>,
    /// A DF's data objects: tag, length and (public side only) value in hex.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_objects: Vec<DataObjectReport>,
    /// A DF's children.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<FileReport>,
}

/// A data object described.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataObjectReport {
    /// The tag, hex.
    pub tag: String,
    /// The value's length.
    pub length: usize,
    /// The value in hex (public side only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A password's state, never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PasswordReport {
    /// `user PIN` or `PUK`.
    pub name: String,
    /// The reference, `01` or `02`.
    pub reference: u8,
    /// Tries left.
    pub tries_left: u8,
    /// Tries allowed.
    pub max_tries: u8,
    /// Blocked (no tries left).
    pub blocked: bool,
    /// Has a value.
    pub set: bool,
    /// Length limits.
    pub min_length: u8,
    /// Length limits.
    pub max_length: u8,
}

/// A key object, never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyReport {
    /// The reference.
    pub reference: u8,
    /// E.g. `AES-128`.
    pub algorithm: String,
    /// What it may do.
    pub usage: Vec<String>,
    /// Whether its value is loaded.
    pub loaded: bool,
}

/// Describes a whole card state (every area open).
pub fn report(state: &CardState) -> CardReport {
    let mut report = report_files(
        state.uid().unwrap_or_default().0,
        state.life_cycle.name(),
        &state.fs,
    );
    report.passwords = Some(
        [
            (PasswordRef::UserPin, "user PIN"),
            (PasswordRef::Puk, "PUK"),
        ]
        .into_iter()
        .filter_map(|(reference, name)| {
            let p = state.passwords.get(reference)?;
            Some(PasswordReport {
                blocked: p.is_blocked(),
                ..password_report(name, reference.byte(), p)
            })
        })
        .collect(),
    );
    report.keys = Some(
        state
            .keys
            .iter()
            .map(|key| KeyReport {
                reference: key.reference.value(),
                algorithm: key.algorithm.name().to_string(),
                usage: key.usage.names().into_iter().map(str::to_string).collect(),
                loaded: key.is_loaded(),
            })
            .collect(),
    );
    report.channel_keys = Some(state.keys.channel.is_some());
    report.applications = state
        .applications
        .iter()
        .map(|application| describe_application(application, state.uid().map(|u| u.0)))
        .collect();
    report
}

/// Describes what an image shows without the issuer key: the files and the applications'
/// public objects, in clear (nothing of it verified).
pub fn report_clear(view: &crate::image::ClearView) -> CardReport {
    let mut report = report_files(view.uid, view.life_cycle.name(), &view.fs);
    report.applications = view
        .applications
        .iter()
        .map(|part| match part {
            PublicPart::OpenPgp(public) => describe_openpgp(public, view.uid, None, None),
            PublicPart::Piv(public) => describe_piv(public, None, None, None),
        })
        .collect();
    report
}

fn describe_application(application: &Application, uid: Option<[u8; 8]>) -> ApplicationReport {
    match application {
        Application::OpenPgp(app) => {
            let passwords = [
                ("PW1", 0x81, &app.passwords.pw1),
                ("resetting code", 0x00, &app.passwords.rc),
                ("PW3", 0x83, &app.passwords.pw3),
            ]
            .into_iter()
            .map(|(name, reference, p)| password_report(name, reference, p))
            .collect();
            let loaded = openpgp::Slot::ALL.map(|slot| app.key(slot).is_some());
            describe_openpgp(
                &app.public,
                uid.unwrap_or_default(),
                Some(loaded),
                Some(passwords),
            )
        }
        Application::Piv(app) => {
            let passwords = [
                ("PIN", 0x80, &app.passwords.pin),
                ("PUK", 0x81, &app.passwords.puk),
            ]
            .into_iter()
            .map(|(name, reference, p)| password_report(name, reference, p))
            .collect();
            describe_piv(
                &app.public,
                Some(&app.private),
                Some(&app.keys),
                Some(passwords),
            )
        }
    }
}

/// PIV described: the data objects held (name, tag and size; the GUID of the CHUID), the key
/// slots, and, with the sealed areas open, the objects behind the PIN (sizes only), the
/// management key's algorithm and whether it is the factory key, and the PIN and PUK.
fn describe_piv(
    public: &piv::PublicData,
    private: Option<&piv::PrivateData>,
    keys: Option<&piv::Keys>,
    passwords: Option<Vec<PasswordReport>>,
) -> ApplicationReport {
    let name = |tag: u32| piv::objects::info(tag).map_or("unknown object", |info| info.name);
    let mut data: Vec<(String, String)> = public
        .objects
        .iter()
        .map(|(tag, value)| {
            (
                format!("{} ({tag:X})", name(*tag)),
                format!("{} bytes", value.len()),
            )
        })
        .collect();
    if let Some(guid) = public
        .objects
        .get(&piv::objects::CHUID)
        .and_then(|chuid| piv::objects::chuid_guid(chuid))
        .map(hex::encode_upper)
    {
        data.push(("GUID".to_string(), guid));
    }
    if let Some(private) = private {
        data.extend(private.objects.iter().map(|(tag, value)| {
            (
                format!("{} ({tag:X}, behind the PIN)", name(*tag)),
                format!("{} bytes", value.len()),
            )
        }));
    }
    if let Some(keys) = keys {
        let default = keys.management.has_value(&piv::DEFAULT_MANAGEMENT_KEY);
        data.push((
            "management key (9B)".to_string(),
            format!(
                "{}{}",
                keys.management.algorithm.name(),
                if default { ", the factory default" } else { "" }
            ),
        ));
    }
    let keys_report = public
        .slots
        .iter()
        .map(|(slot, info)| SlotReport {
            slot: slot.name(),
            algorithm: info.algorithm.asymmetric().name().to_string(),
            status: format!(
                "{}, PIN {}",
                match info.origin {
                    crate::security::KeyOrigin::Generated => "generated",
                    crate::security::KeyOrigin::Imported => "imported",
                },
                info.pin_policy.name()
            ),
            fingerprint: None,
            created: None,
            loaded: keys.map(|keys| keys.keys.contains_key(slot)),
        })
        .collect();
    ApplicationReport {
        kind: crate::applications::ApplicationKind::Piv.name().to_string(),
        aid: hex::encode_upper(piv::AID),
        state: "active".to_string(),
        data,
        keys: keys_report,
        passwords,
    }
}

fn describe_openpgp(
    public: &openpgp::PublicData,
    uid: [u8; 8],
    loaded: Option<[bool; 3]>,
    passwords: Option<Vec<PasswordReport>>,
) -> ApplicationReport {
    let text = |bytes: &[u8]| {
        if bytes.is_empty() {
            "(not set)".to_string()
        } else {
            printable(bytes)
        }
    };
    let certificates: Vec<String> = public
        .certificates
        .iter()
        .map(|c| c.len().to_string())
        .collect();
    let data = vec![
        ("name".to_string(), text(&public.name)),
        ("language".to_string(), text(&public.language)),
        ("sex".to_string(), text(&public.sex)),
        ("URL".to_string(), text(&public.url)),
        ("login".to_string(), text(&public.login)),
        (
            "signature counter".to_string(),
            public.signature_counter.to_string(),
        ),
        (
            "PW1 valid for".to_string(),
            if public.pw1_valid_for_several_signatures {
                "several signatures".to_string()
            } else {
                "one signature".to_string()
            },
        ),
        (
            "certificates (bytes: aut, dec, sig)".to_string(),
            certificates.join(", "),
        ),
    ];
    let keys = openpgp::Slot::ALL
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let info = &public.slots[i];
            SlotReport {
                slot: slot.name().to_string(),
                algorithm: info.attributes.describe(),
                status: match info.status {
                    openpgp::KeyStatus::Absent => "none",
                    openpgp::KeyStatus::Generated => "generated",
                    openpgp::KeyStatus::Imported => "imported",
                }
                .to_string(),
                fingerprint: (info.fingerprint != [0; 20])
                    .then(|| hex::encode_upper(info.fingerprint)),
                created: (info.generated_at != 0).then_some(info.generated_at),
                loaded: loaded.map(|loaded| loaded[i]),
            }
        })
        .collect();
    ApplicationReport {
        kind: crate::applications::ApplicationKind::OpenPgp
            .name()
            .to_string(),
        aid: hex::encode_upper(openpgp::aid(Some(crate::Uid(uid)))),
        state: if public.terminated {
            "terminated"
        } else {
            "active"
        }
        .to_string(),
        data,
        keys,
        passwords,
    }
}

fn password_report(name: &str, reference: u8, p: &crate::security::Password) -> PasswordReport {
    PasswordReport {
        name: name.to_string(),
        reference,
        tries_left: p.tries_left,
        max_tries: p.policy.max_tries,
        blocked: p.is_blocked() && p.is_set(),
        set: p.is_set(),
        min_length: p.policy.min_len,
        max_length: p.policy.max_len,
    }
}

/// Describes what is known without the sealed areas: the files in clear.
pub fn report_files(uid: [u8; 8], life_cycle: &str, fs: &FileSystem) -> CardReport {
    CardReport {
        uid: hex::encode_upper(uid),
        life_cycle: life_cycle.to_string(),
        files: describe_df(&fs.mf, DfPath::MF, true),
        passwords: None,
        keys: None,
        channel_keys: None,
        applications: Vec::new(),
    }
}

fn describe_df(df: &Df, path: DfPath, public: bool) -> FileReport {
    let children = df
        .children
        .iter()
        .map(|node| match node {
            Node::Df(child) => {
                let child_public = public && child.fid != Fid::DF_PRIVATE;
                describe_df(child, path.child(child.fid).unwrap_or(path), child_public)
            }
            Node::Ef(ef) => {
                let (kind, records, content) = match &ef.body {
                    EfBody::Transparent(bytes) => {
                        ("transparent EF", None, vec![hex::encode_upper(bytes)])
                    }
                    EfBody::Records(file) => (
                        match file.kind {
                            RecordKind::LinearFixed => "linear fixed EF",
                            RecordKind::LinearVariable => "linear variable EF",
                        },
                        Some(file.records.len()),
                        file.records.iter().map(hex::encode_upper).collect(),
                    ),
                };
                FileReport {
                    fid: ef.fid.to_string(),
                    kind: kind.to_string(),
                    aid: None,
                    sfi: ef.sfi.map(|s| s.value()),
                    state: format!("{:?}", ef.state).to_lowercase(),
                    size: ef.capacity(),
                    records,
                    rules: ef_rules(&ef.rules),
                    content: public.then_some(content),
                    data_objects: Vec::new(),
                    children: Vec::new(),
                }
            }
        })
        .collect();
    FileReport {
        fid: df.fid.to_string(),
        kind: "DF".to_string(),
        aid: df.aid.as_ref().map(|a| a.to_string()),
        sfi: None,
        state: format!("{:?}", df.state).to_lowercase(),
        size: df.capacity(),
        records: None,
        rules: vec![
            (
                "create EF".into(),
                df.rules.get(Operation::UpdateOrCreateEf).to_string(),
            ),
            (
                "create DF".into(),
                df.rules.get(Operation::AppendOrCreateDf).to_string(),
            ),
            ("delete".into(), df.rules.get(Operation::Delete).to_string()),
            ("get data".into(), df.data_rules.get.to_string()),
            ("put data".into(), df.data_rules.put.to_string()),
        ],
        content: None,
        data_objects: df
            .data_objects
            .iter()
            .map(|(tag, value)| DataObjectReport {
                tag: format!("{:X}", tag.value()),
                length: value.len(),
                value: public.then(|| hex::encode_upper(value)),
            })
            .collect(),
        children,
    }
}

fn ef_rules(rules: &crate::fs::AccessRules) -> Vec<(String, String)> {
    let rule = |op| rules.get(op).to_string();
    vec![
        ("read".into(), rule(Operation::ReadOrDeleteChild)),
        ("update".into(), rule(Operation::UpdateOrCreateEf)),
        ("append".into(), rule(Operation::AppendOrCreateDf)),
        ("delete".into(), rule(Operation::Delete)),
    ]
}

/// The printable rendering of bytes: ASCII as is, UTF-8 where it decodes, `.` otherwise.
pub fn printable(bytes: &[u8]) -> String {
    let trimmed = bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(&bytes[..0], |end| &bytes[..=end]);
    match std::str::from_utf8(trimmed) {
        Ok(text) => text
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect(),
        Err(_) => trimmed
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() || *b == b' ' {
                    *b as char
                } else {
                    '.'
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_without_secrets() {
        let state = crate::sample::card().into_state();
        let report = report(&state);
        let json = format!("{report:?}");
        assert!(
            json.contains("4552494B41204D55535445524D414E4E"),
            "public content shown"
        );
        assert!(
            !json.contains(&hex::encode_upper("Heidestra")),
            "private content never shown"
        );
        assert!(
            !json.contains(&hex::encode_upper(crate::sample::KEY_01)),
            "no key value"
        );
        assert!(
            !json.contains(&hex::encode_upper(crate::sample::USER_PIN)),
            "no PIN"
        );
        let passwords = report.passwords.unwrap();
        assert_eq!((passwords[0].tries_left, passwords[0].set), (3, true));
        assert_eq!(report.keys.unwrap()[0].algorithm, "AES-128");
        assert_eq!(printable(b"ERIKA\0\0"), "ERIKA");
    }

    #[test]
    fn applications_show_their_slots_and_passwords_never_their_keys() {
        let mut card = crate::sample::card_with_openpgp();
        let send =
            |card: &mut crate::card::Card, hex: &str| card.transmit(&hex::decode(hex).unwrap());
        send(&mut card, "00A4040006D27600012401");
        send(&mut card, "00200083083132333435363738");
        send(&mut card, "00DA00C10A162B06010401DA470F01");
        let generated = send(&mut card, "0047800002B60000");
        let public = &generated[5..37];
        let state = card.into_state();
        let report = report(&state);
        let application = &report.applications[0];
        assert_eq!(application.kind, "OpenPGP 3.4");
        assert_eq!(application.keys[0].algorithm, "ed25519 (EdDSA)");
        assert_eq!(application.keys[0].status, "generated");
        assert_eq!(application.keys[0].loaded, Some(true));
        assert_eq!(application.keys[1].loaded, Some(false));
        let passwords = application.passwords.as_ref().unwrap();
        assert_eq!(
            (passwords[0].name.as_str(), passwords[0].tries_left),
            ("PW1", 3)
        );
        assert!(!passwords[1].set);
        let text = format!("{report:?}");
        assert!(
            !text.contains(&hex::encode_upper(public)),
            "not even the public key"
        );
        assert!(
            !text.contains(&hex::encode_upper("Heidestra")),
            "no private data"
        );
    }
}
