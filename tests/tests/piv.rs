//! The PIV application with the stock clients, through the real pcscd and vpcd:
//! yubico-piv-tool (status, generate, import-certificate, verify-pin, change-pin, unblock-pin),
//! OpenSC's piv-tool (management key authentication, loading a certificate), opensc-tool and
//! pkcs15-tool, pkcs11-tool signing with the 9C key verified by openssl; and a VSC whose image
//! holds the VSC file system, OpenPGP and PIV.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vsc_tests::{
    KeyForm, Machine, Pkcs11Object, Pkcs11Slot, SLOT_0_READER, ServedCard, ToolOutput,
    check_sha256_signature, run_command, transmit_hex, wait_for_card,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);
/// Room for RSA-2048 key generation on the card on a slow machine.
const TOOL_TIMEOUT: Duration = Duration::from_secs(90);
const UID: [u8; 8] = [0x56, 0x53, 0x43, 0x44, 0x00, 0x00, 0x30, 0x01];
/// The factory management key in the text form piv-tool reads (`PIV_EXT_AUTH_KEY`).
const DEFAULT_KEY_TEXT: &str =
    "01:02:03:04:05:06:07:08:01:02:03:04:05:06:07:08:01:02:03:04:05:06:07:08";

/// A served PIV token: pcscd, the emulator, and a folder for the tools' files.
struct Token<'m> {
    served: ServedCard<'m>,
}

impl<'m> Token<'m> {
    /// `card` saved as an image and served in slot 0.
    fn serve(machine: &'m Machine, name: &str, card: vsc_core::card::Card) -> Token<'m> {
        let served = ServedCard::start(machine, name, card, CARD_TIMEOUT).unwrap();
        Token { served }
    }

    /// Runs `program` in the token's folder.
    fn run(&self, program: &str, args: &[&str], env: &[(&str, &Path)]) -> ToolOutput {
        let mut command = Command::new(program);
        command.args(args).current_dir(self.served.folder());
        for (name, value) in env {
            command.env(name, value);
        }
        run_command(command, "", TOOL_TIMEOUT).unwrap()
    }

    /// yubico-piv-tool on the token's reader (it looks for "Yubikey" by default).
    fn yubico(&self, args: &[&str]) -> ToolOutput {
        let mut all = vec!["--reader", SLOT_0_READER];
        all.extend_from_slice(args);
        self.run("yubico-piv-tool", &all, &[])
    }

    fn path(&self, name: &str) -> PathBuf {
        self.served.path(name)
    }
}

impl Drop for Token<'_> {
    fn drop(&mut self) {
        let log = self.served.emulator_log();
        if !std::thread::panicking() {
            assert!(!log.contains("panicked"), "{log}");
        }
    }
}

#[track_caller]
fn succeeded(output: &ToolOutput) -> String {
    assert!(output.status.success(), "{output:#?}");
    format!("{}{}", output.stdout, output.stderr)
}

#[track_caller]
fn failed(output: &ToolOutput) -> String {
    assert!(!output.status.success(), "{output:#?}");
    format!("{}{}", output.stdout, output.stderr)
}

/// A certificate for the public key in `public` (PEM), issued by a throwaway test CA made in
/// the token's folder: yubico-piv-tool 2.2's `selfsign-certificate` fails with OpenSSL 3
/// (docs/piv.md, "Client quirks"), so the certificate is made beside the card and imported.
fn certificate_for(token: &Token<'_>, public: &str, subject: &str, out: &str) {
    if !token.path("ca.pem").exists() {
        for args in [
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-subj",
                "/CN=VSC test CA",
                "-days",
                "30",
                "-out",
                "ca.pem",
            ][..],
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "request.key",
                "-subj",
                "/CN=request",
                "-out",
                "request.csr",
            ],
        ] {
            succeeded(&token.run("openssl", args, &[]));
        }
    }
    succeeded(&token.run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "request.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-force_pubkey",
            public,
            "-subj",
            subject,
            "-days",
            "30",
            "-out",
            out,
        ],
        &[],
    ));
}

