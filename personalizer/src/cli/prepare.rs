//! `prepare`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use vsc_personalizer::compile::Mode;
use vsc_personalizer::prepare::{self, PinMailer, Recipient, parse_recipient};
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records;
use vsc_personalizer::store::{self, Access};

use super::Outcome;
use super::common::{JsonArg, StoreArgs, load_key};
use super::exit::usage;
use super::ui::{Progress, Verbosity, json_line};

/// Prepare cards: records and a profile in; per card its transcripts (signed by the issuer's
/// preparation key) and personalized VSC image into the store, and its PIN and PUK into the
/// PIN mailer.
///
/// Every card's transcripts run on a blank card through the card OS in-process, every
/// response checked, before the card is stored. Bad records are reported (line, field, rule)
/// and skipped; nothing of them is stored. A run that stores no card leaves no store behind.
///
/// Example: vsc-personalizer prepare --profile demo.toml --records holders.csv
///            --key-file issuer.key --store vsc.db --recipient age1…
#[derive(Debug, Args)]
#[command(long_about)]
pub struct PrepareArgs {
    /// The profile (TOML): the card's files, data objects, PINs and keys, and where each value
    /// comes from.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// The card holder records: FILE.csv, FILE.jsonl, csv:PATH, jsonl:PATH,
    /// sqlite:PATH?table=NAME or sqlite:PATH?query=SELECT….
    #[arg(long, value_name = "SOURCE")]
    records: String,

    /// The issuer key file.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: PathBuf,

    #[command(flatten)]
    store: StoreArgs,

    /// Encrypt the PIN mailer to this age recipient (age1…); repeat for several.
    #[arg(
        long = "recipient",
        visible_alias = "pins-to",
        value_name = "RECIPIENT"
    )]
    recipients: Vec<String>,

    /// Where the PIN mailer files go (one per stored batch).
    #[arg(long, value_name = "DIR", default_value = "pin-mailer")]
    pins_dir: PathBuf,

    /// Prepare without a PIN mailer: generated PINs and PUKs are then lost.
    #[arg(long, conflicts_with = "recipients")]
    no_pin_mailer: bool,

    /// Also write the certificates of the OpenPGP tokens stored into FILE (new), one armored
    /// block each, for `gpg --import`; of PIV cards, each slot's certificate in PEM.
    #[arg(long, value_name = "FILE")]
    exports: Option<PathBuf>,

    /// Worker threads (default: every core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,

    /// Stop at the first record that fails.
    #[arg(long)]
    strict: bool,

    /// Compile without the personalization channel, for cards that lack it. PINs, keys and
    /// private data then travel to the card in clear.
    #[arg(long)]
    plain: bool,

    /// Cards per store transaction and PIN mailer file.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,

    /// Skip records whose card is already in the store (to resume a run that stopped), rather
    /// than count them failed.
    #[arg(long)]
    skip_existing: bool,

    #[command(flatten)]
    json: JsonArg,
}

/// What `prepare` was asked to do, checked.
struct Settings {
    recipients: Vec<Recipient>,
    options: prepare::Options,
}

