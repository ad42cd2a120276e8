//! The `vsc-personalizer` command line: issuer keys, data preparation, export, and
//! personalization of real cards.

use std::ffi::CString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vsc_core::crypto::{SealKey, SealedArea};
use vsc_core::issuer::IssuerKeyFile;
use vsc_core::transcript::{self, Kind, Transcript};
use vsc_personalizer::compile::{self, Mode};
use vsc_personalizer::prepare::{self, PinMailer};
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records;
use vsc_personalizer::replay::{self, Event as ReplayEvent, PcscLink};
use vsc_personalizer::store::{SqliteStore, Store, StoredTranscript, Uid};

/// The VSC control program: prepares virtual smart cards from card holder records and a
/// profile, and personalizes real cards with the same transcripts.
///
/// A typical run: `keys init` once; `prepare` the records into a store; serve a prepared image
/// with `vsc-emulator serve` to test applications; `station` (or `replay`) to personalize the
/// real pre-initialized cards.
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

    /// Card holder records: write synthetic ones for a profile.
    #[command(subcommand)]
    Records(RecordsCommand),

    /// Prepare cards: records and a profile in; per card its transcripts and personalized VSC
    /// image into the store, and its PIN and PUK into the PIN mailer.
    ///
    /// Every card's transcripts run on a blank card through the card OS in-process, every
    /// response checked, before the card is stored. Bad records are reported (line, field,
    /// rule) and skipped; nothing of them is stored. Exit status: 0 when every record became a
    /// card, 2 when some failed, 1 when the run could not proceed.
    ///
    /// Example: vsc-personalizer prepare --profile demo.toml --records holders.csv
    ///            --key-file issuer.key --store vsc.db --pins-to age1…
    Prepare(PrepareArgs),

    /// Write out what the store holds for one card: its image, transcripts, or a scriptor
    /// script.
    Export(ExportArgs),

    /// Make a pre-initialized VSC: what a real card is when it leaves the card maker, the
    /// stand-in for one in tests and demos.
    Blank(BlankArgs),

    /// Replay a transcript (or a pcsc-tools scriptor script) onto the card in a reader.
    ///
    /// The card's ATR and UID are checked against the transcript first; then each command is
    /// sent byte for byte and its response compared. The first mismatch stops the replay with
    /// the step, its comment, the command, and the expected and received responses.
    Replay(ReplayArgs),

    /// The personalization station: personalize every card inserted into the readers, one
    /// task per reader, concurrently.
    ///
    /// Each task waits for a card, reads its UID, claims its job in the store, replays its
    /// personalization transcript, reads the public side back and compares it with the VSC
    /// image, marks the card personalized and appends an audit record; then waits for the
    /// card's removal. Unknown, already personalized or elsewhere claimed cards are refused.
    /// Ctrl-C finishes the cards in progress, then stops.
    Station(StationArgs),
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
    Check(KeyFileArg),
}

#[derive(Debug, Subcommand)]
enum RecordsCommand {
    /// Write N synthetic, valid, distinct card holders for a profile (CSV or JSON Lines by the
    /// output's extension), deterministic for a seed: for tests, demos and benchmarks.
    Sample(RecordsSample),
}

#[derive(Debug, Args)]
struct RecordsSample {
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
}

#[derive(Debug, Args)]
struct KeysInit {
    /// Where to write the key file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct KeyFileArg {
    /// The issuer key file.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: PathBuf,
}

#[derive(Debug, Args)]
struct PrepareArgs {
    /// The profile (TOML): the card's files, data objects, PINs and keys, and where each value
    /// comes from.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// The card holder records: FILE.csv, FILE.jsonl, csv:PATH, jsonl:PATH,
    /// sqlite:PATH?table=NAME or sqlite:PATH?query=SELECT….
    #[arg(long, value_name = "SOURCE")]
    records: String,

    #[command(flatten)]
    key: KeyFileArg,

