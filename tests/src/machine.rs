//! The machine's one pcscd: the lock that gives a test the right to it (and to the vpcd ports),
//! and the private pcscd started under that lock.

use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vsc_emulator::readers_conf::{self, ReaderEntry};

use crate::process::Process;
use crate::{HarnessError, Result};

/// The lock file every user of pcscd on this machine takes (`flock`), scripts included.
pub const LOCK_FILE: &str = "/tmp/vsc-pcscd.lock";

/// How long pcscd may take to list its readers.
const READERS_TIMEOUT: Duration = Duration::from_secs(15);

/// How long to wait for a pcscd that someone else started to go away.
const FOREIGN_PCSCD_PATIENCE: Duration = Duration::from_secs(120);

/// Set when a test gave up waiting for a foreign pcscd.
static GAVE_UP_WAITING: AtomicBool = AtomicBool::new(false);

/// Serializes the test threads of this process; the file lock serializes processes.
static THIS_PROCESS: Mutex<()> = Mutex::new(());

/// The right to run pcscd and use the vpcd ports on this machine, held until dropped; and a
/// scratch folder for logs and configurations.
#[derive(Debug)]
pub struct Machine {
    scratch: TempDir,
    _file_lock: File,
    _thread_lock: MutexGuard<'static, ()>,
}

impl Machine {
    /// Waits for the machine lock, then checks that no other pcscd runs.
    pub fn lock() -> Result<Machine> {
        // A test that panicked while holding the lock poisons it; the lock itself is still good.
        let thread_lock = THIS_PROCESS.lock().unwrap_or_else(PoisonError::into_inner);
        let file_lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .map_err(HarnessError::io(format!("opening {LOCK_FILE}")))?;
        file_lock
            .lock()
            .map_err(HarnessError::io(format!("locking {LOCK_FILE}")))?;
        // Someone may be running a pcscd of their own for a while (without the lock): wait for
        // it rather than fail at once, but never stop it.
        let deadline = Instant::now() + FOREIGN_PCSCD_PATIENCE;
        while let Some(pid) = running_pcscd() {
            // Once one test has waited in vain, the others fail at once.
            if Instant::now() > deadline || GAVE_UP_WAITING.load(Ordering::Relaxed) {
                GAVE_UP_WAITING.store(true, Ordering::Relaxed);
                return Err(HarnessError::ForeignPcscd { pid });
            }
            eprintln!("vsc-tests: waiting for pcscd (pid {pid}), which this harness did not start");
            std::thread::sleep(Duration::from_secs(1));
        }
        let scratch = tempfile::Builder::new()
            .prefix("vsc-tests.")
            .tempdir()
            .map_err(HarnessError::io("creating a scratch folder"))?;
        Ok(Machine {
            scratch,
            _file_lock: file_lock,
            _thread_lock: thread_lock,
        })
    }

    /// A folder for this test's logs and configurations, removed on drop.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// Starts pcscd with `readers` and waits until it lists them all.
    pub fn start_pcscd(&self, readers: &Readers) -> Result<Pcscd<'_>> {
        let config = readers.write_config(self.scratch())?;
        let mut pcscd = Pcscd {
            config,
            reader_names: readers.reader_names(),
            log_dir: self.scratch().to_owned(),
            process: None,
            _machine: PhantomData,
        };
        pcscd.start()?;
        Ok(pcscd)
    }
}

/// A pcscd started by this harness; stopped on drop.
#[derive(Debug)]
pub struct Pcscd<'machine> {
    config: Option<PathBuf>,
    reader_names: Vec<String>,
    log_dir: PathBuf,
    process: Option<Process>,
    _machine: PhantomData<&'machine Machine>,
}

