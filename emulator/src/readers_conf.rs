//! pcscd reader entries for vpcd: the configuration folder that gives pcscd any number of
//! virtual readers (`vsc-emulator readers-conf`, and the test harness).
//!
//! One vpcd entry gives two slots, "NAME 00 00" on its port and "NAME 00 01" on the next. Each
//! entry needs its own port pair and its **own copy** of the driver: the driver keeps its slot
//! state in static arrays, and two entries loaded from one file hang pcscd. The copies live
//! outside the configuration folder, because pcscd reads every file in that folder as a reader
//! entry.
//!
//! Slot n of `entries_for_slots(_, first_port)` is on port `first_port + n`, as with Debian's
//! own entry, so `vsc-emulator serve --slot n` finds it with the default `--connect`.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::server::VPCD_PORT;

/// Debian's vpcd driver (package `vsmartcard-vpcd`).
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// Slots per vpcd entry.
pub const SLOTS_PER_ENTRY: usize = 2;

/// The reader name of the first entry: Debian's, so that two slots give the readers every
/// tool and test knows ("Virtual PCD 00 00", "Virtual PCD 00 01").
pub const FIRST_ENTRY_NAME: &str = "Virtual PCD";

/// The prefix of the entry files written into the configuration folder.
const ENTRY_FILE_PREFIX: &str = "vpcd-";

/// One vpcd reader entry: two slots, "NAME 00 00" and "NAME 00 01", on `port` and `port + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderEntry {
    name: String,
    device: String,
    port: u16,
}

impl ReaderEntry {
    /// vpcd listens on `port` (slot 1 on `port` + 1) for a card side to connect: vpcd's way.
    pub fn listening(name: &str, port: u16) -> Self {
        ReaderEntry {
            name: name.to_owned(),
            device: format!("/dev/null:{port}"),
            port,
        }
    }

    /// Reversed: vpcd connects to a card side listening at `addr` (slot 1 at its port + 1),
    /// which `vsc-emulator serve --listen ADDR` does.
    pub fn connecting(name: &str, addr: SocketAddr) -> Self {
        ReaderEntry {
            name: name.to_owned(),
            device: format!("{}:{}", addr.ip(), addr.port()),
            port: addr.port(),
        }
    }

    /// The entry's FRIENDLYNAME.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port of its first slot.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The names pcscd gives its two slots.
    pub fn reader_names(&self) -> [String; SLOTS_PER_ENTRY] {
        [
            format!("{} 00 00", self.name),
            format!("{} 00 01", self.name),
        ]
    }

    /// The entry's text, loading the driver from `driver`.
    pub fn to_conf(&self, driver: &Path) -> String {
        format!(
            "FRIENDLYNAME \"{}\"\nDEVICENAME   {}\nLIBPATH      {}\nCHANNELID    {}\n",
            self.name,
            self.device,
            driver.display(),
            self.port
        )
    }
}

/// Why a reader configuration cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReadersConfError {
    /// No slot asked for.
    #[error("at least one slot is needed")]
    NoSlots,
    /// The slots would need ports above 65535.
    #[error("{slots} slots from port {first_port} would need ports above 65535")]
    NoPorts {
        /// The slots asked for.
        slots: usize,
        /// The first port.
        first_port: u16,
    },
    /// The configuration folder holds files that are not ours: pcscd would read them too.
    #[error(
        "{} holds {}, which is no reader entry of ours: pcscd reads every file there, \
         so give a folder of its own",
        folder.display(),
        file.display()
    )]
    ForeignFile {
        /// The configuration folder.
        folder: PathBuf,
        /// The file found.
        file: PathBuf,
    },
    /// The driver folder is the configuration folder, or inside it.
    #[error("the driver copies must be outside the configuration folder {}", folder.display())]
    DriversInside {
        /// The configuration folder.
        folder: PathBuf,
    },
    /// A file operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// The name of entry `index`: [`FIRST_ENTRY_NAME`], then "Virtual PCD 1", "Virtual PCD 2", ….
