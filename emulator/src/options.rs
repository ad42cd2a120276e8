//! Command-line options shared by the binaries that serve cards, and their logging set-up.

use std::io::IsTerminal;
use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

use crate::server::{Endpoint, VPCD_PORT};
use crate::trace;

/// Where the slots meet vpcd, and whether to trace APDUs.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// vpcd's address for the first slot; slot n connects to its port + n.
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([127, 0, 0, 1], VPCD_PORT)))]
    pub connect: SocketAddr,

    /// Reversed mode: listen at ADDR (slot n at its port + n) for vpcd to connect, as a reader
    /// configured with `DEVICENAME HOST:PORT` does.
    #[arg(long, value_name = "ADDR", conflicts_with = "connect")]
    pub listen: Option<SocketAddr>,

    /// Log every APDU on one line, decoded, secrets masked.
    #[arg(long)]
    pub trace: bool,
}

/// The options name more slots than ports are left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("slot {slot} would need a port above 65535")]
pub struct NoPortForSlot {
    /// The first slot without a port.
    pub slot: usize,
}

impl ServeOptions {
    /// The endpoints of slots 0 to `count` - 1.
    pub fn endpoints(&self, count: usize) -> Result<Vec<Endpoint>, NoPortForSlot> {
        let first = match self.listen {
            Some(addr) => Endpoint::Listen(addr),
            None => Endpoint::Connect(self.connect),
        };
        (0..count)
            .map(|slot| first.slot(slot).ok_or(NoPortForSlot { slot }))
            .collect()
    }
}

/// How much the program says on standard error: `-v`, `-vv`, `-q`.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Verbosity {
    /// Say more: -v adds debug messages, -vv everything. Overrides RUST_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Say nothing but errors. Overrides RUST_LOG.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl Verbosity {
    /// The level the flags ask for, if they ask.
    fn level(self) -> Option<&'static str> {
        match (self.quiet, self.verbose) {
            (true, _) => Some("error"),
            (false, 0) => None,
            (false, 1) => Some("debug"),
            (false, _) => Some("trace"),
        }
    }
}

/// The log filter: `-v`/`-q` if given, else `RUST_LOG` if set (an invalid one is reported and
/// ignored), else `info`; then the APDU trace lines (target `apdu`) on with `trace`, off
/// otherwise, whatever the rest says.
pub fn log_filter(verbosity: Verbosity, rust_log: Option<&str>, trace: bool) -> EnvFilter {
    let filter = match (verbosity.level(), rust_log) {
        (Some(level), _) => EnvFilter::new(level),
        (None, Some(spec)) if !spec.trim().is_empty() => {
            EnvFilter::try_new(spec).unwrap_or_else(|error| {
                eprintln!("ignoring RUST_LOG={spec:?}: {error}");
                EnvFilter::new("info")
            })
        }
        (None, _) => EnvFilter::new("info"),
    };
    let apdu = if trace { "info" } else { "off" };
    match format!("{}={apdu}", trace::TARGET).parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Logs to standard error, filtered by [`log_filter`] with the environment's `RUST_LOG`.
pub fn init_logging(verbosity: Verbosity, trace: bool) {
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(verbosity, rust_log.as_deref(), trace))
        .with_target(verbosity.verbose > 0)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM. Registers the handlers at once, so
/// that a signal arriving before the future is awaited is not lost. Call it inside a runtime.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!("{name}: stopping");
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeOptions,
    }

    fn endpoints(args: &[&str], count: usize) -> Result<Vec<Endpoint>, NoPortForSlot> {
        let cli = Cli::try_parse_from([&["test"], args].concat()).unwrap();
        cli.serve.endpoints(count)
    }

    #[test]
    fn default_is_vpcd_on_this_machine() {
        assert_eq!(
            endpoints(&[], 2).unwrap(),
            [
                Endpoint::Connect("127.0.0.1:35963".parse().unwrap()),
                Endpoint::Connect("127.0.0.1:35964".parse().unwrap())
            ]
        );
    }

    #[test]
    fn listen_counts_up_from_its_port() {
        assert_eq!(
            endpoints(&["--listen", "127.0.0.1:40000"], 2).unwrap(),
            [
                Endpoint::Listen("127.0.0.1:40000".parse().unwrap()),
                Endpoint::Listen("127.0.0.1:40001".parse().unwrap())
            ]
        );
        assert_eq!(
            endpoints(&["--listen", "127.0.0.1:65535"], 2),
            Err(NoPortForSlot { slot: 1 })
        );
    }

    #[derive(Parser)]
    struct VerbosityCli {
        #[command(flatten)]
        verbosity: Verbosity,
    }

    fn filter(args: &[&str], rust_log: Option<&str>, trace: bool) -> String {
        let cli = VerbosityCli::try_parse_from([&["test"], args].concat()).unwrap();
        // The directives, in an order of their own.
        let text = log_filter(cli.verbosity, rust_log, trace).to_string();
        let mut directives: Vec<&str> = text.split(',').collect();
        directives.sort_unstable();
        directives.join(",")
    }

    #[test]
    fn flags_override_rust_log_which_overrides_the_default() {
        assert_eq!(filter(&[], None, false), "apdu=off,info");
        assert_eq!(
            filter(&[], Some("vsc_emulator=debug"), false),
            "apdu=off,vsc_emulator=debug"
        );
        assert_eq!(filter(&["-q"], Some("debug"), false), "apdu=off,error");
        assert_eq!(filter(&["-v"], Some("warn"), false), "apdu=off,debug");
        assert_eq!(filter(&["-vv"], None, false), "apdu=off,trace");
        assert_eq!(filter(&[], Some("apdu=info"), false), "apdu=off");
        assert_eq!(filter(&["-q"], None, true), "apdu=info,error");
        assert_eq!(
            filter(&[], Some("vsc_emulator=loudest"), false),
            "apdu=off,info"
        );
        assert!(VerbosityCli::try_parse_from(["test", "-q", "-v"]).is_err());
    }

    #[test]
    fn connect_and_listen_exclude_each_other() {
        assert!(
            Cli::try_parse_from([
                "test",
                "--connect",
                "127.0.0.1:1",
                "--listen",
                "127.0.0.1:2"
            ])
            .is_err()
        );
    }
}
