//! Secure messaging cost per personalization command: terminal wrap, card unwrap, card response
//! wrap and terminal unwrap of an UPDATE BINARY with 64 data bytes and a response without data.
//!
//! Data preparation runs about 60 such commands per card; at 10 000 cards/s on 2 cores that is
//! 300 000 round trips per second per core, about 3 µs each with nothing else to do.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark can only stop on a failed step, as a test does"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vsc_core::apdu::{Command, Status};
use vsc_core::crypto::MasterKey;
use vsc_core::sm::{CardChannel, ChannelKeys, TerminalChannel};

fn round_trip(c: &mut Criterion) {
    let keys = ChannelKeys::derive(
        &MasterKey::from_bytes(&[0x42; 32]),
        &[1, 2, 3, 4, 5, 6, 7, 8],
    );
    let mut terminal = TerminalChannel::new(keys.clone());
    let mut card = CardChannel::new(keys);
    let data = [0x5A; 64];
    let update_binary = Command::new(0x00, 0xD6, 0x00, 0x00).with_data(&data);

    c.bench_function("sm round trip: UPDATE BINARY 64 bytes", |b| {
        b.iter(|| {
            let protected = terminal.wrap_command(black_box(&update_binary)).unwrap();
            let command = Command::parse(&protected).unwrap();
            let plain = card.unwrap_command(&command).unwrap();
            black_box(&plain);
            let response = card.wrap_response(&[], Status::Success);
            terminal.unwrap_response(&response).unwrap()
        })
    });

    c.bench_function("sm channel keys: derive K_enc and K_mac", |b| {
        let master = MasterKey::from_bytes(&[0x42; 32]);
        b.iter(|| ChannelKeys::derive(black_box(&master), black_box(&[1, 2, 3, 4, 5, 6, 7, 8])))
    });
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
