//! `vsc-personalizer`: profiles, data preparation, transcripts, the VSC store, and replay onto
//! real cards through PC/SC.

pub mod replay;
pub mod store;
