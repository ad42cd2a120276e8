//! Helpers shared by the personalizer's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use vsc_core::security::{KeyAlgorithm, KeyRef, SecretBytes};
use vsc_personalizer::content::{CardContent, EfContent, KeyDeriver, Resolver};
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records::{Record, RecordError, RecordSource, Step};

/// The committed demo files.
pub fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

pub fn demo_profile() -> Profile {
    Profile::load(&profiles_dir().join("demo.toml")).expect("the demo profile loads")
}

pub fn demo_records() -> PathBuf {
    profiles_dir().join("demo-records.csv")
}

/// Derived keys for tests: the UID, then the reference repeated. Stands in for the issuer's
/// master key derivation.
pub struct StubDeriver;

pub const DERIVED_FILL: u8 = 0xD7;

impl KeyDeriver for StubDeriver {
    fn derive_key(
        &self,
        uid: vsc_core::Uid,
        reference: KeyRef,
        algorithm: KeyAlgorithm,
    ) -> SecretBytes {
        let mut value = vec![DERIVED_FILL ^ reference.value(); algorithm.key_len()];
        value[..8].copy_from_slice(uid.bytes());
        SecretBytes::new(&value)
    }
}

/// Every record of a source, resolved with a seeded RNG: the card content or the error.
pub fn resolve_all(
    profile: &Profile,
    source: &mut dyn RecordSource,
    seed: u64,
) -> Vec<Result<CardContent, RecordError>> {
    let mut resolver =
        Resolver::new(profile, source.header(), StdRng::seed_from_u64(seed)).expect("binds");
    let mut out = Vec::new();
    let mut record = Record::new();
    loop {
        match source.next_record(&mut record).expect("the source works") {
            Step::End => return out,
            Step::Rejected(error) => out.push(Err(error)),
            Step::Read => out.push(resolver.resolve(&record, &StubDeriver)),
        }
    }
}

/// Everything a card content holds but its position, as text, to compare contents.
pub fn fingerprint(content: &CardContent) -> String {
    let mut out = format!("uid {}\n", hex::encode(content.uid));
    for (name, df) in [("public", &content.public), ("private", &content.private)] {
        for (i, file) in df.files.iter().enumerate() {
            let text = match file {
                EfContent::Empty => "empty".to_string(),
                EfContent::Binary(bytes) => hex::encode(&bytes[..]),
                EfContent::Records(records) => records
                    .iter()
                    .map(|r| hex::encode(&r[..]))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            out += &format!("{name} ef {i}: {text}\n");
        }
        for (i, object) in df.data_objects.iter().enumerate() {
            let text = object
                .as_ref()
                .map_or("absent".to_string(), |v| hex::encode(&v[..]));
            out += &format!("{name} do {i}: {text}\n");
        }
    }
    out += &format!("pin {}\n", hex::encode(content.pin.expose()));
    out += &format!("puk {}\n", hex::encode(content.puk.expose()));
    for (reference, value) in &content.keys {
        out += &format!(
            "key {} {}\n",
            reference.value(),
            hex::encode(value.expose())
        );
    }
    out
}
