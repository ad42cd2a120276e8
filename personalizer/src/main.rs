//! The `vsc-personalizer` command line: issuer keys, data preparation, export, and
//! personalization of real cards.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use vsc_core::issuer::IssuerKeyFile;

/// The VSC control program: prepares virtual smart cards from card holder records and a
/// profile, and personalizes real cards with the same transcripts.
#[derive(Debug, Parser)]
#[command(name = "vsc-personalizer", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The issuer master key: create a key file, or show a key file's check value.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a new issuer key file: a random 256-bit master key and its check value, mode
    /// 0600. Refuses to overwrite an existing file.
    ///
    /// Every VSC image, channel key and derived key of the cards you prepare comes from this
    /// key: keep it secret and keep a backup. Compare its check value with your records (or
    /// your HSM's) with `keys check`.
    Init(KeysInit),
    /// Check an issuer key file and print its key check value (KCV).
    Check(KeysCheck),
}

#[derive(Debug, Args)]
struct KeysInit {
    /// Where to write the key file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct KeysCheck {
    /// The issuer key file.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(KeysCommand::Init(args)) => keys_init(&args),
        Command::Keys(KeysCommand::Check(args)) => keys_check(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vsc-personalizer: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn keys_init(args: &KeysInit) -> anyhow::Result<()> {
    let key = IssuerKeyFile::create_new(&args.out).context("cannot create the issuer key file")?;
    println!("issuer key written to {} (mode 0600)", args.out.display());
    println!("key check value: {}", key.check_value());
    Ok(())
}

fn keys_check(args: &KeysCheck) -> anyhow::Result<()> {
    let key = IssuerKeyFile::load(&args.key_file)?;
    println!(
        "{}: issuer key, check value {}",
        args.key_file.display(),
        key.check_value()
    );
    Ok(())
}
