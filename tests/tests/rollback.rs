//! The rollback check of `vsc-emulator serve`, through the real binary and the real pcscd and
//! vpcd: a PIN try on the current image is not undone by copying back an older copy, which is
//! refused with a clear error unless `--allow-rollback`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vsc_core::issuer::IssuerKeyFile;
use vsc_tests::{
    Machine, Process, Readers, transmit, wait_for_card, wait_for_empty_reader, workspace_binary,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);

fn serve(machine: &Machine, image: &Path, key_file: &Path, extra: &[&str]) -> Process {
    let mut command = Command::new(workspace_binary("vsc-emulator", "vsc-emulator").unwrap());
    command
        .arg("serve")
        .arg(image)
        .arg("--key-file")
        .arg(key_file)
        .args(extra);
    Process::spawn("vsc-emulator", &command, machine.scratch()).unwrap()
}

fn tries(image: &Path, key: &IssuerKeyFile) -> u8 {
    let state = vsc_core::image::load(image, key.master_key()).unwrap();
    state
        .passwords
        .get(vsc_core::security::PasswordRef::UserPin)
        .unwrap()
        .tries_left
}

#[test]
fn an_older_copy_of_a_card_is_refused_unless_allowed() {
    let machine = Machine::lock().unwrap();
    let pcscd = machine.start_pcscd(&Readers::system()).unwrap();
    let folder = machine.scratch().join("rollback");
    std::fs::create_dir_all(&folder).unwrap();
    let key_file = folder.join("issuer.key");
    let key = IssuerKeyFile::create_new(&key_file).unwrap();
    let image = folder.join("card.vsc");
    vsc_core::image::save(
        &image,
        &vsc_core::sample::card().into_state(),
        key.master_key(),
    )
    .unwrap();
    let old = std::fs::read(&image).unwrap();

    // A wrong PIN on the current image.
    let mut emulator = serve(&machine, &image, &key_file, &[]);
    {
        let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
        let response =
            transmit(&card, &hex::decode("0020000108393939393939FFFF").unwrap()).unwrap();
        assert_eq!(response, [0x63, 0xC2]);
    }
    emulator.stop().unwrap();
    assert_eq!(tries(&image, &key), 2);
    assert!(folder.join("card.vsc.served").exists());
    wait_for_empty_reader(pcscd.reader(0), CARD_TIMEOUT).unwrap();

    // The old copy put back: refused, and the try stays counted.
    std::fs::write(&image, &old).unwrap();
    let mut refused = serve(&machine, &image, &key_file, &[]);
    let status = refused.wait(Duration::from_secs(20)).unwrap();
    assert!(!status.success());
    let log = refused.output();
    assert!(
        log.contains("older than generation") && log.contains("--allow-rollback"),
        "{log}"
    );

    // --allow-rollback serves it, and says so.
    let mut allowed = serve(&machine, &image, &key_file, &["--allow-rollback"]);
    let card = wait_for_card(pcscd.reader(0), CARD_TIMEOUT).unwrap();
    assert_eq!(
        transmit(&card, &hex::decode("00200001").unwrap()).unwrap(),
        [0x63, 0xC3]
    );
    drop(card);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !allowed.output().contains("serving an older image") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        allowed.output().contains("serving an older image"),
        "{}",
        allowed.output()
    );
    allowed.stop().unwrap();
}
