//! The session ends with its connection: a PIN verified on one vpcd connection is not verified
//! on the next, nor is a file still selected, whether the connection closed cleanly or broke,
//! in connect and in listen mode. Through the real `vsc-emulator serve` binary, a fake vpcd
//! peer over TCP in place of pcscd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::{
    FakeVpcd, Images, READ_ADDRESS, SELECT_ADDRESS, VERIFY_RIGHT, accept, connect, free_port, kill,
    vpcd_listener,
};

/// Connection 1 powers the card on, verifies the PIN and reads private data.
fn verify_and_read(vpcd: &mut FakeVpcd) {
    assert_eq!(vpcd.power_on(), vsc_core::atr::atr(0x05));
    assert_eq!(vpcd.apdu(SELECT_ADDRESS), "9000");
    assert_eq!(
        vpcd.apdu(READ_ADDRESS),
        "6982",
        "private data before VERIFY"
    );
    assert_eq!(vpcd.apdu(VERIFY_RIGHT), "9000");
    assert_eq!(
        vpcd.apdu(READ_ADDRESS),
        format!("{}9000", hex::encode_upper(b"Heid"))
    );
}

/// The next connection, with no power-on: nothing of the last session is left.
fn nothing_carried_over(vpcd: &mut FakeVpcd) {
    // No current file: before, the EF selected on the last connection was still current.
    assert_eq!(vpcd.apdu(READ_ADDRESS), "6986", "no current EF");
    assert_eq!(vpcd.apdu(SELECT_ADDRESS), "9000");
    // Before, the PIN verified on the last connection still opened the private area.
    assert_eq!(
        vpcd.apdu(READ_ADDRESS),
        "6982",
        "the PIN is no longer verified"
    );
}

#[test]
fn connect_mode_a_new_connection_is_a_new_session() {
    let images = Images::new();
    let card = images.sample(1);
    let (listener, addr) = vpcd_listener();
    let emulator = images.serve(&[&card], &["--connect", &addr.to_string()]);

    let mut first = accept(&listener);
    verify_and_read(&mut first);
    drop(first);
    let mut second = accept(&listener);
    nothing_carried_over(&mut second);

    // A broken connection ends the session as well.
    assert_eq!(second.apdu(VERIFY_RIGHT), "9000");
    assert_eq!(
        second.apdu(READ_ADDRESS),
        format!("{}9000", hex::encode_upper(b"Heid"))
    );
    second.break_off();
    let mut third = accept(&listener);
    nothing_carried_over(&mut third);
    kill(emulator);
}

#[test]
fn listen_mode_a_new_connection_is_a_new_session() {
    let images = Images::new();
    let card = images.sample(2);
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let emulator = images.serve(&[&card], &["--listen", &addr.to_string()]);

    let mut first = connect(addr);
    verify_and_read(&mut first);
    drop(first);
    let mut second = connect(addr);
    nothing_carried_over(&mut second);

    assert_eq!(second.apdu(VERIFY_RIGHT), "9000");
    second.break_off();
    let mut third = connect(addr);
    nothing_carried_over(&mut third);
    kill(emulator);
}
