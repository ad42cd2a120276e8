//! What a VSC holds, described for people and tools (`vsc-emulator inspect`): the file tree
//! with sizes and access rules, public contents, password and key states. Never a PIN value, a
//! key value or the contents of the private area.

use serde::Serialize;

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
                name: name.to_string(),
                reference: reference.byte(),
                tries_left: p.tries_left,
                max_tries: p.policy.max_tries,
                blocked: p.is_blocked(),
                set: p.is_set(),
                min_length: p.policy.min_len,
                max_length: p.policy.max_len,
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
    report
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
}
