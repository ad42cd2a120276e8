//! The OpenPGP profile through the real binary: `records sample` makes holders that prepare,
//! the PIN mailer gets PW1, PW3 and the resetting code, the token's transcript (it carries keys
//! and PINs) rests sealed and leaves the store only encrypted or with `--clear`, the
//! certificate, public keys and fingerprints export, and `blank` refuses a UID that is not a
//! token's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vsc-personalizer"))
        .args(args)
        .current_dir(dir)
        .env_remove("VSC_STORE")
        .output()
        .unwrap()
}

#[track_caller]
fn ok(output: Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn sampled_holders_prepare_and_their_exports_follow_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let profile = format!("{}/profiles/openpgp.toml", env!("CARGO_MANIFEST_DIR"));
    ok(run(
        &[
            "records",
            "sample",
            "--profile",
            &profile,
            "--count",
            "20",
            "--out",
            "holders.csv",
        ],
        dir.path(),
    ));
    ok(run(&["keys", "init", "--out", "issuer.key"], dir.path()));
    ok(run(
        &[
            "keys",
            "public-key",
            "--key-file",
            "issuer.key",
            "--out",
            "preparation.pub",
        ],
        dir.path(),
    ));
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let prepared = ok(run(
        &[
            "prepare",
            "--profile",
            &profile,
            "--records",
            "holders.csv",
            "--key-file",
            "issuer.key",
            "--store",
            "vsc.db",
            "--recipient",
            &recipient,
            "--exports",
            "certificates.asc",
        ],
        dir.path(),
    ));
    assert!(
        prepared.contains("prepared 20 cards, 0 failed"),
        "{prepared}"
    );
    let uid = std::fs::read_to_string(dir.path().join("holders.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();

    // The batch file of certificates: gpg imports every token's.
    let certificates = std::fs::read_to_string(dir.path().join("certificates.asc")).unwrap();
    assert_eq!(
        certificates
            .matches("-----BEGIN PGP PUBLIC KEY BLOCK-----")
            .count(),
        20
    );
    let home = dir.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let import = Command::new("gpg")
        .env("GNUPGHOME", &home)
        .args(["--batch", "--import"])
        .arg(dir.path().join("certificates.asc"))
        .output()
        .unwrap();
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "all"])
        .status();
    let report = String::from_utf8_lossy(&import.stderr);
    assert!(import.status.success(), "{report}");
    assert!(report.contains("imported: 20"), "{report}");

    // The PIN mailer: PW1 (6 digits), PW3 and the resetting code (8 digits) of each token.
    let file = std::fs::read_dir(dir.path().join("pin-mailer"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".csv.age"))
        .unwrap();
    let decryptor = age::Decryptor::new(std::fs::File::open(file).unwrap()).unwrap();
    let mut plain = String::new();
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_string(&mut plain)
        .unwrap();
    let mut lines = plain.lines();
    assert_eq!(
        lines.next(),
        Some("uid,record,pin,admin_pin,resetting_code")
    );
    let row: Vec<&str> = lines
        .find(|l| l.starts_with(&uid))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(
        (row[2].len(), row[3].len(), row[4].len()),
        (6, 8, 8),
        "{row:?}"
    );
    assert!(
        row[2..]
            .iter()
            .all(|pin| pin.bytes().all(|b| b.is_ascii_digit()))
    );

    // The transcript carries keys and PINs: refused without protection, sealed in the store.
    let refused = run(
        &[
            "export",
            "transcript",
            "--uid",
            &uid,
            "--store",
            "vsc.db",
            "--key-file",
            "issuer.key",
            "--out",
            "t.vsct",
        ],
        dir.path(),
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("give --recipient"),
        "{refused:?}"
    );
    assert!(!dir.path().join("t.vsct").exists());
    let without_key = run(
        &[
            "export",
            "transcript",
            "--uid",
            &uid,
            "--store",
            "vsc.db",
            "--clear",
            "--trusted-key",
            "preparation.pub",
            "--out",
            "t.vsct",
        ],
        dir.path(),
    );
    assert!(
        String::from_utf8_lossy(&without_key.stderr).contains("sealed in the store"),
        "{without_key:?}"
    );
    ok(run(
        &[
            "export",
            "transcript",
            "--uid",
            &uid,
            "--store",
            "vsc.db",
            "--key-file",
            "issuer.key",
            "--recipient",
            &recipient,
            "--out",
            "t.vsct.age",
        ],
        dir.path(),
    ));
    let sealed = std::fs::read(dir.path().join("t.vsct.age")).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1"));
    assert!(!String::from_utf8_lossy(&sealed).contains(row[3]));

    // The public exports need no key and no protection.
    ok(run(
        &[
            "export",
            "certificate",
            "--uid",
            &uid,
            "--store",
            "vsc.db",
            "--out",
            "c.asc",
        ],
        dir.path(),
    ));
    let certificate = std::fs::read_to_string(dir.path().join("c.asc")).unwrap();
    assert!(certificate.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    ok(run(
        &[
            "export",
            "public-keys",
            "--uid",
            &uid,
            "--store",
            "vsc.db",
            "--out",
            "k.pem",
        ],
        dir.path(),
    ));
    let pem = std::fs::read_to_string(dir.path().join("k.pem")).unwrap();
    assert_eq!(
        pem.matches("-----BEGIN PUBLIC KEY-----").count(),
        3,
        "{pem}"
    );
    ok(run(
        &[
            "export",
            "fingerprints",
            "--uid",
            &uid,
            "--store",
            "vsc.db",
            "--out",
            "f.txt",
        ],
        dir.path(),
    ));
    let fingerprints = std::fs::read_to_string(dir.path().join("f.txt")).unwrap();
    assert_eq!(fingerprints.lines().count(), 3);
    assert!(
        fingerprints.starts_with("signature ed25519 "),
        "{fingerprints}"
    );

    // A UID that is not a token's: refused by blank.
    let blank = run(
        &[
            "blank",
            "--profile",
            &profile,
            "--uid",
            "5653434400001001",
            "--key-file",
            "issuer.key",
            "--out",
            "b.vsc",
        ],
        dir.path(),
    );
    assert_eq!(blank.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&blank.stderr).contains("0000, the manufacturer"));
}
