//! `vsc-emulator`: serves VSC images as live cards in virtual PC/SC readers through vsmartcard's
//! vpcd driver.

pub mod vpcd;
