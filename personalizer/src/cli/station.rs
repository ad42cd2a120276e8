//! `station`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use vsc_personalizer::readers;
use vsc_personalizer::station::{self, Attempt, Event};
use vsc_personalizer::store::Access;

use super::Outcome;
use super::common::{JsonArg, StoreArgs, TrustArgs, load_key, seconds};
use super::ui::{Verbosity, json_line};

/// The personalization station: personalize every card inserted into the readers, one task
/// per reader, concurrently.
///
/// Each task waits for a card, reads its UID, claims its job in the store under a lease,
/// checks the transcript's signature, replays it, reads the public side back and compares it
/// with the VSC image, marks the card personalized and appends an audit record; then waits for
/// the card's removal. Unknown, already personalized or elsewhere claimed cards are refused. A
/// card found operational whose read-back equals its image (an earlier attempt finished it) is
/// confirmed. Ctrl-C finishes the cards in progress, then stops.
///
/// The station needs no issuer key: give it the issuer's verification key with --trusted-key
/// (from `keys public-key`). Only cards prepared with --plain, whose transcripts rest sealed,
/// need --key-file.
#[derive(Debug, Args)]
#[command(long_about)]
pub struct StationArgs {
    #[command(flatten)]
    store: StoreArgs,

    /// A reader to serve: its exact name, its index, or a part of its name only it has; repeat
    /// for several. Default: every reader.
    #[arg(long = "reader", value_name = "READER")]
    readers: Vec<String>,

    /// Personalize the cards in the readers now, then exit.
    #[arg(long)]
    once: bool,

    /// The station's id in the store's claims and audit log (default: the host name). A
    /// station recognizes its own earlier claims by it.
    #[arg(long, value_name = "ID")]
    station_id: Option<String>,

    /// How long a claim lasts unless renewed, in seconds; a card left by a station that died
    /// goes to any station after it.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = seconds)]
    lease: f64,

    /// The issuer key file: only for cards prepared with --plain, whose transcripts rest
    /// sealed.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: Option<PathBuf>,

    #[command(flatten)]
    trust: TrustArgs,

    #[command(flatten)]
    json: JsonArg,
}

pub fn run(args: StationArgs, verbosity: Verbosity) -> anyhow::Result<Outcome> {
    let key = args.key_file.as_deref().map(load_key).transpose()?;
    let master = key.as_ref().map(|k| k.master_key().clone());
    let trust = args.trust.trust(master.as_ref())?;
    let json = args.json.json;
    // The store is checked before any reader: a typo in --store is one clear error.
    drop(args.store.open(Access::Existing, verbosity)?);
    let context = pcsc::Context::establish(pcsc::Scope::User).context("cannot reach pcscd")?;
    let readers = readers::select(&context, &args.readers)?;
    drop(context);
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))?;
    }
    let station_id = args.station_id.clone().unwrap_or_else(station::host_name);
    let mut config = station::Config::new(args.store.store.clone(), &station_id, readers, trust);
    config.store_options = args.store.options(Access::Existing, verbosity);
    config.once = args.once;
    config.master = master;
    config.lease = Duration::from_secs_f64(args.lease);
    let names: Vec<String> = config
        .readers
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    if json {
        json_line(&json!({"event": "station", "station": station_id, "readers": names}));
    } else {
        println!(
            "station {station_id}: {} reader(s): {}",
            names.len(),
            names.join(", ")
        );
    }
    let summary = station::run(config, &shutdown, &|event| match event {
        Event::Inserted { reader, uid } => {
            if json {
                json_line(&json!({"event": "card", "reader": reader, "uid": uid}));
            } else {
                println!("{reader}: card {uid}");
            }
        }
        Event::Step { .. } => {}
        Event::Done {
            reader,
            attempt,
            elapsed,
            ..
        } => {
            if json {
                json_line(&json!({
                    "event": "done",
                    "reader": reader,
                    "uid": attempt.uid(),
                    "result": attempt.outcome(),
                    "step": attempt.step(),
                    "reason": attempt.problem(),
                    "duration_ms": elapsed.as_millis() as u64,
                }));
            } else {
                let uid = attempt
                    .uid()
                    .map(|u| format!("card {u}"))
                    .unwrap_or_else(|| "a card".into());
                match attempt {
                    Attempt::Personalized { .. } | Attempt::Confirmed { .. } => {
                        println!("{reader}: {uid}: {attempt} in {} ms", elapsed.as_millis())
                    }
                    _ => println!("{reader}: {uid}: {attempt}"),
                }
            }
        }
        Event::RemoveCard { reader } => {
            if !json {
                println!("{reader}: remove the card");
            }
        }
    })?;
    if json {
        json_line(&json!({
            "event": "summary",
            "station": station_id,
            "personalized": summary.personalized,
            "confirmed": summary.confirmed,
            "failed": summary.failed,
            "refused": summary.refused,
        }));
    } else {
        println!(
            "station {station_id}: {} personalized, {} failed, {} refused",
            summary.personalized, summary.failed, summary.refused
        );
    }
    Ok(Outcome::failed_if(!summary.all_done()))
}
