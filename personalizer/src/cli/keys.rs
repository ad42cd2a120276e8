//! `keys init`, `keys check`, `keys public-key`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use vsc_core::issuer::IssuerKeyFile;
use vsc_core::transcript::PreparationKey;
use vsc_personalizer::files::{self, Mode, Overwrite};

use super::Outcome;
use super::common::load_key;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new issuer key file: a random 256-bit master key and its check value, mode
    /// 0600. Refuses to overwrite an existing file.
    ///
    /// Every VSC image, channel key and derived key of the cards you prepare comes from this
    /// key: keep it secret and keep a backup. Compare its check value with your records (or
    /// your HSM's) with `keys check`.
    Init(KeysInit),
    /// Check an issuer key file and print its key check value (KCV).
    Check(KeyFileArg),
    /// Write the verification key of the issuer's transcripts: what stations and replays trust
    /// (--trusted-key), so that they never need the issuer key.
    ///
    /// Data preparation signs every transcript with a preparation key derived from the issuer
    /// key (docs/keys.md); this is its public half.
    PublicKey(PublicKeyArgs),
}

#[derive(Debug, Args)]
pub struct KeysInit {
    /// Where to write the key file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeyFileArg {
    /// The issuer key file.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PublicKeyArgs {
    #[command(flatten)]
    key: KeyFileArg,

    /// Where to write the verification key file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(command: KeysCommand) -> anyhow::Result<Outcome> {
    match command {
        KeysCommand::Init(args) => {
            let key = IssuerKeyFile::create_new(&args.out).with_context(|| {
                format!("cannot create the issuer key file {}", args.out.display())
            })?;
            println!("issuer key written to {} (mode 0600)", args.out.display());
            println!("key check value: {}", key.check_value());
        }
        KeysCommand::Check(args) => {
            let key = load_key(&args.key_file)?;
            println!(
                "{}: issuer key, check value {}",
                args.key_file.display(),
                key.check_value()
            );
        }
        KeysCommand::PublicKey(args) => {
            let key = load_key(&args.key.key_file)?;
            let verify = PreparationKey::derive(key.master_key()).verify_key();
            files::write_new(
                &args.out,
                verify.encode().as_bytes(),
                Mode::Public,
                Overwrite::forced(args.force),
            )?;
            println!(
                "verification key {} written to {}",
                verify.id(),
                args.out.display()
            );
        }
    }
    Ok(Outcome::Done)
}
