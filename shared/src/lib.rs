//! `vsc-core`: the virtual smart card.
//!
//! Everything that makes a VSC a card lives here, shared by the emulator, the personalizer and
//! the tests: the APDU codec and status words ([`apdu`]).
#![deny(missing_docs)]

pub mod apdu;
pub mod transcript;
