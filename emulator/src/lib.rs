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
pub use server::{Endpoint, ServeError, VPCD_PORT, serve, serve_slots};
pub mod inspect;
pub mod record;
pub mod vsc;
