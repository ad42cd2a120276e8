//! Saving images: a writer process killed (SIGKILL) at random points while it saves images in a
//! loop leaves an image that loads and holds the old state or the new one, and temporary files
//! that the next open removes; temporary files planted or left under any name never stop a
//! save; a save keeps the image's mode.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;
use vsc_core::card::{Card, CardState};
use vsc_core::crypto::MasterKey;
use vsc_core::image;

const WRITER: &str = "VSC_ATOMIC_WRITER";

fn master() -> MasterKey {
    MasterKey::from_bytes(&[0x42; 32])
}

/// The sample card with the holder name's first byte set to `generation`.
fn state(generation: u8) -> CardState {
    let mut state = vsc_core::sample::card().into_state();
    if let Some(vsc_core::fs::Node::Df(df)) = state
        .fs
        .mf
        .children
        .iter_mut()
        .find(|n| n.fid().value() == 0x5000)
        && let Some(ef) = df.child_ef_mut(vsc_core::fs::Fid::new(0x5001).unwrap())
        && let vsc_core::fs::EfBody::Transparent(bytes) = &mut ef.body
    {
        bytes[0] = generation;
    }
    state
}

fn generation(path: &Path) -> u8 {
    let state = image::load(path, &master()).expect("a complete image");
    let mut card = Card::from_state(state);
    card.transmit(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x50, 0x00]);
    let response = card.transmit(&[0x00, 0xB0, 0x81, 0x00, 0x01]);
    assert_eq!(response.len(), 3, "{response:02X?}");
    response[0]
}

/// The writer: saves generations 0, 1, 0, 1, … until killed.
#[test]
fn writer() {
    let Some(path) = std::env::var_os(WRITER) else {
        return;
    };
    let states = [state(0), state(1)];
    for i in 0.. {
        image::save(Path::new(&path), &states[i % 2], &master()).unwrap();
    }
}

#[test]
fn killed_writers_leave_a_whole_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.vsc");
    image::save(&path, &state(0), &master()).unwrap();
    let mut rng = rand::thread_rng();
    let mut seen = [0usize; 2];
    for _ in 0..200 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "writer", "--nocapture"])
            .env(WRITER, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.gen_range(2_000..25_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        let generation = generation(&path);
        assert!(generation <= 1);
        seen[usize::from(generation)] += 1;
    }
    // Both states were caught at some point: the kills landed mid-loop.
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    // Whatever temporary files the kills left, the clean-up at open removes them all, and only
    // them.
    std::fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
    image::remove_stale_temporaries(&path).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["card.vsc", "notes.txt"]);
}

/// Before: the temporary name was `.card.vsc.<pid>.<n>.tmp`, so a file of that name left by a
/// killed process whose pid came back (pid 1 in a container) made every save fail (EEXIST).
#[test]
fn temporary_files_under_the_old_fixed_names_do_not_stop_a_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.vsc");
    for n in 0..64 {
        let stale = dir
            .path()
            .join(format!(".card.vsc.{}.{n}.tmp", std::process::id()));
        std::fs::write(stale, b"left by a killed emulator").unwrap();
    }
    for generation in 0..4 {
        image::save(&path, &state(generation), &master()).unwrap();
        assert_eq!(self::generation(&path), generation);
    }
    let removed = image::remove_stale_temporaries(&path).unwrap();
    assert_eq!(removed.len(), 64);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Before: a save made the file anew with the default mode, so a 0600 image became 0644.
#[test]
fn a_save_keeps_the_mode_and_new_images_are_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.vsc");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    image::save(&path, &state(0), &master()).unwrap();
    assert_eq!(mode(&path), 0o600, "a new image");
    image::save(&path, &state(1), &master()).unwrap();
    assert_eq!(mode(&path), 0o600, "a saved image");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    image::save(&path, &state(0), &master()).unwrap();
    assert_eq!(mode(&path), 0o640, "a mode the owner chose");
}
