//! Station hosts: each a private network, mount and pid namespace (`unshare`, as root) with its
//! own loopback (so its own vpcd ports), its own `/run/pcscd` (so its own pcscd), and the rest
//! of the file system shared (so the PostgreSQL socket, the test's folders and binaries). See
//! shared/FACTS.md, "Several PC/SC hosts on one machine".
//!
//! A small agent runs as the host's first process and starts, signals and waits for the
//! host's processes on the test's word, one command a line on its standard input, one reply a
//! line on its standard output. When the test lets go of the host (or dies), the agent's input
//! closes and it exits; the kernel then ends every process of the host's pid namespace.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::{HarnessError, Result};

/// The agent: sets up the host, then serves commands.
///
/// - `spawn NAME PROGRAM ARG…`: starts it in the background, output to `LOG/NAME.log`;
///   replies `ok PID` (the pid inside the host).
/// - `signal NAME SIGNAL`: replies `ok`.
/// - `wait NAME`: waits for it to end; replies `ok STATUS`.
/// - `run PROGRAM ARG…`: runs it to its end; replies `ok STATUS OUTPUT` (its standard output,
///   on one line).
const AGENT: &str = r#"
log=$1
ip link set lo up || { echo "failed ip link"; exit 1; }
mkdir -p /run/pcscd
mount -t tmpfs -o mode=0755 tmpfs /run/pcscd || { echo "failed mount"; exit 1; }
declare -A pids
echo ready
while read -r -a words; do
  command=${words[0]:-}
  case $command in
    spawn)
      name=${words[1]}
      "${words[@]:2}" </dev/null >>"$log/$name.log" 2>&1 &
      pids[$name]=$!
      echo "ok $!" ;;
    signal)
      kill -"${words[2]}" "${pids[${words[1]}]}" 2>/dev/null; echo ok ;;
    wait)
      wait "${pids[${words[1]}]}" 2>/dev/null; echo "ok $?" ;;
    run)
      output=$("${words[@]:1}" 2>&1 </dev/null)
      status=$?
      echo "ok $status ${output//$'\n'/ }" ;;
    *)
      echo "failed unknown command $command" ;;
  esac
done
"#;

/// A station host, kept while this value lives.
#[derive(Debug)]
pub struct StationHost {
    name: String,
    log_dir: PathBuf,
    agent: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl StationHost {
    /// Starts host `name`, its logs in `log_dir/name/`.
    pub fn start(name: &str, log_dir: &Path) -> Result<StationHost> {
        let log_dir = log_dir.join(name);
        std::fs::create_dir_all(&log_dir)
            .map_err(HarnessError::io(format!("creating {}", log_dir.display())))?;
        let mut agent = Command::new("unshare")
            .args(["--mount", "--net", "--pid", "--fork", "--mount-proc"])
            .args(["--propagation", "private", "bash", "-c", AGENT, "vsc-host"])
            .arg(&log_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(HarnessError::io(format!(
                "starting station host {name} (unshare needs root)"
            )))?;
        let (Some(input), Some(output)) = (agent.stdin.take(), agent.stdout.take()) else {
            return Err(HarnessError::Failed {
                what: format!("starting station host {name}"),
                detail: "no pipes to its agent".into(),
            });
        };
        let mut host = StationHost {
            name: name.to_string(),
            log_dir,
            agent,
            input: Some(input),
            output: BufReader::new(output),
        };
        let first = host.reply("starting")?;
        if first != "ready" {
            return Err(HarnessError::Failed {
                what: format!("starting station host {name} (as root?)"),
                detail: first,
            });
        }
        Ok(host)
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the host's processes write their output.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// What process `name` printed so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Starts `program args` in the host, as `name`; its pid inside the host.
    pub fn spawn(&mut self, name: &str, program: &Path, args: &[&str]) -> Result<u32> {
        let reply = self.command(&format!(
            "spawn {name} {} {}",
            program.display(),
            args.join(" ")
        ))?;
        reply.trim().parse().map_err(|_| HarnessError::Failed {
            what: format!("starting {name} in host {}", self.name),
            detail: reply,
        })
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, …) to process `name`.
    pub fn signal(&mut self, name: &str, signal: &str) -> Result<()> {
        self.command(&format!("signal {name} {signal}")).map(drop)
    }

    /// Waits for process `name` to end; its exit status (128 + a signal's number).
    pub fn wait(&mut self, name: &str) -> Result<i32> {
        let reply = self.command(&format!("wait {name}"))?;
        Ok(reply.trim().parse().unwrap_or(-1))
    }

    /// Stops process `name` (SIGTERM) and waits for it.
    pub fn stop(&mut self, name: &str) -> Result<i32> {
        self.signal(name, "TERM")?;
        self.wait(name)
    }

    /// Runs `program args` in the host to its end: its exit status and its output (on one
    /// line).
    pub fn run(&mut self, program: &Path, args: &[&str]) -> Result<(i32, String)> {
        let reply = self.command(&format!("run {} {}", program.display(), args.join(" ")))?;
        let (status, output) = reply.split_once(' ').unwrap_or((&reply, ""));
        Ok((status.parse().unwrap_or(-1), output.to_string()))
    }

    fn command(&mut self, line: &str) -> Result<String> {
        if line.contains('\n') {
            return Err(HarnessError::Failed {
                what: format!("host {}", self.name),
                detail: format!("a command of two lines: {line:?}"),
            });
        }
        let Some(input) = self.input.as_mut() else {
            return Err(HarnessError::Failed {
                what: format!("host {}: {line}", self.name),
                detail: "the host is closed".into(),
            });
        };
        writeln!(input, "{line}")
            .and_then(|()| input.flush())
            .map_err(HarnessError::io(format!("talking to host {}", self.name)))?;
        let reply = self.reply(line)?;
        match reply.strip_prefix("ok") {
            Some(rest) => Ok(rest.trim_start().to_string()),
            None => Err(HarnessError::Failed {
                what: format!("host {}: {line}", self.name),
                detail: reply,
            }),
        }
    }

    fn reply(&mut self, what: &str) -> Result<String> {
        let mut reply = String::new();
        let read = self
            .output
            .read_line(&mut reply)
            .map_err(HarnessError::io(format!("reading host {}", self.name)))?;
        if read == 0 {
            return Err(HarnessError::Failed {
                what: format!("host {}: {what}", self.name),
                detail: "its agent ended".into(),
            });
        }
        Ok(reply.trim_end().to_string())
    }
}

impl Drop for StationHost {
    fn drop(&mut self) {
        // Closing the agent's input makes it exit, and with it every process of the host.
        drop(self.input.take());
        let _ = self.agent.wait();
    }
}
