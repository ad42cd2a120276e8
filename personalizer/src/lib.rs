//! `vsc-personalizer`: profiles, data preparation, transcripts, the VSC store, and replay onto
//! real cards through PC/SC.
//!
//! The pipeline, each stage owning its format: [`profile`] (a profile's TOML validated into
//! types) and [`records`] (holder records streamed from CSV, JSON Lines or SQLite) meet in
//! [`content`] (one holder's card content); [`compile`] makes its transcripts; [`prepare`] runs
//! them on the card OS and puts the cards into the [`store`] and their PINs into the PIN
//! mailer; [`export`] and [`blank`] write what the store holds and stand-ins for real cards;
//! [`replay`] and [`station`] personalize real cards through PC/SC, [`readers`] finds them.
//! Output files go through [`files`] (whole or not at all, never overwritten unasked).

pub mod blank;
pub mod compile;
pub mod content;
pub mod export;
pub mod files;
pub mod keys;
pub mod prepare;
pub mod profile;
pub mod readers;
pub mod records;
pub mod replay;
pub mod station;
pub mod store;
pub mod synthetic;
