//! The profile as written in TOML, before validation: plain strings and numbers, every table
//! closed to unknown keys. [`super::compile`] turns it into a [`super::Profile`].

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub id: String,
    pub version: u32,
    pub description: Option<String>,
    pub uid: RawUid,
    pub public: Option<RawDf>,
    pub private: Option<RawDf>,
    pub pin: Option<RawPassword>,
    pub puk: Option<RawPassword>,
    #[serde(default)]
    pub key: Vec<RawKey>,
    pub openpgp: Option<RawOpenPgp>,
    pub piv: Option<RawPiv>,
}

/// `[piv]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPiv {
    pub management_key: Option<String>,
    pub ca: Option<RawCa>,
    #[serde(default)]
    pub subject: Vec<RawSubjectPart>,
    pub authentication: Option<RawPivSlot>,
    pub signature: Option<RawPivSlot>,
    pub key_management: Option<RawPivSlot>,
    pub card_authentication: Option<RawPivSlot>,
    pub pin: RawOpenPgpPassword,
    pub puk: RawOpenPgpPassword,
}

/// `[piv.ca]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCa {
    pub certificate: String,
    pub key: String,
    pub validity_days: Option<u32>,
}

/// `[[piv.subject]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubjectPart {
    pub attribute: String,
    pub value: RawValue,
}

/// `[piv.authentication]`, `[piv.signature]`, `[piv.key_management]`,
/// `[piv.card_authentication]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPivSlot {
    pub algorithm: String,
    pub source: String,
    pub field: Option<String>,
    pub passphrase_field: Option<String>,
    pub pin_policy: Option<String>,
    pub touch_policy: Option<String>,
    pub certificate: Option<String>,
    pub certificate_field: Option<String>,
}

/// `[openpgp]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenPgp {
    pub name: Option<RawName>,
    pub language: Option<RawValue>,
    pub salutation: Option<RawSalutation>,
    pub url: Option<RawValue>,
    pub login: Option<RawValue>,
    pub private_use_1: Option<RawValue>,
    pub private_use_2: Option<RawValue>,
    pub private_use_3: Option<RawValue>,
    pub private_use_4: Option<RawValue>,
    #[serde(default)]
    pub certificate: Vec<RawCertificate>,
    pub user_id: Option<RawValue>,
    pub created: Option<RawCreated>,
    pub signature: Option<RawSlot>,
    pub decryption: Option<RawSlot>,
    pub authentication: Option<RawSlot>,
    pub pw1: RawOpenPgpPassword,
    pub pw3: RawOpenPgpPassword,
    pub resetting_code: Option<RawOpenPgpPassword>,
}

/// `name = { surname = FIELD, given = FIELD }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawName {
    pub surname: String,
    pub given: Option<String>,
}

/// `salutation = { field = FIELD }` or `{ constant = "F" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSalutation {
    pub field: Option<String>,
    pub constant: Option<String>,
}

/// `[[openpgp.certificate]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    pub slot: String,
    pub field: String,
    pub form: String,
    #[serde(default)]
    pub optional: bool,
}

/// `created = "2026-01-01T00:00:00Z"` or `created = { field = FIELD }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawCreated {
    Fixed(String),
    Field { field: String },
}

/// `[openpgp.signature]`, `[openpgp.decryption]`, `[openpgp.authentication]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlot {
    pub algorithm: String,
    pub source: String,
    pub field: Option<String>,
    pub format: Option<String>,
    pub passphrase_field: Option<String>,
    pub created: Option<RawCreated>,
}

/// `pw1`, `pw3`, `resetting_code`: `{ generate = N }` or `{ field = FIELD }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenPgpPassword {
    pub generate: Option<u32>,
    pub field: Option<String>,
}

/// `[uid]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUid {
    pub source: String,
    pub field: Option<String>,
    pub prefix: Option<String>,
    pub first: Option<u64>,
}

/// `[public]`, `[private]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDf {
    pub aid: Option<String>,
    pub label: String,
    pub data_access: RawDataAccess,
    #[serde(default)]
    pub access: RawDfAccess,
    #[serde(default)]
    pub ef: Vec<RawEf>,
    #[serde(default)]
    pub data_object: Vec<RawDataObject>,
}

/// `data_access = { get, put }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataAccess {
    pub get: String,
    pub put: String,
}

/// `access = { … }` of a DF: every operation defaults to never.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDfAccess {
    pub delete: Option<String>,
    pub terminate: Option<String>,
    pub activate: Option<String>,
    pub deactivate: Option<String>,
    pub create_df: Option<String>,
    pub create_ef: Option<String>,
    pub delete_child: Option<String>,
}

/// `[[public.ef]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEf {
    pub name: String,
    pub fid: String,
    pub sfi: Option<u32>,
    #[serde(rename = "type")]
    pub kind: String,
    pub size: Option<u32>,
    pub record_length: Option<u32>,
    pub record_count: Option<u32>,
    pub read: String,
    pub update: String,
    pub append: Option<String>,
    pub activate: Option<String>,
    pub deactivate: Option<String>,
    pub terminate: Option<String>,
    pub delete: Option<String>,
    pub value: Option<RawValue>,
    pub records: Option<Vec<RawValue>>,
}

/// `[[public.data_object]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataObject {
    pub name: Option<String>,
    pub tag: String,
    pub max_length: Option<u32>,
    pub value: RawValue,
}

/// Where a value comes from and how it is encoded.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValue {
    pub tag: Option<String>,
    pub field: Option<String>,
    pub constant: Option<String>,
    pub random: Option<u32>,
    pub template: Option<Vec<RawValue>>,
    pub concat: Option<Vec<RawValue>>,
    pub encoding: Option<String>,
    pub date_input: Option<String>,
    pub date_output: Option<String>,
    pub pad: Option<String>,
    pub length: Option<u32>,
    #[serde(default)]
    pub optional: bool,
}

/// `[pin]`, `[puk]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassword {
    pub min_length: u32,
    pub max_length: u32,
    pub tries: u32,
    pub field: Option<String>,
    pub generate: Option<u32>,
}

/// `[[key]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub reference: u32,
    pub name: Option<String>,
    pub algorithm: String,
    pub usage: Vec<String>,
    pub source: String,
}