pub fn entry_name(index: usize) -> String {
    match index {
        0 => FIRST_ENTRY_NAME.to_owned(),
        n => format!("{FIRST_ENTRY_NAME} {n}"),
    }
}

/// The entries that give `slots` slots, vpcd listening (the card side connects), slot n on
/// port `first_port + n`. An odd count is rounded up: the last entry's second slot is there,
/// unused.
pub fn entries_for_slots(
    slots: usize,
    first_port: u16,
) -> Result<Vec<ReaderEntry>, ReadersConfError> {
    entries(slots, first_port, |name, port| {
        ReaderEntry::listening(name, port)
    })
}

/// As [`entries_for_slots`], reversed: vpcd connects to `host`, slot n on port
/// `first_port + n`.
pub fn reversed_entries_for_slots(
    slots: usize,
    host: std::net::IpAddr,
    first_port: u16,
) -> Result<Vec<ReaderEntry>, ReadersConfError> {
    entries(slots, first_port, |name, port| {
        ReaderEntry::connecting(name, SocketAddr::new(host, port))
    })
}

fn entries(
    slots: usize,
    first_port: u16,
    entry: impl Fn(&str, u16) -> ReaderEntry,
) -> Result<Vec<ReaderEntry>, ReadersConfError> {
    if slots == 0 {
        return Err(ReadersConfError::NoSlots);
    }
    let count = slots.div_ceil(SLOTS_PER_ENTRY);
    let last_port = usize::from(first_port) + count * SLOTS_PER_ENTRY - 1;
    if last_port > usize::from(u16::MAX) {
        return Err(ReadersConfError::NoPorts { slots, first_port });
    }
    Ok((0..count)
        .map(|index| {
            // In range: checked against the last port above.
            let port = first_port + (index * SLOTS_PER_ENTRY) as u16;
            entry(&entry_name(index), port)
        })
        .collect())
}

/// The default first port: vpcd's own.
pub const FIRST_PORT: u16 = VPCD_PORT;

/// Where the driver copies go unless told: `DIR-drivers` beside the configuration folder `DIR`.
pub fn default_drivers_dir(conf_dir: &Path) -> PathBuf {
    let mut name = conf_dir.file_name().unwrap_or_default().to_os_string();
    name.push("-drivers");
    conf_dir.with_file_name(name)
}

/// The reader names of `entries`, slot by slot.
pub fn reader_names(entries: &[ReaderEntry]) -> Vec<String> {
    entries.iter().flat_map(ReaderEntry::reader_names).collect()
}

