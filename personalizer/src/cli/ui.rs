//! What a command shows while it works: log levels (`-v`, `-q`, `RUST_LOG`), a progress bar
//! that fits 80 columns on a terminal, a plain progress line every few seconds without one, and
//! JSON Lines for `--json`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use serde::Serialize;

/// How much to say on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbosity {
    /// `-v` count.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
}

impl Verbosity {
    pub fn new(verbose: u8, quiet: bool) -> Verbosity {
        Verbosity { verbose, quiet }
    }
}

/// Sets up `tracing` on standard error: `RUST_LOG` when set, else by `-v`/`-q` (warnings by
/// default).
pub fn init_logging(verbosity: Verbosity) {
    let level = match (verbosity.quiet, verbosity.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "vsc_personalizer={level},vsc_core={level},warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// One JSON object on its own line on standard output.
pub fn json_line(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    if serde_json::to_writer(&mut out, value).is_ok() {
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}

/// Progress on standard error: a bar on a terminal, a plain line every few seconds otherwise,
/// nothing when quiet or when standard output carries JSON. Lines printed through it appear
/// above the bar.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Mutex<PlainState>>,
    quiet: bool,
}

struct PlainState {
    what: String,
    every: Duration,
    last: Instant,
    started: Instant,
}

/// How often the plain progress line is printed, unless `VSC_PROGRESS_EVERY` (seconds, e.g.
/// `1` or `0.5`) says otherwise.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The plain line's interval: `VSC_PROGRESS_EVERY` when it is a number of seconds, else 5 s.
fn plain_every() -> Duration {
    std::env::var("VSC_PROGRESS_EVERY")
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0 && *seconds <= 86_400.0)
        .map_or(PLAIN_EVERY, Duration::from_secs_f64)
}

impl Progress {
    /// Progress over `total` items (a spinner when unknown) named `unit` (`cards`, `steps`).
    pub fn new(
        total: Option<u64>,
        unit: &str,
        what: &str,
        verbosity: Verbosity,
        json: bool,
    ) -> Progress {
        let quiet = verbosity.quiet;
        if quiet || json {
            return Progress {
                bar: None,
                plain: None,
                quiet,
            };
        }
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                plain: Some(Mutex::new(PlainState {
                    what: what.to_string(),
                    every: plain_every(),
                    last: Instant::now(),
                    started: Instant::now(),
                })),
                quiet,
            };
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::new_spinner(),
        };
        // At most 80 columns with six-digit counts: spinner, elapsed, 20-column bar, counts,
        // a whole-number rate, the ETA and a short message.
        let template = format!(
            "{{spinner}} {{elapsed_precise}} {{bar:20}} {{pos}}/{{len}} {unit} {{rate}} ETA {{eta}} {{msg}}"
        );
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            );
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            plain: None,
            quiet,
        }
    }

    /// Moves to `position`, with `message` (e.g. "3 failed"); without a terminal prints a plain
    /// line when the last one is a few seconds old.
    pub fn update(&self, position: u64, total: Option<u64>, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.set_message(message.to_string());
        }
        if let Some(plain) = &self.plain
            && let Ok(mut state) = plain.lock()
            && state.last.elapsed() >= state.every
        {
            state.last = Instant::now();
            eprintln!(
                "{}",
                plain_line(
                    &state.what,
                    position,
                    total,
                    message,
                    state.started.elapsed()
                )
            );
        }
    }

    /// Prints `line` on standard error, above the bar (unless quiet).
    pub fn line(&self, line: &str) {
        if self.quiet {
            return;
        }
        self.always(line);
    }

    /// Prints `line` on standard error even when quiet (errors).
    pub fn always(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The progress line without a terminal: `prepare: 1200 of 20000, 3 failed, 410/s, 3 s`.
fn plain_line(
    what: &str,
    position: u64,
    total: Option<u64>,
    message: &str,
    elapsed: Duration,
) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = position as f64 / seconds.max(1e-9);
    let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
    let message = if message.is_empty() {
        String::new()
    } else {
        format!(", {message}")
    };
    format!("{what}: {position}{of}{message}, {rate:.0}/s, {seconds:.0} s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_has_whole_numbers_and_fits_80_columns() {
        let line = plain_line(
            "prepare",
            99_999,
            Some(100_000),
            "12345 failed, 54321 skipped",
            Duration::from_millis(10_807),
        );
        assert_eq!(
            line,
            "prepare: 99999 of 100000, 12345 failed, 54321 skipped, 9253/s, 11 s"
        );
        assert!(line.len() <= 80);
    }
}
