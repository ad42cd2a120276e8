//! Flags that several commands share, each with one name everywhere: the store and its lock
//! timeout, the issuer key file, the trusted verification keys, `--json`, `--force`, UIDs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use vsc_core::issuer::IssuerKeyFile;
use vsc_core::transcript::VerifyKey;
use vsc_personalizer::replay::Trust;
use vsc_personalizer::store::{self, Access, Notice, OpenOptions, Opened, StoreLocation, Uid};

use super::exit::usage;
use super::ui::Verbosity;

/// `--store` and `--lock-timeout`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The VSC store: a SQLite file (PATH or sqlite:PATH), or a PostgreSQL URL
    /// (postgres://…) or libpq string (host=/var/run/postgresql dbname=vsc).
    #[arg(
        long,
        value_name = "STORE",
        env = "VSC_STORE",
        default_value = "vsc.db",
        value_parser = StoreLocation::parse
    )]
    pub store: StoreLocation,

    /// How long to wait for the store, in seconds: for another process's lock on it, or for its
    /// PostgreSQL server to answer again.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = seconds)]
    pub lock_timeout: f64,
}

impl StoreArgs {
    /// Opens the store; lock waits are said on standard error.
    pub fn open(&self, access: Access, verbosity: Verbosity) -> anyhow::Result<Opened> {
        Ok(store::open(&self.store, &self.options(access, verbosity))?)
    }

    /// The options to open it with.
    pub fn options(&self, access: Access, verbosity: Verbosity) -> OpenOptions {
        let options =
            OpenOptions::new(access).lock_timeout(Duration::from_secs_f64(self.lock_timeout));
        if verbosity.quiet {
            options
        } else {
            options.observer(Arc::new(|notice: &Notice| eprintln!("{notice}")))
        }
    }
}

/// A number of seconds, not negative.
pub fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value >= 0.0 && value.is_finite() => Ok(value),
        _ => Err(format!("{text:?} is not a number of seconds")),
    }
}

/// A UID: 16 hex digits, spaces allowed between them (`56 53 43 44 00 00 10 01`).
pub fn uid(text: &str) -> Result<Uid, String> {
    Uid::parse(text).map_err(|e| e.to_string())
}

/// Loads an issuer key file (its errors name the file).
pub fn load_key(path: &Path) -> anyhow::Result<IssuerKeyFile> {
    Ok(IssuerKeyFile::load(path)?)
}

/// `--trusted-key`, `--allow-unsigned`: which transcripts may be replayed or exported.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// A verification key file (from `keys public-key`) whose signatures are trusted; repeat
    /// for several. Separate several in VSC_TRUSTED_KEY with ':'.
    #[arg(
        long = "trusted-key",
        value_name = "FILE",
        env = "VSC_TRUSTED_KEY",
        value_delimiter = ':'
    )]
    pub trusted_keys: Vec<PathBuf>,

    /// Also accept unsigned transcripts (format version 1, from before transcripts were
    /// signed): nothing vouches that they were not edited.
    #[arg(long)]
    pub allow_unsigned: bool,
}

impl TrustArgs {
    /// The trust: the key files, the issuer key's own verification key when given, unsigned
    /// transcripts when allowed. With none of them, a usage error (nothing could verify).
    pub fn trust(&self, master: Option<&vsc_core::crypto::MasterKey>) -> anyhow::Result<Trust> {
        let mut keys = Vec::new();
        for path in &self.trusted_keys {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("the verification key file {}", path.display()))?;
            keys.push(
                VerifyKey::decode(&text)
                    .with_context(|| format!("the verification key file {}", path.display()))?,
            );
        }
        let mut trust = Trust::new(keys);
        if let Some(master) = master {
            trust = trust.with_issuer(master);
        }
        if trust.keys().is_empty() && !self.allow_unsigned {
            return Err(usage(
                "give --trusted-key FILE (the issuer's verification key, written by `vsc-personalizer \
                 keys public-key`) to check the transcripts' signatures",
            ));
        }
        if self.allow_unsigned {
            tracing::warn!("unsigned transcripts are accepted (--allow-unsigned)");
        }
        Ok(trust.allowing_unsigned(self.allow_unsigned))
    }
}

/// `--json`.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonArg {
    /// Machine-readable output on standard output: JSON Lines (one object per line) for
    /// streams, one JSON object otherwise.
    #[arg(long)]
    pub json: bool,
}
