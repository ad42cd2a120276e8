//! Escrowed OpenPGP secret keys made by GnuPG (`gpg --quick-gen-key`, passphrase-protected)
//! imported through a profile with the real binary: the token's fingerprints are the keys' own,
//! as gpg computes them; without the passphrase, or with a wrong one, the record is refused
//! naming its line and field, and nothing of that card is stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const PROFILE: &str = r#"
id = "escrowed"
version = 1
[uid]
source = "field"
field = "token"
[openpgp]
user_id = { field = "name" }
[openpgp.signature]
algorithm = "ed25519"
source = "imported"
format = "openpgp"
field = "key"
passphrase_field = "passphrase"
[openpgp.decryption]
algorithm = "cv25519"
source = "imported"
format = "openpgp"
field = "key"
passphrase_field = "passphrase"
[openpgp.authentication]
algorithm = "ed25519"
source = "imported"
format = "openpgp"
field = "key"
passphrase_field = "passphrase"
[openpgp.pw1]
generate = 6
[openpgp.pw3]
generate = 8
"#;

fn gpg(home: &Path, args: &[&str]) -> Output {
    let output = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "escrow pass",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output
}

fn personalizer(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vsc-personalizer"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn escrowed_gnupg_keys_keep_their_fingerprints_and_bad_passphrases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(home.join("gpg-agent.conf"), "allow-loopback-pinentry\n").unwrap();
    gpg(
        &home,
        &[
            "--quick-gen-key",
            "Escrow <escrow@example.org>",
            "ed25519",
            "sign",
            "0",
        ],
    );
    let listed = gpg(&home, &["--with-colons", "--list-keys"]);
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    let primary = text
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .unwrap()
        .split(':')
        .nth(9)
        .unwrap()
        .to_string();
    gpg(
        &home,
        &["--quick-add-key", &primary, "cv25519", "encr", "0"],
    );
    gpg(
        &home,
        &["--quick-add-key", &primary, "ed25519", "auth", "0"],
    );
    let listed = gpg(&home, &["--with-colons", "--list-keys"]);
    let fingerprints: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .map(|l| l.split(':').nth(9).unwrap().to_string())
        .collect();
    assert_eq!(fingerprints.len(), 3);
    let exported = gpg(&home, &["--armor", "--export-secret-keys", &primary]);
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "all"])
        .status();
    let key_file = dir.path().join("escrow.asc");
    std::fs::write(&key_file, &exported.stdout).unwrap();

    std::fs::write(dir.path().join("escrowed.toml"), PROFILE).unwrap();
    let key = key_file.display();
    std::fs::write(
        dir.path().join("records.csv"),
        format!(
            "token,name,key,passphrase\n\
             0000FF5600007001,Escrow,{key},escrow pass\n\
             0000FF5600007002,Escrow,{key},\n\
             0000FF5600007003,Escrow,{key},wrong pass\n"
        ),
    )
    .unwrap();
    let init = personalizer(dir.path(), &["keys", "init", "--out", "issuer.key"]);
    assert!(init.status.success(), "{init:?}");
    let prepare = personalizer(
        dir.path(),
        &[
            "prepare",
            "--profile",
            "escrowed.toml",
            "--records",
            "records.csv",
            "--key-file",
            "issuer.key",
            "--store",
            "vsc.db",
            "--no-pin-mailer",
        ],
    );
    let stderr = String::from_utf8_lossy(&prepare.stderr).into_owned();
    assert_eq!(prepare.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "line 3, field `key` (for [openpgp.signature]): the key file is encrypted and the profile names no passphrase_field"
        ) || stderr.contains("line 3, field `key` (for [openpgp.signature]): the key file is encrypted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4, field `key` (for [openpgp.signature]): the passphrase does not open the key file"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("escrow pass") && !stderr.contains("wrong pass"),
        "{stderr}"
    );
    let fingerprints_file = dir.path().join("fingerprints.txt");
    let export = personalizer(
        dir.path(),
        &[
            "export",
            "fingerprints",
            "--uid",
            "0000FF5600007001",
            "--store",
            "vsc.db",
            "--out",
            "fingerprints.txt",
        ],
    );
    assert!(export.status.success(), "{export:?}");
    let on_card: Vec<String> = std::fs::read_to_string(&fingerprints_file)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(2).unwrap().to_string())
        .collect();
    assert_eq!(on_card, fingerprints, "the card's fingerprints are gpg's");
    for refused in ["0000FF5600007002", "0000FF5600007003"] {
        let export = personalizer(
            dir.path(),
            &[
                "export",
                "fingerprints",
                "--uid",
                refused,
                "--store",
                "vsc.db",
                "--out",
                "x.txt",
            ],
        );
        assert!(!export.status.success(), "{refused} was stored");
    }
}
