//! `vsc-null-card`: a card that answers every APDU with `9000`, served through the emulator's
//! own transport. What it reaches is the limit of the stack (pcscd, vpcd, the transport).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use vsc_emulator::options::{ServeOptions, Verbosity, init_logging};
use vsc_emulator::{NullCard, serve_slots};

/// Serve null cards (every APDU answered with 9000) in vpcd slots until SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// How many slots to serve, from the first one up.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    slots: u16,

    #[command(flatten)]
    serve: ServeOptions,

    #[command(flatten)]
    verbosity: Verbosity,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.verbosity, args.serve.trace);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vsc-null-card: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let endpoints = args.serve.endpoints(usize::from(args.slots))?;
    // The slots run on threads of their own; this thread only waits for a signal.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let shutdown = vsc_emulator::options::shutdown_signal()?;
        let slots = endpoints
            .into_iter()
            .map(|endpoint| (endpoint, NullCard))
            .collect();
        serve_slots(slots, shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
}
