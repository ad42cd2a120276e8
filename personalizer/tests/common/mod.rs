//! Helpers shared by the personalizer's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// The committed demo file `file`, as a command-line argument.
pub fn profile_arg(file: &str) -> String {
    profiles_dir().join(file).to_string_lossy().into_owned()
}

/// `vsc-personalizer ARGS` run in `dir`, with none of the settings the environment could give
/// it (store, key file, trusted key, log filter): the test's command line says everything.
pub fn personalizer(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vsc-personalizer"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("VSC_STORE")
        .env_remove("VSC_KEY_FILE")
        .env_remove("VSC_TRUSTED_KEY")
        .env_remove("RUST_LOG");
    command
}

/// Runs [`personalizer`] to its end.
pub fn run(args: &[&str], dir: &Path) -> Output {
    personalizer(args, dir).output().unwrap()
}

/// What a run printed on its standard output.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a run printed on its standard error.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `keys init --out issuer.key` in `dir`, which must succeed.
pub fn init_issuer_key(dir: &Path) {
    let output = run(&["keys", "init", "--out", "issuer.key"], dir);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// `prepare` of the demo profile from `records.csv` in `dir`, under `issuer.key` there, without
/// a PIN mailer, then `extra`: not yet run.
pub fn prepare_demo(dir: &Path, extra: &[&str]) -> Command {
    let profile = profile_arg("demo.toml");
    let mut args = vec![
        "prepare",
        "--profile",
        &profile,
        "--records",
        "records.csv",
        "--key-file",
        "issuer.key",
        "--no-pin-mailer",
    ];
    args.extend_from_slice(extra);
    personalizer(&args, dir)
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
