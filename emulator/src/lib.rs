//! `vsc-emulator`: serves VSC images as live cards in virtual PC/SC readers through vsmartcard's
//! vpcd driver.
//!
//! A [`VirtualCard`] is served in a slot ([`serve`], [`serve_slots`]): the slot connects to vpcd
//! (or, reversed, listens for it) and answers vpcd's frames ([`vpcd`]) with the card, on a
//! thread of its own, until the caller's shutdown future completes.

mod backoff;
pub mod card;
pub mod options;
mod server;
mod slot;
pub mod trace;
pub mod vpcd;

pub use card::{NULL_CARD_ATR, NullCard, VirtualCard};
pub use server::{
    Endpoint, NO_VPCD_AFTER, ServeError, VPCD_PORT, serve, serve_slots, serve_slots_from,
};
pub use slot::{
    CONTROL_FOLLOW_UP, NO_POWER_ON_AFTER, NOT_AN_APDU, POWER_OFF_FOLLOW_UP, SILENT_AFTER,
};
pub mod inspect;
pub mod readers_conf;
pub mod record;
pub mod vsc;
