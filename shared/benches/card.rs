//! The card OS in-process: a typical application session (SELECT DF, SELECT EF, READ BINARY of
//! 256 bytes, VERIFY) on the sample card. Target: 1,000,000 APDUs/s or more on one core.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vsc_core::sample;

fn session(c: &mut Criterion) {
    let mut card = sample::card();
    let mut verify = vec![0x00, 0x20, 0x00, 0x01, 0x08];
    verify.extend_from_slice(sample::USER_PIN);
    let commands: [&[u8]; 4] = [
        &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x50, 0x00],
        &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x50, 0x03],
        &[0x00, 0xB0, 0x00, 0x00, 0x00],
        &verify,
    ];
    let mut response = Vec::with_capacity(300);
    for command in commands {
        response.clear();
        card.transmit_into(command, &mut response);
        assert_eq!(response[response.len() - 2..], [0x90, 0x00]);
    }
    let mut group = c.benchmark_group("card");
    group.throughput(Throughput::Elements(commands.len() as u64));
    group.bench_function("session: select DF, select EF, read 256 B, verify", |b| {
        b.iter(|| {
            for command in commands {
                response.clear();
                card.transmit_into(command, &mut response);
            }
            std::hint::black_box(&response);
        })
    });
    group.finish();
}

criterion_group!(benches, session);
criterion_main!(benches);
