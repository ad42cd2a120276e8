//! Processes a test starts, stopped on drop and when the test process dies.
//!
//! Each runs under a small bash supervisor whose standard input is a pipe from the test
//! process. When the handle is dropped — or the test process ends in any way, a panic or a
//! SIGKILL alike — the pipe closes, and the supervisor stops the process with SIGTERM and
//! reaps it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{HarnessError, Result};

/// The supervisor: starts the command with its output in the log, prints its pid, and waits
/// for it to end or for its standard input to close (then stops it). It exits with the
/// command's status.
const SUPERVISOR: &str = r#"
log=$1; shift
"$@" </dev/null >>"$log" 2>&1 &
child=$!
echo "$child"
exec >/dev/null
while kill -0 "$child" 2>/dev/null; do
  read -r -t 0.5 _
  [ $? -gt 128 ] || break
done
kill -TERM "$child" 2>/dev/null
wait "$child"
"#;

/// Numbers the logs, so that a process started twice keeps both.
static SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// How long a process may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running process, stopped when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    pid: u32,
    log: PathBuf,
    supervisor: Child,
    lifeline: Option<ChildStdin>,
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `command` (its program, arguments, environment and working folder are used; its
    /// standard streams are not: input is empty, output goes to `name-N.log` in `log_dir`).
    pub fn spawn(name: &str, command: &Command, log_dir: &Path) -> Result<Process> {
        let log = log_dir.join(format!(
            "{name}-{}.log",
            SPAWNED.fetch_add(1, Ordering::Relaxed)
        ));
        File::create(&log).map_err(HarnessError::io(format!("creating {}", log.display())))?;
        let mut supervisor = Command::new("bash");
        supervisor
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("vsc-supervisor")
            .arg(&log)
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => supervisor.env(key, value),
                None => supervisor.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            supervisor.current_dir(dir);
        }
        let mut supervisor = supervisor
            .spawn()
            .map_err(HarnessError::io(format!("starting {name}")))?;
        let lifeline = supervisor.stdin.take();
        let mut first_line = String::new();
        if let Some(stdout) = supervisor.stdout.take() {
            BufReader::new(stdout)
                .read_line(&mut first_line)
                .map_err(HarnessError::io(format!("reading the pid of {name}")))?;
        }
        let pid = first_line
            .trim()
            .parse()
            .map_err(|_| HarnessError::Failed {
                what: format!("starting {name}"),
                detail: format!("the supervisor printed {first_line:?} instead of a pid"),
            })?;
        Ok(Process {
            name: name.to_owned(),
            pid,
            log,
            supervisor,
            lifeline,
            status: None,
        })
    }

    /// The process id of the command (not of its supervisor).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Everything the command printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// True while the command runs.
    pub fn is_running(&mut self) -> bool {
        self.status.is_none() && matches!(self.supervisor.try_wait(), Ok(None))
    }

    /// Sends `signal` (a name such as `TERM` or `INT`) to the command.
    pub fn signal(&self, signal: &str) -> Result<()> {
        send_signal(signal, self.pid)
    }

    /// Waits up to `timeout` for the command to end by itself; its exit status (a signal that
    /// ended it shows as 128 + its number).
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.supervisor.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    return Err(HarnessError::Timeout {
                        what: format!("{} to exit", self.name),
                        after: timeout,
                    });
                }
                Err(cause) => {
                    return Err(HarnessError::io(format!("waiting for {}", self.name))(
                        cause,
                    ));
                }
            }
        }
    }

    /// Stops the command (SIGTERM, then SIGKILL if it lingers) and returns its exit status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        // Closing the lifeline makes the supervisor send SIGTERM and reap the command.
        drop(self.lifeline.take());
        match self.wait(STOP_GRACE) {
            Ok(status) => Ok(status),
            Err(timeout) => {
                let _ = send_signal("KILL", self.pid);
                let _ = self.supervisor.kill();
                let _ = self.wait(STOP_GRACE);
                Err(timeout)
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn send_signal(signal: &str, pid: u32) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .map_err(HarnessError::io("running kill"))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::Failed {
            what: format!("sending SIG{signal} to {pid}"),
            detail: status.to_string(),
        })
    }
}