    /// The VSC store (SQLite), created if missing.
    #[arg(long, value_name = "FILE", default_value = "vsc.db")]
    store: PathBuf,

    /// Encrypt the PIN mailer to this age recipient (age1…); repeat for several.
    #[arg(long = "pins-to", value_name = "RECIPIENT")]
    pins_to: Vec<String>,

    /// Where the PIN mailer files go (one per stored batch).
    #[arg(long, value_name = "DIR", default_value = "pin-mailer")]
    pins_dir: PathBuf,

    /// Prepare without a PIN mailer: generated PINs and PUKs are then lost.
    #[arg(long, conflicts_with = "pins_to")]
    no_pin_mailer: bool,

    /// Worker threads (default: every core).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,

    /// Stop at the first record that fails.
    #[arg(long)]
    strict: bool,

    /// Compile without the personalization channel, for cards that lack it. PINs, keys and
    /// private data then travel to the card in clear.
    #[arg(long)]
    plain: bool,

    /// Cards per store transaction and PIN mailer file.
    #[arg(long, value_name = "N", default_value_t = 500)]
    batch: usize,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The VSC store.
    #[arg(long, value_name = "FILE", default_value = "vsc.db")]
    store: PathBuf,

    /// The card's UID (16 hex digits).
    #[arg(long, value_name = "UID")]
    uid: String,

    /// Write the personalized VSC image here.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,

    /// Write the personalization transcript (.vsct) here.
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,

    /// Write the pre-initialization transcript here. It loads the card's channel keys: it is
    /// written encrypted to --to, or in clear (mode 0600) only with --clear.
    #[arg(long, value_name = "FILE")]
    preinit: Option<PathBuf>,

    /// Write the personalization transcript as a pcsc-tools scriptor script here.
    #[arg(long, value_name = "FILE")]
    scriptor: Option<PathBuf>,

    /// The issuer key file, to open sealed transcripts.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: Option<PathBuf>,

    /// Encrypt secret-bearing exports to this age recipient.
    #[arg(long, value_name = "RECIPIENT")]
    to: Option<String>,

    /// Write secret-bearing exports in clear (mode 0600): for tests only.
    #[arg(long, conflicts_with = "to")]
    clear: bool,
}

#[derive(Debug, Args)]
struct BlankArgs {
    /// The profile.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// The card's UID (16 hex digits).
    #[arg(long, value_name = "UID")]
    uid: String,

    #[command(flatten)]
    key: KeyFileArg,

    /// Where to write the VSC image.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// A card without the personalization channel.
    #[arg(long)]
    plain: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The transcript (.vsct) or scriptor script.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// The reader, by name or by a part of its name; default: the only reader with a card.
    #[arg(long, value_name = "NAME")]
    reader: Option<String>,

    /// Print what would be sent, send nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct StationArgs {
    /// The VSC store.
    #[arg(long, value_name = "FILE", default_value = "vsc.db")]
    store: PathBuf,

    /// A reader to serve (repeat for several); default: every reader.
    #[arg(long = "reader", value_name = "NAME")]
    readers: Vec<String>,

    /// Personalize the cards in the readers now, then exit.
    #[arg(long)]
    once: bool,

    /// The station's name in the store's claims and audit log (default: the host name).
    #[arg(long, value_name = "ID")]
    station_id: Option<String>,

    /// The issuer key file: only needed for cards prepared with --plain, whose transcripts
    /// rest sealed.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(KeysCommand::Init(args)) => keys_init(&args),
        Command::Keys(KeysCommand::Check(args)) => keys_check(&args),
        Command::Records(RecordsCommand::Sample(args)) => records_sample(&args),
        Command::Prepare(args) => return prepare(&args).unwrap_or_else(fail),
        Command::Export(args) => export(&args),
        Command::Blank(args) => blank(&args),
        Command::Replay(args) => replay_file(&args),
        Command::Station(args) => return station(&args).unwrap_or_else(fail),
    };
    result.map_or_else(fail, |()| ExitCode::SUCCESS)
}

