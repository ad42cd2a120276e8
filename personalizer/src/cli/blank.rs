//! `blank`.

use std::path::PathBuf;

use clap::Args;
use vsc_personalizer::blank;
use vsc_personalizer::compile::Mode;
use vsc_personalizer::files::{self, Overwrite};
use vsc_personalizer::profile::Profile;
use vsc_personalizer::store::Uid;

use super::Outcome;
use super::common::{load_key, uid};

#[derive(Debug, Args)]
pub struct BlankArgs {
    /// The profile.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// The card's UID (16 hex digits, spaces allowed).
    #[arg(long, value_name = "UID", value_parser = uid)]
    uid: Uid,

    /// The issuer key file.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: PathBuf,

    /// Where to write the VSC image.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// A card without the personalization channel.
    #[arg(long)]
    plain: bool,

    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: BlankArgs) -> anyhow::Result<Outcome> {
    let profile = Profile::load(&args.profile)?;
    let key = load_key(&args.key_file)?;
    let mode = if args.plain {
        Mode::Plain
    } else {
        Mode::Channel
    };
    let (image, life_cycle) = blank::make(&profile, args.uid, key.master_key(), mode)?;
    files::write_new(
        &args.out,
        &image,
        files::Mode::Private,
        Overwrite::forced(args.force),
    )?;
    if profile.openpgp().is_some() {
        println!(
            "factory-fresh OpenPGP token {} (PW1 123456, PW3 12345678, no keys) written to {}",
            args.uid,
            args.out.display()
        );
    } else if profile.piv().is_some() {
        println!(
            "factory-fresh PIV card {} (PIN 123456, PUK 12345678, the default management key, no keys) written to {}",
            args.uid,
            args.out.display()
        );
    } else {
        println!(
            "pre-initialized card {} ({}) written to {}",
            args.uid,
            life_cycle.name(),
            args.out.display()
        );
    }
    Ok(Outcome::Done)
}
