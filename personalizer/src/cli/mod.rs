//! Arguments to validated settings, one module per command (the layout of ripgrep's
//! `flags/`): each module holds its command's clap arguments, turns them into settings
//! (refusing what cannot work, as a usage error), and runs the library with them. The shared
//! parts: [`common`] (store, keys, trust, output flags), [`ui`] (progress, plain lines, JSON
//! Lines), [`exit`] (exit codes, and errors printed with each cause once).

mod blank;
mod common;
mod completions;
mod exit;
mod export;
mod keys;
mod prepare;
mod readers;
mod records;
mod replay;
mod station;
mod store;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::Outcome;

/// Exit statuses, shown at the end of every `--help`.
const EXIT_STATUS: &str = "\
Exit status:
  0  done
  1  error: the command could not do its work (the message says why)
  2  usage: the arguments are wrong
  3  some cards or records failed or were refused (the rest were done)";

/// The top-level long help's end: the exit status and the environment.
const EXIT_STATUS_AND_ENVIRONMENT: &str = "\
Exit status:
  0  done
  1  error: the command could not do its work (the message says why)
  2  usage: the arguments are wrong
  3  some cards or records failed or were refused (the rest were done)

Environment:
  VSC_STORE           the store, where a command takes --store
  VSC_KEY_FILE        the issuer key file, where a command takes --key-file
  VSC_TRUSTED_KEY     the transcript verification key (replay, station)
  RUST_LOG            log filter, overrides -v/-q (e.g. vsc_personalizer=debug)
  VSC_PROGRESS_EVERY  seconds between plain progress lines when standard error is not a
                      terminal (default 5)";

/// The VSC control program: prepares virtual smart cards from card holder records and a
/// profile, and personalizes real cards with the same transcripts.
///
/// A typical run: `keys init` once, and `keys public-key` for the stations; `prepare` the
/// records into a store; serve a prepared image with `vsc-emulator serve` to test applications;
/// `station` (or `replay`) to personalize the real pre-initialized cards.
#[derive(Debug, Parser)]
#[command(
    name = "vsc-personalizer",
    version,
    propagate_version = true,
    after_help = EXIT_STATUS,
    after_long_help = EXIT_STATUS_AND_ENVIRONMENT
)]
pub struct Cli {
    /// More detail on standard error (-v: info, -vv: debug, -vvv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Only errors on standard error: no progress, no notices.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The issuer master key: create a key file, check one, export the verification key.
    #[command(subcommand, after_help = EXIT_STATUS)]
    Keys(keys::KeysCommand),

    /// Card holder records: write synthetic ones for a profile.
    #[command(subcommand, after_help = EXIT_STATUS)]
    Records(records::RecordsCommand),

    #[command(after_help = EXIT_STATUS)]
    Prepare(prepare::PrepareArgs),

    #[command(after_help = EXIT_STATUS)]
    Export(export::ExportArgs),

    /// Make a pre-initialized VSC: what a real card is when it leaves the card maker, the
    /// stand-in for one in tests and demos.
    #[command(after_help = EXIT_STATUS)]
    Blank(blank::BlankArgs),

    #[command(after_help = EXIT_STATUS)]
    Replay(replay::ReplayArgs),

    #[command(after_help = EXIT_STATUS)]
    Station(station::StationArgs),

    /// The store: its status, schema migrations, claims released by hand, the audit log.
    #[command(subcommand, after_help = EXIT_STATUS)]
    Store(store::StoreCommand),

    /// List the readers pcscd knows, with their index (for --reader) and their cards.
    #[command(after_help = EXIT_STATUS)]
    Readers(readers::ReadersArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),

    /// Write the man pages (for packagers; scripts/man writes docs/man/).
    #[command(hide = true)]
    Manpages(completions::ManpagesArgs),
}

/// Parses the arguments, runs the command, and says how it went.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print and exit 0; usage errors exit 2.
        Err(error) => error.exit(),
    };
    let verbosity = ui::Verbosity::new(cli.verbose, cli.quiet);
    ui::init_logging(verbosity);
    let result = match cli.command {
        Command::Keys(command) => keys::run(command),
        Command::Records(command) => records::run(command),
        Command::Prepare(args) => prepare::run(args, verbosity),
        Command::Export(args) => export::run(args),
        Command::Blank(args) => blank::run(args),
        Command::Replay(args) => replay::run(args, verbosity),
        Command::Station(args) => station::run(args, verbosity),
        Command::Store(command) => store::run(command, verbosity),
        Command::Readers(args) => readers::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Manpages(args) => completions::manpages(args),
    };
    exit::finish(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_documents_the_exit_statuses() {
        let mut command = Cli::command();
        let help = command.render_long_help().to_string();
        assert!(help.contains("3  some cards or records failed"), "{help}");
        for name in ["prepare", "station", "replay", "export"] {
            let sub = command.find_subcommand_mut(name).unwrap();
            let help = sub.render_long_help().to_string();
            assert!(help.contains("Exit status:"), "{name}: {help}");
        }
    }
}
