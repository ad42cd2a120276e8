//! The `vsc-emulator` command line: `serve` VSC images in vpcd's virtual readers, `inspect` one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use vsc_core::image::served::Check;
use vsc_core::issuer::IssuerKeyFile;
use vsc_emulator::options::{ServeOptions, init_logging, shutdown_signal};
use vsc_emulator::vsc::{Saving, VscCard};
use vsc_emulator::{inspect, serve_slots};

/// Virtual smart cards for PC/SC applications.
///
/// Serves VSC images as live cards in the virtual readers of vsmartcard's vpcd driver, so that
/// unmodified PC/SC applications (OpenSC, pcsc-tools, pyscard, your own) talk to them through
/// pcscd. vpcd's readers appear as "Virtual PCD 00 00", "Virtual PCD 00 01", …
#[derive(Debug, Parser)]
#[command(name = "vsc-emulator", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve VSC images as cards, one virtual reader slot each, until Ctrl-C.
    ///
    /// Every change to a card (a PIN try, a file write, a life cycle step) is saved into its
    /// image atomically before the card answers, so a crash never loses one. When vpcd is not
    /// there yet, or goes away, the emulator reconnects with backoff and keeps the card's state.
    ///
    /// Example: vsc-emulator serve card.vsc --key-file issuer.key
    ///          opensc-tool --reader 0 --atr
    Serve(ServeArgs),

    /// Describe a VSC image: UID, life cycle, the file tree with sizes and access rules, public
    /// contents, PIN and key states (never their values).
    ///
    /// With --key-file the image is verified and its sealed areas opened; without it only what
    /// is in clear is shown, unverified.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The VSC images to serve; the first goes to slot --slot, the next to the slot after it.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,

    /// The issuer key file the images were sealed under.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: PathBuf,

    /// The first slot: 0 is vpcd's port 35963 ("Virtual PCD 00 00"), 1 the next port.
    #[arg(long, value_name = "N", default_value_t = 0)]
    slot: usize,

    /// Serve without saving: changes last until the emulator stops.
    #[arg(long, conflicts_with = "fresh")]
    read_only: bool,

    /// Serve without saving, and give the card as its image holds it at every power-on: for a
    /// rig that personalizes the same blank card again and again.
    #[arg(long)]
    fresh: bool,

    /// Serve an image even when it is older than one already served from the same path (its
    /// record, IMAGE.served, says so), or when that record does not verify; the record then
    /// starts again from this image. Without it such an image is refused: putting back an
    /// older copy of a card would give back its PIN tries.
    #[arg(long)]
    allow_rollback: bool,

    /// Record each session as a transcript (.vsct), secrets masked; with several images, FILE
    /// gets the slot number before its extension (session-1.vsct).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,

    #[command(flatten)]
    serve: ServeOptions,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The VSC image.
    #[arg(value_name = "IMAGE")]
    image: PathBuf,

    /// The issuer key file, to verify the image and open its sealed areas.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Inspect(args) => inspect(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vsc-emulator: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.serve.trace);
    let key = IssuerKeyFile::load(&args.key_file)?;
    let mut seen = HashSet::new();
    for image in &args.images {
        let canonical = image
            .canonicalize()
            .with_context(|| format!("{}", image.display()))?;
        if !seen.insert(canonical) {
            bail!(
                "{} is given twice: one image can be in one slot only",
                image.display()
            );
        }
    }
    let endpoints = args.serve.endpoints(args.slot + args.images.len())?;
    let mut slots = Vec::new();
    for (i, (image, endpoint)) in args.images.iter().zip(&endpoints[args.slot..]).enumerate() {
        let saving = match (args.read_only, args.fresh) {
            (true, _) => Saving::ReadOnly,
            (_, true) => Saving::Fresh,
            _ => Saving::Image,
        };
        let (mut card, check) =
            VscCard::serve(image, key.master_key().clone(), saving, args.allow_rollback)
                .with_context(|| format!("{}", image.display()))?;
        match check {
            Check::Current => {}
            Check::FirstServe => tracing::warn!(
                "{}: no record of generations served yet; starting one beside the image",
                image.display()
            ),
            Check::RolledBack => tracing::warn!(
                "{}: serving an older image (or one whose record did not verify) as \
                 --allow-rollback asks; the record starts again from it",
                image.display()
            ),
        }
        if let Some(record) = &args.record {
            let path = if args.images.len() == 1 {
                record.clone()
            } else {
                numbered(record, args.slot + i)
            };
            card.record_into(&path)
                .with_context(|| format!("cannot record into {}", path.display()))?;
            tracing::info!("slot {}: recording into {}", args.slot + i, path.display());
        }
        tracing::info!(
            "slot {}: {} ({:?}){}",
            args.slot + i,
            image.display(),
            endpoint,
            match saving {
                Saving::Image => "",
                Saving::ReadOnly => ", read-only",
                Saving::Fresh => ", fresh at every power-on",
            }
        );
        slots.push((*endpoint, card));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cards = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        anyhow::Ok(serve_slots(slots, shutdown).await?)
    })?;
    for mut card in cards {
        if let Some(steps) = card.finish_recording()? {
            tracing::info!("recorded {steps} steps");
        }
    }
    Ok(())
}

/// `session.vsct` for slot 1 becomes `session-1.vsct`.
fn numbered(path: &Path, slot: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(extension) => format!("{stem}-{slot}.{}", extension.to_string_lossy()),
        None => format!("{stem}-{slot}"),
    };
    path.with_file_name(name)
}

fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.image).with_context(|| format!("{}", args.image.display()))?;
    let key = args
        .key_file
        .as_deref()
        .map(IssuerKeyFile::load)
        .transpose()?;
    let report = inspect::describe(&bytes, key.as_ref().map(IssuerKeyFile::master_key))
        .with_context(|| format!("{}", args.image.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", inspect::render(&report));
    }
    Ok(())
}
