//! `store status`, `store migrate`, `store release`, `store audit`.

use clap::{Args, Subcommand};
use vsc_personalizer::station;
use vsc_personalizer::store::{Access, AuditFilter, Claimant, StoreStatus, Uid};

use super::Outcome;
use super::common::{JsonArg, StoreArgs, uid};
use super::ui::{Verbosity, json_line};

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Counts of cards by state, by profile and by station, the claims in force, and the PIN
    /// mailer files.
    Status(StatusArgs),
    /// Bring the store's schema to this program's version (creating it in a new store).
    Migrate(MigrateArgs),
    /// Release a card's claim by hand, after checking the card: its job becomes failed (to be
    /// retried from the first step), and the release is audited.
    Release(ReleaseArgs),
    /// The audit log: one line per attempt at a station (and per release).
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The card's UID (16 hex digits, spaces allowed).
    #[arg(value_name = "UID", value_parser = uid)]
    uid: Uid,
    #[command(flatten)]
    store: StoreArgs,
    /// Who releases it, for the audit log (default: the host name).
    #[arg(long, value_name = "ID")]
    by: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only attempts started at or after this time (RFC 3339, e.g. 2026-01-31T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    since: Option<String>,
    /// Only this card.
    #[arg(long, value_name = "UID", value_parser = uid)]
    uid: Option<Uid>,
    /// Only this station.
    #[arg(long, value_name = "ID")]
    station: Option<String>,
    /// JSON Lines, one attempt per line.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header row.
    #[arg(long)]
    csv: bool,
}

/// A time in RFC 3339, normalized to UTC (so that SQLite's text comparison and PostgreSQL's
/// time comparison agree).
fn rfc3339(text: &str) -> Result<String, String> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok())
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time (2026-01-31T00:00:00Z)"))
}

pub fn run(command: StoreCommand, verbosity: Verbosity) -> anyhow::Result<Outcome> {
    match command {
        StoreCommand::Status(args) => {
            let status = args
                .store
                .open(Access::Existing, verbosity)?
                .store
                .status()?;
            if args.json.json {
                json_line(&status);
            } else {
                print_status(&status);
            }
        }
        StoreCommand::Migrate(args) => {
            let mut store = args.store.open(Access::CreateOrMigrate, verbosity)?.store;
            let migration = store.migrate()?;
            println!(
                "store {}: schema version {}",
                store.location(),
                migration.to
            );
        }
        StoreCommand::Release(args) => {
            let mut store = args.store.open(Access::Existing, verbosity)?.store;
            let by = Claimant {
                station: args.by.unwrap_or_else(station::host_name),
                host: station::host_name(),
                reader: String::new(),
            };
            match store.release(args.uid, &by)? {
                Some(lease) => println!(
                    "card {}: the claim of {} at {} is released; the card may be personalized again",
                    args.uid, lease.station, lease.reader
                ),
                None => println!("card {} is not claimed: nothing to release", args.uid),
            }
        }
        StoreCommand::Audit(args) => {
            let mut store = args.store.open(Access::Existing, verbosity)?.store;
            let filter = AuditFilter {
                since: args.since,
                uid: args.uid,
                station: args.station,
            };
            let records = store.audit(&filter)?;
            if args.json {
                for record in &records {
                    json_line(record);
                }
            } else {
                let mut writer = csv::Writer::from_writer(std::io::stdout().lock());
                if args.csv {
                    writer.write_record([
                        "started_at",
                        "uid",
                        "station",
                        "host",
                        "reader",
                        "result",
                        "failed_step",
                        "duration_ms",
                        "transcript_digest",
                        "reason",
                    ])?;
                }
                for r in &records {
                    if args.csv {
                        writer.write_record([
                            r.started_at.clone(),
                            r.uid.to_string(),
                            r.station.clone(),
                            r.host.clone(),
                            r.reader.clone(),
                            r.result.to_string(),
                            r.failed_step.map(|s| s.to_string()).unwrap_or_default(),
                            r.duration_ms.to_string(),
                            r.transcript_digest.clone().unwrap_or_default(),
                            r.reason.clone().unwrap_or_default(),
                        ])?;
                    } else {
                        println!(
                            "{} {} {} {}/{} {}{}",
                            r.started_at,
                            r.uid,
                            r.result,
                            r.station,
                            r.reader,
                            r.duration_ms,
                            r.reason
                                .as_ref()
                                .map(|x| format!(" ms: {x}"))
                                .unwrap_or_else(|| " ms".into())
                        );
                    }
                }
                writer.flush()?;
            }
        }
    }
    Ok(Outcome::Done)
}

fn print_status(status: &StoreStatus) {
    println!(
        "store {} ({}, schema version {})",
        status.store, status.backend, status.schema_version
    );
    let cards: Vec<String> = status
        .cards
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    println!("cards: {}", cards.join(", "));
    for p in &status.profiles {
        println!(
            "  profile {} version {}: {} {}",
            p.profile, p.version, p.cards, p.state
        );
    }
    for s in &status.stations {
        println!("  station {}: {} {}", s.station, s.attempts, s.result);
    }
    for claim in &status.claims {
        // The store's clock decides, not this machine's.
        let left = claim.remaining_ms;
        let lease = if left > 0 {
            format!("lease ends in {:.1} s", left as f64 / 1000.0)
        } else {
            "lease ended: any station may take it".into()
        };
        println!(
            "  claimed: {} by {} at {} ({lease})",
            claim.uid, claim.lease.station, claim.lease.reader
        );
    }
    if !status.mailer_files.is_empty() {
        let files: Vec<String> = status
            .mailer_files
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect();
        println!("PIN mailer files: {}", files.join(", "));
    }
}