/// Writes `entries` into the configuration folder `conf_dir` (made if missing; our earlier
/// entries in it are replaced, anything else there is refused), each with its own copy of
/// `driver` in `drivers_dir` (made if missing, outside `conf_dir`). Returns the entry files.
pub fn write_config(
    entries: &[ReaderEntry],
    conf_dir: &Path,
    drivers_dir: &Path,
    driver: &Path,
) -> Result<Vec<PathBuf>, ReadersConfError> {
    let io_error = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| ReadersConfError::Io { what, path, source }
    };
    for dir in [conf_dir, drivers_dir] {
        fs::create_dir_all(dir).map_err(io_error("cannot create", dir))?;
    }
    let conf_dir = conf_dir
        .canonicalize()
        .map_err(io_error("cannot find", conf_dir))?;
    let drivers_dir = drivers_dir
        .canonicalize()
        .map_err(io_error("cannot find", drivers_dir))?;
    if drivers_dir.starts_with(&conf_dir) {
        return Err(ReadersConfError::DriversInside { folder: conf_dir });
    }
    let mut ours = Vec::new();
    for found in fs::read_dir(&conf_dir).map_err(io_error("cannot read", &conf_dir))? {
        let found = found.map_err(io_error("cannot read", &conf_dir))?;
        let is_ours = found
            .file_name()
            .to_str()
            .and_then(|name| name.strip_prefix(ENTRY_FILE_PREFIX))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_ours {
            return Err(ReadersConfError::ForeignFile {
                folder: conf_dir.clone(),
                file: found.path(),
            });
        }
        ours.push(found.path());
    }
    for stale in ours {
        fs::remove_file(&stale).map_err(io_error("cannot remove", &stale))?;
    }
    let mut written = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let copy = drivers_dir.join(format!("libifdvpcd-{index}.so"));
        fs::copy(driver, &copy).map_err(io_error("cannot copy the vpcd driver to", &copy))?;
        let file = conf_dir.join(format!("{ENTRY_FILE_PREFIX}{index}"));
        fs::write(&file, entry.to_conf(&copy)).map_err(io_error("cannot write", &file))?;
        written.push(file);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_consecutive_ports_two_per_entry() {
        let entries = entries_for_slots(5, 35963).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries.iter().map(ReaderEntry::port).collect::<Vec<_>>(),
            [35963, 35965, 35967]
        );
        assert_eq!(
            reader_names(&entries),
            [
                "Virtual PCD 00 00",
                "Virtual PCD 00 01",
                "Virtual PCD 1 00 00",
                "Virtual PCD 1 00 01",
                "Virtual PCD 2 00 00",
                "Virtual PCD 2 00 01",
            ]
        );
        assert!(matches!(
            entries_for_slots(0, 35963),
            Err(ReadersConfError::NoSlots)
        ));
        assert!(matches!(
            entries_for_slots(4, 65533),
            Err(ReadersConfError::NoPorts { .. })
        ));
        assert_eq!(entries_for_slots(2, 65534).unwrap().len(), 1);
    }

    #[test]
    fn an_entry_reads_as_pcscd_expects() {
        let entry = ReaderEntry::listening("Virtual PCD 1", 35965);
        assert_eq!(
            entry.to_conf(Path::new("/opt/vsc/libifdvpcd-1.so")),
            "FRIENDLYNAME \"Virtual PCD 1\"\nDEVICENAME   /dev/null:35965\n\
             LIBPATH      /opt/vsc/libifdvpcd-1.so\nCHANNELID    35965\n"
        );
        let reversed = ReaderEntry::connecting("R", "127.0.0.1:36063".parse().unwrap());
        assert!(
            reversed
                .to_conf(Path::new("/d"))
                .contains("DEVICENAME   127.0.0.1:36063\n")
        );
    }

    #[test]
    fn writes_entries_and_driver_copies_and_refuses_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let driver = dir.path().join("libifdvpcd.so");
        fs::write(&driver, b"driver").unwrap();
        let conf = dir.path().join("readers");
        let drivers = dir.path().join("drivers");
        let entries = entries_for_slots(6, 35963).unwrap();
        let written = write_config(&entries, &conf, &drivers, &driver).unwrap();
        assert_eq!(written.len(), 3);
        for index in 0..3 {
            let copy = drivers
                .canonicalize()
                .unwrap()
                .join(format!("libifdvpcd-{index}.so"));
            assert_eq!(fs::read(&copy).unwrap(), b"driver");
            let text = fs::read_to_string(conf.join(format!("vpcd-{index}"))).unwrap();
            assert!(
                text.contains(&format!("LIBPATH      {}\n", copy.display())),
                "{text}"
            );
        }
        // Fewer slots the second time: the extra entry goes.
        write_config(&entries[..1], &conf, &drivers, &driver).unwrap();
        assert_eq!(fs::read_dir(&conf).unwrap().count(), 1);

        fs::write(conf.join("notes"), b"x").unwrap();
        assert!(matches!(
            write_config(&entries, &conf, &drivers, &driver),
            Err(ReadersConfError::ForeignFile { .. })
        ));
        assert!(matches!(
            write_config(&entries, dir.path(), &drivers, &driver),
            Err(ReadersConfError::DriversInside { .. }) | Err(ReadersConfError::ForeignFile { .. })
        ));
    }
}
