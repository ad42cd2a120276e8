//! Running command-line PC/SC tools (`opensc-tool`, `scriptor`) with a time limit.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{HarnessError, Result};

/// What a tool printed, and how it ended.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `program` with `args`, feeding it `stdin`, and kills it if it takes longer than
/// `timeout`.
pub fn run_tool(
    program: &str,
    args: &[&str],
    stdin: &str,
    timeout: Duration,
) -> Result<ToolOutput> {
    let mut command = Command::new(program);
    command.args(args);
    run_command(command, stdin, timeout)
}

/// Runs `command` (its program, arguments and environment), feeding it `stdin`, and kills it if
/// it takes longer than `timeout`.
pub fn run_command(mut command: Command, stdin: &str, timeout: Duration) -> Result<ToolOutput> {
    let program = command.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = command
        .get_args()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(HarnessError::io(format!("starting {program}")))?;
    if let Some(mut input) = child.stdin.take() {
        // A tool that exits without reading its input closes the pipe: not an error here.
        let _ = input.write_all(stdin.as_bytes());
    }
    let stdout = child.stdout.take().map(read_in_background);
    let stderr = child.stderr.take().map(read_in_background);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HarnessError::Timeout {
                    what: format!("{program} {}", args.join(" ")),
                    after: timeout,
                });
            }
            Err(cause) => return Err(HarnessError::io(format!("waiting for {program}"))(cause)),
        }
    };
    let collect = |reader: Option<std::thread::JoinHandle<String>>| {
        reader
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    };
    Ok(ToolOutput {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

fn read_in_background(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