#[test]
fn yubico_piv_tool_shows_the_status_generates_imports_and_manages_the_pins() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "yubico", vsc_core::sample::piv_token(UID));
    let guid = hex::encode(vsc_core::applications::piv::objects::guid(vsc_core::Uid(
        UID,
    )));
    let status = succeeded(&token.yubico(&["--action", "status"]));
    for expected in [
        "Version:\t5.4.3",
        "Serial Number:\t12289",
        "PIN tries left:\t3",
        &format!("3410{guid}"),
    ] {
        assert!(status.contains(expected), "{expected}: {status}");
    }
    assert!(!status.contains("Slot 9a"), "{status}");

    // Generation needs the management key: yubico-piv-tool authenticates with the default.
    let generated = token.yubico(&[
        "-a", "generate", "-s", "9a", "-A", "RSA2048", "-o", "9a.pem",
    ]);
    assert!(succeeded(&generated).contains("Successfully generated a new private key"));
    succeeded(&token.yubico(&[
        "-a", "generate", "-s", "9c", "-A", "ECCP256", "-o", "9c.pem",
    ]));
    // The management key is checked: another one fails and generates nothing.
    let wrong = token.yubico(&[
        "--key=01020304050607080102030405060708010203040506070A",
        "-a",
        "generate",
        "-s",
        "9d",
        "-A",
        "ECCP256",
        "-o",
        "9d.pem",
    ]);
    failed(&wrong);
    certificate_for(&token, "9a.pem", "/CN=Erika Mustermann (9a)", "9a.crt");
    certificate_for(&token, "9c.pem", "/CN=Erika Mustermann (9c)", "9c.crt");
    for slot in ["9a", "9c"] {
        let imported = token.yubico(&[
            "-a",
            "import-certificate",
            "-s",
            slot,
            "-i",
            &format!("{slot}.crt"),
        ]);
        assert!(succeeded(&imported).contains("Successfully imported a new certificate"));
    }
    let status = succeeded(&token.yubico(&["-a", "status"]));
    for expected in [
        "Slot 9a:\t\n\tAlgorithm:\tRSA2048\n\tSubject DN:\tCN=Erika Mustermann (9a)\n\tIssuer DN:\tCN=VSC test CA",
        "Slot 9c:\t\n\tAlgorithm:\tECCP256\n\tSubject DN:\tCN=Erika Mustermann (9c)",
    ] {
        assert!(status.contains(expected), "{expected}: {status}");
    }
    assert!(!status.contains("Slot 9d"), "{status}");

    // The PIN: a wrong one is counted, the right one gives the try back.
    let wrong = token.yubico(&["-a", "verify-pin", "-P", "654321"]);
    assert!(failed(&wrong).contains("2 tries left"), "{wrong:#?}");
    assert!(succeeded(&token.yubico(&["-a", "status"])).contains("PIN tries left:\t2"));
    succeeded(&token.yubico(&["-a", "verify-pin", "-P", "123456"]));
    assert!(succeeded(&token.yubico(&["-a", "status"])).contains("PIN tries left:\t3"));
    let changed = token.yubico(&["-a", "change-pin", "-P", "123456", "-N", "654321"]);
    assert!(succeeded(&changed).contains("Successfully changed the pin code"));
    failed(&token.yubico(&["-a", "verify-pin", "-P", "123456"]));
    succeeded(&token.yubico(&["-a", "verify-pin", "-P", "654321"]));
    // Blocked, then unblocked with the PUK.
    for _ in 0..3 {
        failed(&token.yubico(&["-a", "verify-pin", "-P", "000000"]));
    }
    let blocked = token.yubico(&["-a", "verify-pin", "-P", "654321"]);
    assert!(failed(&blocked).contains("blocked"), "{blocked:#?}");
    failed(&token.yubico(&["-a", "unblock-pin", "-P", "87654321", "-N", "111111"]));
    let unblocked = token.yubico(&["-a", "unblock-pin", "-P", "12345678", "-N", "111111"]);
    assert!(succeeded(&unblocked).contains("Successfully unblocked the pin code"));
    succeeded(&token.yubico(&["-a", "verify-pin", "-P", "111111"]));
}

#[test]
fn opensc_names_the_card_lists_its_objects_and_pkcs11_signs_with_the_9c_key() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "opensc", vsc_core::sample::piv_token(UID));
    succeeded(&token.yubico(&[
        "-a", "generate", "-s", "9c", "-A", "RSA2048", "-o", "9c.pem",
    ]));
    certificate_for(&token, "9c.pem", "/CN=Erika Mustermann", "9c.crt");
    succeeded(&token.yubico(&["-a", "import-certificate", "-s", "9c", "-i", "9c.crt"]));

    let name = succeeded(&token.run("opensc-tool", &["--reader", "0", "--name"], &[]));
    assert_eq!(name, "Personal Identity Verification Card\n");
    let dump = succeeded(&token.run("pkcs15-tool", &["--reader", "0", "--dump"], &[]));
    for expected in [
        "PIN [PIN]",
        "PIN [PIV PUK]",
        "Private RSA Key [SIGN key]",
        "Key ref        : 156 (0x9C)",
        "Public RSA Key [SIGN pubkey]",
        "X.509 Certificate [Certificate for Digital Signature]",
        "Data object 'Card Holder Unique Identifier'",
        "Data (20 bytes): 7E124F0BA0000003080000100001005F2F024000",
    ] {
        assert!(dump.contains(expected), "{expected}: {dump}");
    }

    std::fs::write(token.path("data.txt"), "signed through PKCS#11 with 9C\n").unwrap();
    let slot = Pkcs11Slot::first();
    let sign = slot.sign_sha256_rsa(
        "02",
        Some("123456"),
        &token.path("data.txt"),
        &token.path("data.sig"),
        TOOL_TIMEOUT,
    );
    succeeded(&sign.unwrap());
    // The certificate read back from the card, through PKCS#11, gives the public key.
    let read = slot.read_object(
        Pkcs11Object::Certificate,
        "02",
        &token.path("card.der"),
        TOOL_TIMEOUT,
    );
    succeeded(&read.unwrap());
    succeeded(&token.run(
        "openssl",
        &[
            "x509", "-inform", "DER", "-in", "card.der", "-pubkey", "-noout", "-out", "card.pub",
        ],
        &[],
    ));
    check_sha256_signature(
        &token.path("card.pub"),
        KeyForm::Pem,
        &token.path("data.sig"),
        &token.path("data.txt"),
        TOOL_TIMEOUT,
    )
    .unwrap();
    // Without the PIN the key does not sign.
    let unauthorized = slot.sign_sha256_rsa(
        "02",
        None,
        &token.path("data.txt"),
        &token.path("none.sig"),
        TOOL_TIMEOUT,
    );
    failed(&unauthorized.unwrap());
}

