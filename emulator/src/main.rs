//! The `vsc-emulator` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vsc_emulator::options::{ServeOptions, init_logging};

/// Serve VSC images as live cards in virtual PC/SC readers (vsmartcard's vpcd).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Serve each image as a card in its own slot (the first image in slot 0), until SIGINT or
    /// SIGTERM.
    Serve {
        /// The VSC images.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,

        #[command(flatten)]
        serve: ServeOptions,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Commands::Serve { serve, .. } => {
            init_logging(serve.trace);
            // Wired when the card OS and the image format land; until then `vsc-null-card`
            // serves through the same transport.
            eprintln!(
                "vsc-emulator: serving images is not available yet; vsc-null-card serves null cards"
            );
            ExitCode::FAILURE
        }
    }
}
