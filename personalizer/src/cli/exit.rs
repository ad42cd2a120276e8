//! How a command ends: its exit status (0 done, 1 error, 2 usage, 3 some cards failed or were
//! refused) and its error, printed on one line with each cause once.

use std::fmt;
use std::process::ExitCode;

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done.
    Done,
    /// Done, but some cards or records failed or were refused (exit 3).
    SomeFailed,
}

impl Outcome {
    /// `SomeFailed` when `failed`.
    pub fn failed_if(failed: bool) -> Outcome {
        if failed {
            Outcome::SomeFailed
        } else {
            Outcome::Done
        }
    }
}

/// Arguments that cannot work together, found after parsing (exit 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow` error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// The exit status of `result`, its error printed first.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(3),
        Err(error) => {
            eprintln!("vsc-personalizer: {}", one_line(&error));
            if error.downcast_ref::<UsageError>().is_some() {
                eprintln!("(see vsc-personalizer --help)");
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes, `: `-separated, each cause once: a cause whose text the message
/// already holds (an error that prints its source and also gives it as `source()`, as many
/// library errors do) is not repeated.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        // A cause that repeats the whole message so far, and says more, replaces it.
        if !line.is_empty() && text.contains(line.as_str()) {
            line = text.to_string();
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Repeating {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_printed_once() {
        let inner = std::io::Error::other("permission denied");
        let error = anyhow::Error::new(Repeating {
            path: "issuer.key",
            source: inner,
        })
        .context("the issuer key file");
        assert_eq!(
            one_line(&error),
            "the issuer key file: cannot read issuer.key: permission denied"
        );
    }
}