impl PrepareArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        if self.recipients.is_empty() && !self.no_pin_mailer {
            return Err(usage(
                "give --recipient age1… (the PIN mailer's age recipient; make one with \
                 age-keygen), or --no-pin-mailer to prepare without one",
            ));
        }
        let recipients = self
            .recipients
            .iter()
            .map(|r| parse_recipient(r).map_err(|e| usage(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let options = prepare::Options {
            mode: if self.plain {
                Mode::Plain
            } else {
                Mode::Channel
            },
            jobs: self.jobs.map_or_else(prepare::default_jobs, usize::from),
            strict: self.strict,
            batch: self.batch as usize,
            skip_existing: self.skip_existing,
            exports: self.exports.clone(),
        };
        Ok(Settings {
            recipients,
            options,
        })
    }
}

pub fn run(args: PrepareArgs, verbosity: Verbosity) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let settings = args.settings()?;
    let json = args.json.json;
    // Everything that can fail without the store is checked before the store is touched.
    let profile = Profile::load(&args.profile)?;
    let key = load_key(&args.key_file)?;
    let mut source = records::open(&args.records)?;
    if args.plain && !verbosity.quiet {
        eprintln!(
            "warning: --plain: PINs, keys and private data will travel to the cards in clear"
        );
    }
    let total = count_records(&args.records);
    let progress = Progress::new(total, "cards", "prepare", verbosity, json);
    let mut opened = args.store.open(Access::CreateOrMigrate, verbosity)?;
    let mut mailer = match settings.recipients.is_empty() {
        true => None,
        false => Some(PinMailer::new(&args.pins_dir, settings.recipients)?),
    };
    if let Some(mailer) = mailer.as_mut() {
        for orphan in mailer.reconcile(opened.store.as_mut())? {
            let uids: Vec<String> = orphan.uids.iter().map(|u| u.to_string()).collect();
            if json {
                json_line(&json!({
                    "event": "orphan",
                    "file": orphan.name,
                    "renamed": orphan.path,
                    "uids": uids,
                }));
            }
            progress.always(&format!(
                "PIN mailer: {} is an orphan: its batch never reached the store, so its {} \
                 entries ({}) are the PINs of no stored card{}",
                orphan.name,
                uids.len(),
                uids.join(" "),
                orphan
                    .path
                    .as_ref()
                    .map(|p| format!("; renamed {}", p.display()))
                    .unwrap_or_else(|| " (the file was never written)".into())
            ));
        }
    }
    let mut reported = 0usize;
    let result = prepare::run(
        &profile,
        source.as_mut(),
        key.master_key(),
        opened.store.as_mut(),
        mailer.as_mut(),
        &settings.options,
        &mut |event| match event {
            prepare::Event::Progress {
                prepared,
                failed,
                skipped,
            } => {
                let mut message = String::new();
                if failed > 0 {
                    message = format!("{failed} failed");
                }
                if skipped > 0 {
                    message = format!(
                        "{message}{}{skipped} skipped",
                        if message.is_empty() { "" } else { ", " }
                    );
                }
                progress.update(prepared + failed + skipped, total, &message);
            }
            prepare::Event::Failed(error) => {
                reported += 1;
                if json {
                    json_line(&json!({ "event": "failed", "error": error.to_string() }));
                } else if reported <= 100 {
                    progress.always(&format!("error: {error}"));
                } else if reported == 101 {
                    progress.always("error: … (more failures are counted, not shown)");
                }
            }
        },
    );
    progress.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            if opened.created {
                store::discard_new(opened)?;
            }
            return Err(error.into());
        }
    };
    let location = opened.store.location().to_string();
    if summary.prepared == 0 && opened.created {
        store::discard_new(opened)?;
    }
    let elapsed = started.elapsed();
    let files: Vec<String> = mailer
        .as_ref()
        .map(|m| m.files().iter().map(|f| f.display().to_string()).collect())
        .unwrap_or_default();
    if json {
        json_line(&json!({
            "event": "summary",
            "prepared": summary.prepared,
            "failed": summary.failed,
            "skipped": summary.skipped,
            "elapsed_ms": elapsed.as_millis() as u64,
            "profile": profile.id(),
            "profile_version": profile.version(),
            "store": location,
            "mailer_files": files,
        }));
    } else {
        let skipped = if summary.skipped > 0 {
            format!(", {} skipped (already stored)", summary.skipped)
        } else {
            String::new()
        };
        println!(
            "prepared {} cards, {} failed{skipped}, in {:.1} s ({:.0} cards/s), profile {} version {}, store {}",
            summary.prepared,
            summary.failed,
            elapsed.as_secs_f64(),
            summary.prepared as f64 / elapsed.as_secs_f64().max(1e-9),
            profile.id(),
            profile.version(),
            location
        );
        if let Some(mailer) = &mailer {
            println!(
                "PIN mailer: {} file(s) in {}, encrypted to {} recipient(s)",
                mailer.files().len(),
                args.pins_dir.display(),
                args.recipients.len()
            );
        }
    }
    Ok(Outcome::failed_if(summary.failed > 0))
}

/// The number of records of a CSV or JSON Lines file, for the progress bar.
fn count_records(spec: &str) -> Option<u64> {
    if spec.starts_with("sqlite:") {
        return None;
    }
    let path = spec
        .strip_prefix("csv:")
        .or_else(|| spec.strip_prefix("jsonl:"))
        .unwrap_or(spec);
    let bytes = std::fs::read(path).ok()?;
    let lines = bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count() as u64;
    let csv = path.ends_with(".csv") || spec.starts_with("csv:");
    Some(if csv { lines.saturating_sub(1) } else { lines })
}
