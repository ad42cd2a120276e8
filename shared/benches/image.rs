//! VSC images: sealing and encoding a 4 KB image, opening one, and (for reference) the durable
//! atomic save with its fsyncs. Target: 50 µs or less to seal and to open.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use criterion::{Criterion, criterion_group, criterion_main};
use vsc_core::card::CardState;
use vsc_core::crypto::MasterKey;
use vsc_core::fs::{AccessRules, Condition, Ef, EfBody, Fid, FileState, Node};
use vsc_core::image;

/// The sample card with 2.5 KB more private data: about 4 KB as an image.
fn four_kb_state() -> CardState {
    let mut state = vsc_core::sample::card().into_state();
    if let Some(Node::Df(private)) = state
        .fs
        .mf
        .children
        .iter_mut()
        .find(|n| n.fid() == Fid::DF_PRIVATE)
    {
        private.children.push(Node::Ef(Ef {
            fid: Fid::new(0x6002).unwrap(),
            sfi: None,
            state: FileState::Activated,
            rules: AccessRules::uniform(Condition::USER_PIN),
            body: EfBody::Transparent((0..2560).map(|i| i as u8).collect()),
        }));
    }
    state
}

fn images(c: &mut Criterion) {
    let master = MasterKey::from_bytes(&[7; 32]);
    let state = four_kb_state();
    let bytes = image::encode(&state, &master).unwrap();
    println!("image size: {} bytes", bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.vsc");

    let mut group = c.benchmark_group("image");
    group.bench_function("seal and encode (4 KB)", |b| {
        b.iter(|| image::encode(&state, &master).unwrap())
    });
    group.bench_function("open and decode (4 KB)", |b| {
        b.iter(|| image::decode(&bytes, &master).unwrap())
    });
    group.bench_function("write_atomic with fsync (4 KB)", |b| {
        b.iter(|| image::write_atomic(&path, &bytes).unwrap())
    });
    group.finish();
}

criterion_group!(benches, images);
criterion_main!(benches);
