//! The integration test harness: a private pcscd with vpcd, emulators and PC/SC clients.
//!
//! - [`Machine`]: the right to use pcscd and the vpcd ports, one holder per machine (a mutex
//!   across the test threads, a file lock across processes), and the pcscd started under it.
//! - [`Process`]: every process a test starts; it is stopped on drop, even on a panic, and also
//!   when the test process dies.
//! - [`CardSide`]: cards served in process through `vsc-emulator`'s library API; [`TableCard`],
//!   a tiny card answering by a table, for protocol tests.
//! - PC/SC and tool helpers: [`wait_for_card`], [`wait_for_empty_reader`], [`transmit`],
//!   [`transmit_hex`], [`atr`], [`run_tool`] (opensc-tool, scriptor), [`vicc_command`], and
//!   [`workspace_binary`] to run the workspace's own binaries.
//! - The stock clients of the card applications: [`ServedCard`] (an image served by the
//!   `vsc-emulator` binary, for them to find), [`GnupgHome`], a throwaway GnuPG home whose
//!   gpg-agent and scdaemon end with it, [`Pkcs11Slot`] (OpenSC's PKCS#11 module through
//!   pkcs11-tool), and [`check_sha256_signature`] (openssl verifies what the card signed).
//! - [`StationHost`]: a private network, mount and pid namespace with its own pcscd, for tests
//!   of several station machines; [`TestDatabase`]: a PostgreSQL database of one test.
//! - For the status-word sweep and the fuzzers: [`catalogue`], a card in every life cycle state
//!   with every application, and [`secrets`], what of a card must never leave it.

mod binaries;
mod card_side;
pub mod catalogue;
mod error;
mod gnupg;
mod host;
mod machine;
mod pcsc_client;
mod pkcs11;
mod postgres;
mod process;
pub mod secrets;
mod served;
mod signatures;
mod table_card;
mod tools;
mod vicc;

pub use binaries::workspace_binary;
pub use card_side::CardSide;
pub use error::HarnessError;
pub use gnupg::GnupgHome;
pub use host::StationHost;
pub use machine::{LOCK_FILE, Machine, Pcscd, Readers};
pub use pcsc_client::{atr, transmit, transmit_hex, wait_for_card, wait_for_empty_reader};
pub use pkcs11::{OPENSC_PKCS11, Pkcs11Object, Pkcs11Slot};
pub use postgres::{TestDatabase, postgres_admin};
pub use process::Process;
pub use served::{SLOT_0_READER, ServedCard, serve_image};
pub use signatures::{KeyForm, check_sha256_signature};
pub use table_card::{CardEvent, CardLog, TableCard};
pub use tools::{ToolOutput, run_command, run_tool};
pub use vicc::vicc_command;
pub use vsc_emulator::readers_conf::ReaderEntry;

/// The result of a harness operation.
pub type Result<T> = std::result::Result<T, HarnessError>;