fn fail(error: anyhow::Error) -> ExitCode {
    eprintln!("vsc-personalizer: {error:#}");
    ExitCode::FAILURE
}

fn keys_init(args: &KeysInit) -> anyhow::Result<()> {
    let key = IssuerKeyFile::create_new(&args.out).context("cannot create the issuer key file")?;
    println!("issuer key written to {} (mode 0600)", args.out.display());
    println!("key check value: {}", key.check_value());
    Ok(())
}

fn keys_check(args: &KeyFileArg) -> anyhow::Result<()> {
    let key = IssuerKeyFile::load(&args.key_file)?;
    println!(
        "{}: issuer key, check value {}",
        args.key_file.display(),
        key.check_value()
    );
    Ok(())
}

fn records_sample(args: &RecordsSample) -> anyhow::Result<()> {
    let profile = Profile::load(&args.profile)?;
    records::sample::write(&profile, args.count, &args.out, args.seed)?;
    println!(
        "{} holders for profile {} written to {}",
        args.count,
        profile.id(),
        args.out.display()
    );
    Ok(())
}

fn prepare(args: &PrepareArgs) -> anyhow::Result<ExitCode> {
    if args.pins_to.is_empty() && !args.no_pin_mailer {
        bail!(
            "give --pins-to age1… (the PIN mailer's age recipient; make one with age-keygen), \
             or --no-pin-mailer to prepare without one"
        );
    }
    let profile = Profile::load(&args.profile)?;
    let key = IssuerKeyFile::load(&args.key.key_file)?;
    let mut source = records::open(&args.records)?;
    let mut store =
        SqliteStore::open(&args.store).with_context(|| format!("{}", args.store.display()))?;
    let mut mailer = if args.no_pin_mailer {
        None
    } else {
        Some(PinMailer::new(&args.pins_dir, &args.pins_to)?)
    };
    let mode = if args.plain {
        Mode::Plain
    } else {
        Mode::Channel
    };
    if args.plain {
        eprintln!(
            "warning: --plain: PINs, keys and private data will travel to the cards in clear"
        );
    }
    let options = prepare::Options {
        mode,
        jobs: args.jobs.unwrap_or_else(prepare::default_jobs),
        strict: args.strict,
        batch: args.batch.max(1),
    };
    let bar = match count_records(&args.records) {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} cards {per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut reported = 0usize;
    let summary = prepare::run(
        &profile,
        source.as_mut(),
        key.master_key(),
        &mut store,
        mailer.as_mut(),
        &options,
        &mut |event| match event {
            prepare::Event::Progress { prepared, failed } => {
                bar.set_position(prepared + failed);
                if failed > 0 {
                    bar.set_message(format!("({failed} failed)"));
                }
            }
            prepare::Event::Failed(error) => {
                reported += 1;
                // Above the bar on a terminal; plain lines on standard error otherwise.
                if reported <= 100 {
                    bar.suspend(|| eprintln!("error: {error}"));
                } else if reported == 101 {
                    bar.suspend(|| eprintln!("error: … (more failures are counted, not shown)"));
                }
            }
        },
    )?;
    bar.finish_and_clear();
    println!(
        "prepared {} cards, {} failed, in {:.1} s ({:.0} cards/s), profile {} version {}, store {}",
        summary.prepared,
        summary.failed,
        summary.elapsed.as_secs_f64(),
        summary.rate(),
        profile.id(),
        profile.version(),
        args.store.display()
    );
    if let Some(mailer) = &mailer {
        println!(
            "PIN mailer: {} file(s) in {}, encrypted to {} recipient(s)",
            mailer.files().len(),
            args.pins_dir.display(),
            args.pins_to.len()
        );
    }
    Ok(if summary.failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The number of records of a CSV or JSON Lines file, for the progress bar.
fn count_records(spec: &str) -> Option<u64> {
    let path = spec
        .strip_prefix("csv:")
        .or_else(|| spec.strip_prefix("jsonl:"))
        .unwrap_or(spec);
    if spec.starts_with("sqlite:") {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let lines = bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count() as u64;
    let csv = path.ends_with(".csv") || spec.starts_with("csv:");
    Some(if csv { lines.saturating_sub(1) } else { lines })
}

fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let uid = Uid::parse(&args.uid)?;
    let mut store =
        SqliteStore::open(&args.store).with_context(|| format!("{}", args.store.display()))?;
    let stored = store
        .card(uid)?
        .with_context(|| format!("card {uid} is not in {}", args.store.display()))?;
    let card = &stored.card;
    if args.image.is_none()
        && args.transcript.is_none()
        && args.preinit.is_none()
        && args.scriptor.is_none()
    {
        bail!("say what to export: --image, --transcript, --preinit or --scriptor");
    }
    let key = args
        .key_file
        .as_deref()
        .map(IssuerKeyFile::load)
        .transpose()?;
    let open = |kind: Kind, transcript: &StoredTranscript| -> anyhow::Result<(String, bool)> {
        match transcript {
            StoredTranscript::Clear(text) => Ok((text.clone(), false)),
            StoredTranscript::Sealed(sealed) => {
                let key = key
                    .as_ref()
                    .context("this transcript is sealed in the store: give --key-file")?;
                let text = SealKey::derive(key.master_key(), SealedArea::Transcript, &uid.0)
                    .open(&prepare::transcript_aad(kind, &uid.0), sealed)
                    .context("the sealed transcript does not open with this issuer key")?;
                Ok((String::from_utf8_lossy(&text).into_owned(), true))
            }
        }
    };
    if let Some(path) = &args.image {
        vsc_core::image::write_atomic(path, &card.image)
            .with_context(|| format!("{}", path.display()))?;
        println!("image of {uid} written to {}", path.display());
    }
    if let Some(path) = &args.transcript {
        let (text, secret) = open(Kind::Personalization, &card.perso)?;
        write_export(path, &text, secret, args)?;
        println!(
            "personalization transcript of {uid} written to {} (sha256 {})",
            path.display(),
            card.perso_digest
        );
    }
    if let Some(path) = &args.preinit {
        let (text, _) = open(Kind::PreInitialization, &card.preinit)?;
        write_export(path, &text, true, args)?;
        println!(
            "pre-initialization transcript of {uid} written to {} (sha256 {})",
            path.display(),
            card.preinit_digest
        );
    }
    if let Some(path) = &args.scriptor {
        let (text, secret) = open(Kind::Personalization, &card.perso)?;
        let script = transcript::to_scriptor(&Transcript::parse(&text)?);
        write_export(path, &script, secret, args)?;
        println!("scriptor script of {uid} written to {}", path.display());
    }
    Ok(())
}

/// Writes an export; secret-bearing ones encrypted to --to, or in clear only with --clear.
fn write_export(path: &Path, text: &str, secret: bool, args: &ExportArgs) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if !secret {
        return vsc_core::image::write_atomic(path, text.as_bytes())
            .with_context(|| format!("{}", path.display()));
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    match (&args.to, args.clear) {
        (Some(recipient), _) => {
            let recipient: age::x25519::Recipient = recipient
                .parse()
                .map_err(|_| anyhow::anyhow!("{recipient:?} is not an age recipient (age1…)"))?;
            let encryptor = age::Encryptor::with_recipients(std::iter::once(
                &recipient as &dyn age::Recipient,
            ))?;
            let mut writer = encryptor.wrap_output(file)?;
            writer.write_all(text.as_bytes())?;
            writer.finish()?.sync_all()?;
        }
        (None, true) => {
            eprintln!("warning: {} holds card secrets in clear", path.display());
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        (None, false) => {
            drop(file);
            let _ = std::fs::remove_file(path);
            bail!(
                "this export carries card secrets: give --to age1… to encrypt it (or --clear, for tests)"
            );
        }
    }
    Ok(())
}

fn blank(args: &BlankArgs) -> anyhow::Result<()> {
    let profile = Profile::load(&args.profile)?;
    let key = IssuerKeyFile::load(&args.key.key_file)?;
    let uid = Uid::parse(&args.uid)?;
    let mode = if args.plain {
        Mode::Plain
    } else {
        Mode::Channel
    };
    let preinit = compile::compile_preinit(&profile, uid.0, key.master_key(), mode)?;
    let mut link = replay::CardOsLink::new(vsc_core::card::Card::blank());
    replay::check_card(&mut link, &preinit.header)?;
    replay::replay(&mut link, &preinit, |_| {})?;
    vsc_core::image::save(&args.out, link.card().state(), key.master_key())?;
    println!(
        "pre-initialized card {uid} ({}) written to {}",
        link.card().state().life_cycle.name(),
        args.out.display()
    );
    Ok(())
}

fn replay_file(args: &ReplayArgs) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(&args.file).with_context(|| format!("{}", args.file.display()))?;
    let transcript = if text.starts_with("VSC-TRANSCRIPT") {
        Transcript::parse(&text).with_context(|| format!("{}", args.file.display()))?
    } else {
        let steps =
            transcript::from_scriptor(&text).with_context(|| format!("{}", args.file.display()))?;
        return replay_script(args, steps);
    };
    if args.dry_run {
        print_dry_run(&transcript.steps);
        return Ok(());
    }
    let context = pcsc::Context::establish(pcsc::Scope::User).context("cannot reach pcscd")?;
    let reader = choose_reader(&context, args.reader.as_deref())?;
    let mut card = replay::connect_exclusive(&context, &reader)?;
    let mut link = PcscLink::begin(&mut card)?;
    replay::check_card(&mut link, &transcript.header)?;
    let bar = ProgressBar::new(transcript.steps.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    replay::replay(&mut link, &transcript, |event| {
        if let ReplayEvent::Step { step, comment, .. } = event {
            bar.set_position(step as u64);
            bar.set_message(comment.unwrap_or("").to_string());
        }
    })?;
    link.end()?;
    bar.finish_and_clear();
    println!(
        "replayed {} steps onto card {} in {}",
        transcript.steps.len(),
        hex::encode_upper(transcript.header.uid.0),
        reader.to_string_lossy()
    );
    Ok(())
}

/// Replays a scriptor script: nothing checked, every response printed.
fn replay_script(args: &ReplayArgs, steps: Vec<transcript::Step>) -> anyhow::Result<()> {
    if args.dry_run {
        print_dry_run(&steps);
        return Ok(());
    }
    let context = pcsc::Context::establish(pcsc::Scope::User).context("cannot reach pcscd")?;
    let reader = choose_reader(&context, args.reader.as_deref())?;
    let mut card = replay::connect_exclusive(&context, &reader)?;
    let mut link = PcscLink::begin(&mut card)?;
    let header = transcript::Header {
        kind: Kind::Session,
        uid: transcript::Uid([0; 8]),
        atr: transcript::Atr::new(replay::CardLink::atr(&mut link)?)?,
        profile: None,
        channel: transcript::Channel::Plain,
        extensions: Vec::new(),
    };
    let script = Transcript { header, steps };
    replay::replay(&mut link, &script, |event| match event {
        ReplayEvent::Step {
            comment: Some(comment),
            ..
        } => println!("# {comment}"),
        ReplayEvent::Unchecked {
            command, response, ..
        } => {
            println!(
                "> {}\n< {}",
                hex::encode_upper(command),
                hex::encode_upper(response)
            );
        }
        ReplayEvent::Step { .. } => {}
    })?;
    link.end()?;
    Ok(())
}

fn print_dry_run(steps: &[transcript::Step]) {
    for (i, step) in steps.iter().enumerate() {
        match step {
            transcript::Step::Command {
                comment,
                command,
                expect,
            } => {
                let comment = comment.as_ref().map(|c| c.as_str()).unwrap_or("");
                println!(
                    "{:>4}  {comment}\n      > {}\n      < {expect}",
                    i + 1,
                    hex::encode_upper(command.as_bytes())
                );
            }
            transcript::Step::Reset { kind, .. } => {
                println!("{:>4}  reset {}", i + 1, kind.label())
            }
        }
    }
}

/// The reader named (exactly, or by a unique part of its name), or the only one with a card.
fn choose_reader(context: &pcsc::Context, wanted: Option<&str>) -> anyhow::Result<CString> {
    let readers = context
        .list_readers_owned()
        .context("cannot list the readers")?;
    if readers.is_empty() {
        bail!("no reader found (is pcscd running?)");
    }
    let names: Vec<String> = readers
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    let chosen: Vec<usize> = match wanted {
        Some(wanted) => match names.iter().position(|n| n == wanted) {
            Some(exact) => vec![exact],
            None => (0..names.len())
                .filter(|i| names[*i].contains(wanted))
                .collect(),
        },
        None => (0..readers.len())
            .filter(|i| {
                let mut state = [pcsc::ReaderState::new(
                    readers[*i].clone(),
                    pcsc::State::UNAWARE,
                )];
                context
                    .get_status_change(Duration::ZERO, &mut state)
                    .is_ok()
                    && state[0].event_state().contains(pcsc::State::PRESENT)
            })
            .collect(),
    };
    match chosen.as_slice() {
        [one] => Ok(readers[*one].clone()),
        [] => bail!(
            "no matching reader with a card; readers: {}",
            names.join(", ")
        ),
        _ => bail!(
            "several readers match; name one with --reader: {}",
            chosen
                .iter()
                .map(|i| names[*i].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn station(args: &StationArgs) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use vsc_personalizer::station::{self, Event};

    let all = station::all_readers().context("cannot list the readers (is pcscd running?)")?;
    let readers: Vec<CString> = if args.readers.is_empty() {
        all
    } else {
        let mut chosen = Vec::new();
        for wanted in &args.readers {
            let matching: Vec<&CString> = all
                .iter()
                .filter(|r| r.to_string_lossy() == *wanted)
                .collect();
            match matching.as_slice() {
                [one] => chosen.push((*one).clone()),
                _ => bail!(
                    "no reader named {wanted:?}; readers: {}",
                    all.iter()
                        .map(|r| r.to_string_lossy())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        chosen
    };
    if readers.is_empty() {
        bail!("no reader found");
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))?;
    }
    let station_id = args.station_id.clone().unwrap_or_else(host_name);
    let master = args
        .key_file
        .as_deref()
        .map(IssuerKeyFile::load)
        .transpose()?
        .map(|k| k.master_key().clone());
    let config = station::Config {
        store: args.store.clone(),
        station: station_id.clone(),
        readers,
        once: args.once,
        master,
    };
    println!(
        "station {station_id}: {} reader(s): {}",
        config.readers.len(),
        config
            .readers
            .iter()
            .map(|r| r.to_string_lossy())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let summary = station::run(config, &shutdown, &|event| match event {
        Event::Inserted {
            reader,
            uid: Some(uid),
        } => println!("{reader}: card {uid}"),
        Event::Inserted { reader, uid: None } => println!("{reader}: a card"),
        Event::Step { .. } => {}
        Event::Done {
            reader,
            record,
            problem,
        } => {
            let what = match problem {
                Some(problem) => format!("{}: {problem}", record.result),
                None => format!("{} in {} ms", record.result, record.duration_ms),
            };
            println!("{reader}: card {}: {what}", record.uid);
        }
        Event::RemoveCard { reader } => println!("{reader}: remove the card"),
    })?;
    println!(
        "station {station_id}: {} personalized, {} failed, {} refused",
        summary.personalized, summary.failed, summary.refused
    );
    Ok(if summary.failed > 0 || summary.refused > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The machine's host name, for the station's default name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "station".to_string())
}
