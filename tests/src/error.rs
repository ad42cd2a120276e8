//! What can go wrong while setting up a test's world, with enough context to see why.

use std::io;
use std::time::Duration;

/// A harness operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// An operating system call failed.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        cause: io::Error,
    },
    /// A PC/SC call failed.
    #[error("{what}: {cause}")]
    Pcsc {
        /// What was being done.
        what: String,
        /// The PC/SC error, whole.
        cause: pcsc::Error,
    },
    /// Something did not happen in time.
    #[error("{what}: not done after {after:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// A pcscd that this harness did not start is running: tests would talk to it.
    #[error("a pcscd this harness did not start is running (pid {pid}); stop it first")]
    ForeignPcscd {
        /// Its process id.
        pid: u32,
    },
    /// A process or build step failed.
    #[error("{what}: {detail}")]
    Failed {
        /// What was being done.
        what: String,
        /// Its output or reason.
        detail: String,
    },
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
        let what = what.into();
        move |cause| HarnessError::Io { what, cause }
    }

    pub(crate) fn pcsc(what: impl Into<String>) -> impl FnOnce(pcsc::Error) -> HarnessError {
        let what = what.into();
        move |cause| HarnessError::Pcsc { what, cause }
    }
}
