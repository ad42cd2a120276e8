//! The `vsc-emulator` command line: `serve` VSC images in vpcd's virtual readers, `inspect` one,
//! write a pcscd configuration for more readers, and shell completions and man pages.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};
use vsc_core::image::served::Check;
use vsc_core::issuer::IssuerKeyFile;
use vsc_emulator::options::{ServeOptions, Verbosity, init_logging, shutdown_signal};
use vsc_emulator::readers_conf::{self, VPCD_DRIVER};
use vsc_emulator::vsc::{Saving, VscCard};
use vsc_emulator::{inspect, serve_slots_from};

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

    #[command(flatten)]
    verbosity: Verbosity,
}

/// The long help of `serve`: what to check when no application sees the card.
const TROUBLESHOOTING: &str = "\
Troubleshooting:

\"no vpcd reader on 127.0.0.1:35963\": pcscd is not running, or runs without the vpcd driver. \
Install vsmartcard-vpcd (it adds /etc/reader.conf.d/vpcd) and start pcscd (`pcscd --foreground`); \
`opensc-tool --list-readers` must show \"Virtual PCD 00 00\".

\"accepted the connection but has sent nothing\": another card side (a second emulator, or vicc) \
serves that reader; vpcd serves one card side per slot and keeps the next one waiting. Stop the \
other one, or use another --slot.

\"has not powered the card on\": check that pcscd lists the reader, and that the port of its \
reader.conf entry is the slot's (35963 + slot); `vsc-emulator readers-conf` writes entries for \
more slots.

