//! `records sample`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use vsc_personalizer::files::Overwrite;
use vsc_personalizer::profile::Profile;
use vsc_personalizer::synthetic;

use super::Outcome;

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Write N synthetic, valid, distinct card holders for a profile (CSV or JSON Lines by the
    /// output's extension), deterministic for a seed: for tests, demos and benchmarks.
    Sample(RecordsSample),
}

#[derive(Debug, Args)]
pub struct RecordsSample {
    /// The profile whose fields the holders fill.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// How many holders.
    #[arg(long, value_name = "N")]
    count: u64,

    /// The output: FILE.csv, FILE.jsonl or FILE.ndjson.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// The seed: the same seed gives the same holders.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,

    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(command: RecordsCommand) -> anyhow::Result<Outcome> {
    let RecordsCommand::Sample(args) = command;
    let profile = Profile::load(&args.profile)?;
    synthetic::write(
        &profile,
        args.count,
        &args.out,
        args.seed,
        Overwrite::forced(args.force),
    )?;
    println!(
        "{} holders for profile {} written to {}",
        args.count,
        profile.id(),
        args.out.display()
    );
    Ok(Outcome::Done)
}