impl Pcscd<'_> {
    /// The reader names, slot 0 of the first entry first.
    pub fn readers(&self) -> &[String] {
        &self.reader_names
    }

    /// The name of reader `index`.
    pub fn reader(&self, index: usize) -> &str {
        self.reader_names.get(index).map_or("", String::as_str)
    }

    /// pcscd's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// Stops pcscd (a card side connected to vpcd sees its connection close).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            process.stop()?;
        }
        Ok(())
    }

    /// Starts pcscd (again) and waits until it lists every reader.
    pub fn start(&mut self) -> Result<()> {
        self.stop()?;
        let mut command = Command::new("pcscd");
        command.arg("--foreground");
        if std::env::var_os("VSC_PCSCD_DEBUG").is_some() {
            command.args(["--debug", "--apdu"]);
        }
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        let mut process = Process::spawn("pcscd", &command, &self.log_dir)?;
        let deadline = Instant::now() + READERS_TIMEOUT;
        loop {
            if !process.is_running() {
                return Err(HarnessError::Failed {
                    what: "starting pcscd".into(),
                    detail: tail(&process.output()),
                });
            }
            if self.lists_all_readers() {
                break;
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout {
                    what: format!(
                        "pcscd to list {:?}; its log:\n{}",
                        self.reader_names,
                        tail(&process.output())
                    ),
                    after: READERS_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.process = Some(process);
        Ok(())
    }

    /// Stops and starts pcscd.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start()
    }

    /// Everything pcscd logged so far.
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(Process::output)
            .unwrap_or_default()
    }

    fn lists_all_readers(&self) -> bool {
        let Ok(context) = pcsc::Context::establish(pcsc::Scope::User) else {
            return false;
        };
        let Ok(listed) = context.list_readers_owned() else {
            return false;
        };
        self.reader_names.iter().all(|name| {
            listed
                .iter()
                .any(|reader| reader.to_bytes() == name.as_bytes())
        })
    }
}

/// The reader entries pcscd starts with.
#[derive(Debug, Clone, Default)]
pub struct Readers {
    source: Source,
}

#[derive(Debug, Clone, Default)]
enum Source {
    /// The system's configuration (`/etc/reader.conf.d`, Debian's vpcd entry).
    #[default]
    System,
    /// Entries this harness writes, with `vsc-emulator`'s own code for `readers-conf`.
    Entries(Vec<ReaderEntry>),
    /// A configuration folder made by someone else (`vsc-emulator readers-conf`), with the
    /// reader names it gives.
    Folder(PathBuf, Vec<String>),
}

impl Readers {
    /// Debian's two vpcd readers, "Virtual PCD 00 00" and "Virtual PCD 00 01", on ports 35963
    /// and 35964.
    pub fn system() -> Self {
        Readers::default()
    }

    /// Only these entries, each with its own copy of the vpcd driver (the driver keeps its
    /// state in static variables, so entries must not share one).
    pub fn custom(entries: Vec<ReaderEntry>) -> Self {
        Readers {
            source: Source::Entries(entries),
        }
    }

    /// The configuration folder `config`, whose entries give `reader_names`.
    pub fn folder(config: &Path, reader_names: Vec<String>) -> Self {
        Readers {
            source: Source::Folder(config.to_owned(), reader_names),
        }
    }

    /// The names pcscd gives the slots, in order.
    pub fn reader_names(&self) -> Vec<String> {
        match &self.source {
            Source::System => vec!["Virtual PCD 00 00".into(), "Virtual PCD 00 01".into()],
            Source::Entries(entries) => readers_conf::reader_names(entries),
            Source::Folder(_, names) => names.clone(),
        }
    }

    /// Writes the configuration folder under `scratch`; `None` for the system's.
    fn write_config(&self, scratch: &Path) -> Result<Option<PathBuf>> {
        let entries = match &self.source {
            Source::System => return Ok(None),
            Source::Folder(config, _) => return Ok(Some(config.clone())),
            Source::Entries(entries) => entries,
        };
        let config = scratch.join("reader.conf.d");
        readers_conf::write_config(
            entries,
            &config,
            &scratch.join("drivers"),
            Path::new(readers_conf::VPCD_DRIVER),
        )
        .map_err(|error| {
            let mut detail = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                detail = format!("{detail}: {cause}");
                source = cause.source();
            }
            HarnessError::Failed {
                what: "writing the reader configuration".into(),
                detail,
            }
        })?;
        Ok(Some(config))
    }
}

/// The pid of a running pcscd, if any (read from /proc, so nothing else is needed).
fn running_pcscd() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim_end() == "pcscd").then_some(pid)
        })
}

/// The last lines of a log, for error messages.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
