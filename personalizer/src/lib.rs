//! `vsc-personalizer`: profiles, data preparation, transcripts, the VSC store, and replay onto
//! real cards through PC/SC.

pub mod compile;
pub mod content;
pub mod keys;
pub mod prepare;
pub mod profile;
pub mod records;
pub mod replay;
pub mod station;
pub mod store;