#[test]
fn piv_tool_authenticates_with_the_management_key_and_loads_a_certificate() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "piv-tool", vsc_core::sample::piv_token(UID));
    std::fs::write(token.path("default.key"), DEFAULT_KEY_TEXT).unwrap();
    std::fs::write(
        token.path("wrong.key"),
        DEFAULT_KEY_TEXT.replacen("01", "11", 1),
    )
    .unwrap();
    succeeded(&token.run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "loaded.key",
            "-subj",
            "/CN=loaded by piv-tool",
            "-days",
            "30",
            "-out",
            "loaded.pem",
        ],
        &[],
    ));
    // A wrong management key: the card answers 6982 and piv-tool stops before PUT DATA.
    let wrong = token.run(
        "piv-tool",
        &[
            "--reader",
            "0",
            "--admin",
            "M:9B:03",
            "--cert",
            "9E",
            "--in",
            "loaded.pem",
        ],
        &[("PIV_EXT_AUTH_KEY", &token.path("wrong.key"))],
    );
    assert!(failed(&wrong).contains("admin_mode failed"), "{wrong:#?}");
    failed(&token.yubico(&["-a", "read-certificate", "-s", "9e"]));
    // The factory key: mutual authentication, then the certificate is written (piv-tool 0.23
    // exits non-zero even then; what counts is what the card holds afterwards).
    let loaded = token.run(
        "piv-tool",
        &[
            "--reader",
            "0",
            "--admin",
            "M:9B:03",
            "--cert",
            "9D",
            "--in",
            "loaded.pem",
        ],
        &[("PIV_EXT_AUTH_KEY", &token.path("default.key"))],
    );
    assert!(!loaded.stderr.contains("admin_mode failed"), "{loaded:#?}");
    let read = succeeded(&token.yubico(&["-a", "read-certificate", "-s", "9d"]));
    let written = std::fs::read_to_string(token.path("loaded.pem")).unwrap();
    assert_eq!(read.trim(), written.trim());
}

#[test]
fn a_vsc_with_its_file_system_openpgp_and_piv_answers_all_three() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(
        &machine,
        "all",
        vsc_core::sample::card_with_openpgp_and_piv(),
    );
    let status = succeeded(&token.yubico(&["-a", "status"]));
    assert!(status.contains("Serial Number:\t1\n"), "{status}");
    // OpenSC probes PIV before OpenPGP.
    let name = succeeded(&token.run("opensc-tool", &["--reader", "0", "--name"], &[]));
    assert_eq!(name, "Personal Identity Verification Card\n");
    let card = wait_for_card(SLOT_0_READER, CARD_TIMEOUT).unwrap();
    let send = |apdu: &str| transmit_hex(&card, apdu).unwrap();
    assert_eq!(
        send("00A4040C06F05653430001"),
        "9000",
        "the VSC's public DF"
    );
    assert_eq!(
        send("00B0810010"),
        format!("{}9000", hex::encode_upper("ERIKA MUSTERMANN"))
    );
    assert_eq!(send("00A4040006D27600012401"), "9000", "OpenPGP");
    assert_eq!(send("00CA005B00"), "9000", "no name yet");
    assert_eq!(send("00A4040005A000000308"), "9000", "PIV by its RID");
    assert_eq!(send("0020008008393939393939FFFF"), "63C2", "PIV's PIN");
    assert_eq!(send("00A4040006D27600012401"), "9000");
    assert_eq!(
        send("0020008106313233343536"),
        "9000",
        "OpenPGP's PW1 is apart"
    );
    assert_eq!(send("00A4080C0460006001"), "9000", "the file system");
    assert_eq!(send("00200001"), "63C3", "the VSC's user PIN is apart");
    assert_eq!(send("00A4040005A000000308"), "9000");
    assert_eq!(send("00200080"), "63C2", "PIV's try was counted and kept");
}