\"is in use by process N\": another emulator serves that image; an image is served by one \
emulator at a time.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve VSC images as cards, one virtual reader slot each, until Ctrl-C.
    ///
    /// Every change to a card (a PIN try, a file write, a life cycle step) is saved into its
    /// image atomically before the card answers, so a crash never loses one. When vpcd is not
    /// there yet, or goes away, the emulator reconnects with backoff and keeps the card's
    /// persistent state; the session (verified PINs, secure messaging, selected files) ends with
    /// each connection. Each image is locked while it is served.
    ///
    /// Example: vsc-emulator serve card.vsc --key-file issuer.key
    ///          opensc-tool --reader 0 --atr
    #[command(after_long_help = TROUBLESHOOTING)]
    Serve(ServeArgs),

    /// Describe a VSC image: UID, life cycle, the file tree with sizes and access rules, public
    /// contents, PIN and key states (never their values).
    ///
    /// With --key-file the image is verified and its sealed areas opened; without it only what
    /// is in clear is shown, unverified.
    Inspect(InspectArgs),

    /// Write a pcscd configuration folder for N vpcd slots.
    ///
    /// vpcd gives two slots per reader entry, so N slots take N/2 entries (rounded up). Slot n
    /// is on port 35963 + n (from --port), as with Debian's own entry, so `serve --slot n` finds
    /// it. The first entry's readers are "Virtual PCD 00 00" and "Virtual PCD 00 01", entry k's
    /// "Virtual PCD k 00 00" and "Virtual PCD k 00 01". Each entry gets its own copy of the vpcd
    /// driver (the driver keeps its state in static variables, and entries sharing one copy
    /// hang pcscd), in a folder outside DIR, because pcscd reads every file in DIR.
    ///
    /// Example: vsc-emulator readers-conf --slots 4 --out readers
    ///          pcscd --foreground --config readers
    ///          vsc-emulator serve a.vsc b.vsc c.vsc d.vsc --key-file issuer.key
    ReadersConf(ReadersConfArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard
    /// output.
    ///
    /// Example: vsc-emulator completions bash > ~/.local/share/bash-completion/completions/vsc-emulator
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Write the man pages of vsc-emulator and its subcommands into a folder.
    #[command(hide = true)]
    Manpages {
        /// The folder (made if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
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

#[derive(Debug, Args)]
struct ReadersConfArgs {
    /// How many slots (two per reader entry).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    slots: u16,

    /// The configuration folder for `pcscd --config DIR` (made if missing; it must hold no
    /// other files, and earlier entries written here are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Where the driver copies go [default: DIR-drivers, beside DIR].
    #[arg(long, value_name = "DIR")]
    drivers: Option<PathBuf>,

    /// The port of slot 0; slot n is on PORT + n.
    #[arg(long, value_name = "PORT", default_value_t = readers_conf::FIRST_PORT)]
    port: u16,

    /// Reversed readers: vpcd connects to the card side at 127.0.0.1 (serve with
    /// --listen 127.0.0.1:PORT) instead of listening for it.
    #[arg(long)]
    reversed: bool,

    /// The vpcd driver to copy.
    #[arg(long, value_name = "FILE", default_value = VPCD_DRIVER)]
    driver: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args, cli.verbosity),
        Command::Inspect(args) => inspect(&args),
        Command::ReadersConf(args) => readers_conf(&args, cli.verbosity),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "vsc-emulator", &mut script);
            std::io::stdout()
                .write_all(&script)
                .context("cannot write the completion script")
        }
        Command::Manpages { out } => manpages(&out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vsc-emulator: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs, verbosity: Verbosity) -> anyhow::Result<()> {
    init_logging(verbosity, args.serve.trace);
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
        let slot = args.slot + i;
        let saving = match (args.read_only, args.fresh) {
            (true, _) => Saving::ReadOnly,
            (_, true) => Saving::Fresh,
            _ => Saving::Image,
        };
        let (mut card, check) =
            VscCard::serve(image, key.master_key().clone(), saving, args.allow_rollback)?;
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
                numbered(record, slot)
            };
            card.record_into(&path)
                .with_context(|| format!("cannot record into {}", path.display()))?;
            tracing::info!("slot {slot}: recording into {}", path.display());
        }
        tracing::info!(
            "slot {slot}: {} ({endpoint}){}",
            image.display(),
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
        anyhow::Ok(serve_slots_from(args.slot, slots, shutdown).await?)
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

fn readers_conf(args: &ReadersConfArgs, verbosity: Verbosity) -> anyhow::Result<()> {
    let slots = usize::from(args.slots);
    let entries = if args.reversed {
        readers_conf::reversed_entries_for_slots(slots, [127, 0, 0, 1].into(), args.port)?
    } else {
        readers_conf::entries_for_slots(slots, args.port)?
    };
    let drivers = args
        .drivers
        .clone()
        .unwrap_or_else(|| readers_conf::default_drivers_dir(&args.out));
    readers_conf::write_config(&entries, &args.out, &drivers, &args.driver)?;
    if verbosity.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for (slot, name) in readers_conf::reader_names(&entries)
        .iter()
        .enumerate()
        .take(slots)
    {
        let port = usize::from(args.port) + slot;
        writeln!(out, "slot {slot}: port {port}, reader \"{name}\"")?;
    }
    let how = if args.reversed {
        format!("vsc-emulator serve IMAGE… --listen 127.0.0.1:{}", args.port)
    } else if args.port == readers_conf::FIRST_PORT {
        "vsc-emulator serve IMAGE…".to_owned()
    } else {
        format!(
            "vsc-emulator serve IMAGE… --connect 127.0.0.1:{}",
            args.port
        )
    };
    writeln!(
        out,
        "start pcscd with: pcscd --foreground --config {}\nserve cards with: {how}",
        args.out.display()
    )?;
    Ok(())
}

/// Writes `vsc-emulator.1` and `vsc-emulator-SUBCOMMAND.1` for every visible subcommand.
fn manpages(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut command = Cli::command();
    command.build();
    let write = |name: &str, page: clap::Command| -> anyhow::Result<()> {
        let path = out.join(format!("{name}.1"));
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    for sub in command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    {
        // Built, a subcommand's display name is `vsc-emulator-NAME`: the page's title and name.
        write(&format!("vsc-emulator-{}", sub.get_name()), sub.clone())?;
    }
    write("vsc-emulator", command)
}
