//! The bodies of VSC's fuzz targets, one module each, so that libFuzzer (the binaries in
//! `fuzz_targets/`) and a plain test (the corpus replay in `tests/corpus.rs`, on the stable
//! toolchain) run the very same code.
//!
//! Every `run` takes any bytes. It panics only when a property of the code under test fails (a
//! panic inside that code, or an assertion here): that is what libFuzzer reports as a crash.

pub mod apdu;
pub mod image;
pub mod profile;
pub mod records;
pub mod seeds;
pub mod session;
pub mod tlv;
pub mod transcript;
pub mod vpcd;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the folder of its corpus and the binary's name) and its body.
pub const TARGETS: [(&str, Body); 8] = [
    ("apdu", apdu::run),
    ("session", session::run),
    ("tlv", tlv::run),
    ("image", image::run),
    ("transcript", transcript::run),
    ("vpcd", vpcd::run),
    ("profile", profile::run),
    ("records", records::run),
];

/// A scratch file of this process for targets whose code under test reads or writes files:
/// in `/dev/shm` where there is one (memory, not the disk), else the temporary folder.
pub(crate) fn scratch_file(name: &str) -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let folder = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    folder.join(format!("vsc-fuzz-{}-{name}", std::process::id()))
}
