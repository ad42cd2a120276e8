//! `export`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use vsc_personalizer::export::{self, Protection, What};
use vsc_personalizer::files::Overwrite;
use vsc_personalizer::prepare::parse_recipient;
use vsc_personalizer::store::{Access, StoreErrorKind, Uid};

use super::Outcome;
use super::common::{StoreArgs, TrustArgs, load_key, uid};
use super::exit::usage;
use super::ui::Verbosity;

/// Write out what the store holds for one card.
///
/// `image`: the personalized VSC image (for `vsc-emulator serve`). `transcript`: the
/// personalization transcript (.vsct), as signed at preparation. `preinit`: the
/// pre-initialization transcript, for the card maker: it loads the card's channel keys, so it is
/// written encrypted to --recipient (or in clear, mode 0600, only with --clear). `scriptor`: the
/// personalization transcript as a pcsc-tools scriptor script. Transcripts are verified against
/// the trusted keys before they leave the store. For an OpenPGP token: `certificate`, the
/// armored OpenPGP certificate of its keys, self-signed at preparation (`gpg --import` takes
/// it); `public-keys`, its public keys in PEM; `fingerprints`, one line per key. For a PIV
/// card: `certificate`, its slots' certificates in PEM; `public-keys`, its public keys in PEM;
/// `fingerprints`, the SHA-256 of each certificate. An OpenPGP token's or a PIV card's
/// transcript carries its keys and PINs: it is written encrypted to --recipient (or in clear
/// only with --clear).
#[derive(Debug, Args)]
#[command(long_about)]
pub struct ExportArgs {
    /// What to write.
    #[arg(value_enum, value_name = "WHAT")]
    what: WhatArg,

    /// The card's UID (16 hex digits, spaces allowed).
    #[arg(long, value_name = "UID", value_parser = uid)]
    uid: Uid,

    /// Where to write it.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    #[command(flatten)]
    store: StoreArgs,

    /// The issuer key file, to open sealed transcripts (and to trust its own signatures).
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: Option<PathBuf>,

    #[command(flatten)]
    trust: TrustArgs,

    /// Encrypt secret-bearing exports to this age recipient (age1…).
    #[arg(long, visible_alias = "to", value_name = "RECIPIENT")]
    recipient: Option<String>,

    /// Write secret-bearing exports in clear (mode 0600): for tests only.
    #[arg(long, conflicts_with = "recipient")]
    clear: bool,

    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum WhatArg {
    Image,
    Transcript,
    Preinit,
    Scriptor,
    Certificate,
    PublicKeys,
    Fingerprints,
}

pub fn run(args: ExportArgs) -> anyhow::Result<Outcome> {
    let what = match args.what {
        WhatArg::Image => What::Image,
        WhatArg::Transcript => What::Transcript,
        WhatArg::Preinit => What::Preinit,
        WhatArg::Scriptor => What::Scriptor,
        WhatArg::Certificate => What::Certificate,
        WhatArg::PublicKeys => What::PublicKeys,
        WhatArg::Fingerprints => What::Fingerprints,
    };
    let protection = match (&args.recipient, args.clear) {
        (Some(recipient), _) => {
            Protection::Encrypt(parse_recipient(recipient).map_err(|e| usage(e.to_string()))?)
        }
        (None, true) => Protection::Clear,
        (None, false) => Protection::Refuse,
    };
    let key = args.key_file.as_deref().map(load_key).transpose()?;
    let master = key.as_ref().map(|k| k.master_key());
    let trust = match what {
        What::Image | What::Certificate | What::PublicKeys | What::Fingerprints => {
            Default::default()
        }
        _ => args.trust.trust(master)?,
    };
    let mut store = args
        .store
        .open(Access::Existing, Verbosity::new(0, false))?
        .store;
    let stored = store.card(args.uid)?.ok_or_else(|| {
        vsc_personalizer::store::StoreError::new(
            store.location(),
            StoreErrorKind::NotFound(args.uid),
        )
    })?;
    let exported = export::export(
        &stored,
        what,
        &args.out,
        master,
        &trust,
        &protection,
        Overwrite::forced(args.force),
    )
    .with_context(|| format!("card {}", args.uid))?;
    if exported.secret && !exported.encrypted {
        eprintln!(
            "warning: {} holds card secrets in clear",
            args.out.display()
        );
    }
    let name = match what {
        What::Image => "image".to_string(),
        What::Transcript => format!(
            "personalization transcript (sha256 {})",
            stored.card.perso_digest
        ),
        What::Preinit => format!(
            "pre-initialization transcript (sha256 {})",
            stored.card.preinit_digest
        ),
        What::Scriptor => "scriptor script".to_string(),
        What::Certificate => match stored.card.exports.as_deref() {
            Some(json) if vsc_personalizer::compile::piv::Exports::from_json(json).is_some() => {
                "PIV certificates".to_string()
            }
            _ => "OpenPGP certificate".to_string(),
        },
        What::PublicKeys => "public keys".to_string(),
        What::Fingerprints => "fingerprints".to_string(),
    };
    println!(
        "{name} of {} written to {}{}",
        args.uid,
        args.out.display(),
        if exported.encrypted {
            " (encrypted)"
        } else {
            ""
        }
    );
    Ok(Outcome::Done)
}
