//! The OpenPGP application with the stock clients, through the real pcscd and vpcd: GnuPG's
//! `gpg --card-status` and `--card-edit`, signing, verifying and decrypting with card keys;
//! OpenSC's `opensc-tool`, `openpgp-tool`, `pkcs15-tool` and `pkcs11-tool`; and a VSC whose
//! image holds both the VSC file system and OpenPGP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use vsc_tests::{
    GnupgHome, KeyForm, Machine, Pkcs11Object, Pkcs11Slot, SLOT_0_READER, ServedCard, ToolOutput,
    check_sha256_signature, run_tool, transmit_hex, wait_for_card,
};

const CARD_TIMEOUT: Duration = Duration::from_secs(15);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// RSA-2048 key generation on the card, through gpg, takes a second or two; room for a slow
/// machine.
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(180);

const UID: [u8; 8] = [0x56, 0x53, 0x43, 0x44, 0x00, 0x00, 0x20, 0x01];

/// A served OpenPGP token: pcscd, the emulator, and a GnuPG home.
struct Token<'m> {
    served: ServedCard<'m>,
    gnupg: GnupgHome,
}

impl<'m> Token<'m> {
    /// `card` saved as an image and served in slot 0.
    fn serve(machine: &'m Machine, name: &str, card: vsc_core::card::Card) -> Token<'m> {
        let served = ServedCard::start(machine, name, card, CARD_TIMEOUT).unwrap();
        let gnupg = GnupgHome::new(machine.scratch()).unwrap();
        Token { served, gnupg }
    }

    fn gpg(&self, args: &[&str], stdin: &str) -> ToolOutput {
        self.gnupg.gpg(args, stdin, TOOL_TIMEOUT).unwrap()
    }
}

impl Drop for Token<'_> {
    fn drop(&mut self) {
        // scdaemon lets go of the reader before pcscd and the emulator stop.
        self.gnupg.stop_daemons();
    }
}

fn token_card() -> vsc_core::card::Card {
    vsc_core::sample::openpgp_token(UID)
}

/// `opensc-tool --name` on reader 0: the card as OpenSC names it.
fn opensc_card_name() -> ToolOutput {
    run_tool(
        "opensc-tool",
        &["--reader", "0", "--name"],
        "",
        TOOL_TIMEOUT,
    )
    .unwrap()
}

#[track_caller]
fn succeeded(output: &ToolOutput) -> &str {
    assert!(output.status.success(), "{output:#?}");
    &output.stdout
}

#[test]
fn gpg_card_status_shows_the_token() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "status", token_card());
    let status = token.gpg(&["--card-status"], "");
    let text = succeeded(&status);
    assert!(
        text.contains(
            "Application ID ...: D2760001240103 04FF56000020010000"
                .replace(' ', "")
                .as_str()
        ) || text.contains("D276000124010304FF56000020010000"),
        "{text}"
    );
    assert!(text.contains("Version ..........: 3.4"), "{text}");
    assert!(text.contains("Serial number ....: 00002001"), "{text}");
    assert!(text.contains("PIN retry counter : 3 0 3"), "{text}");
    assert!(text.contains("Signature counter : 0"), "{text}");
}

/// `gpg --card-edit` driven through `--command-fd 0`: every prompt (status `GET_LINE`,
/// `GET_BOOL`, `GET_HIDDEN`) takes the next input line.
fn card_edit(token: &Token<'_>, lines: &[&str], timeout: Duration) -> ToolOutput {
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    token
        .gnupg
        .gpg(
            &[
                "--command-fd",
                "0",
                "--status-fd",
                "1",
                "--expert",
                "--card-edit",
            ],
            &input,
            timeout,
        )
        .unwrap()
}

#[test]
fn gpg_card_edit_sets_cardholder_data_and_changes_the_pins() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "edit", token_card());
    let edit = card_edit(
        &token,
        &[
            "admin",
            "name",
            "Mustermann",
            "Erika",
            "12345678",
            "url",
            "https://example.org/erika.asc",
            "login",
            "erika",
            "quit",
        ],
        TOOL_TIMEOUT,
    );
    succeeded(&edit);
    let status = token.gpg(&["--card-status"], "");
    let text = succeeded(&status);
    assert!(
        text.contains("Name of cardholder: Erika Mustermann"),
        "{text}"
    );
    assert!(
        text.contains("URL of public key : https://example.org/erika.asc"),
        "{text}"
    );
    assert!(text.contains("Login data .......: erika"), "{text}");
}

/// `gpg --card-edit` `generate`: no backup of the encryption key, the admin PIN, the PIN, no
/// expiry, a user ID, and the PIN again for the self-signatures.
fn generate_keys(token: &Token<'_>, pin: &str) -> String {
    let generate = card_edit(
        token,
        &[
            "admin",
            "generate",
            "n",
            "12345678",
            pin,
            "0",
            "Erika Mustermann",
            "erika@example.org",
            "",
            pin,
            "quit",
        ],
        KEYGEN_TIMEOUT,
    );
    let text = succeeded(&generate);
    assert!(text.contains("[GNUPG:] KEY_CREATED B "), "{generate:#?}");
    text.to_string()
}

/// gpg signs a message with the card's signature key and verifies it; encrypts a message to the
/// card's encryption key and decrypts it with the card.
fn sign_verify_encrypt_decrypt(token: &Token<'_>, pin: &str) {
    let folder = token.gnupg.path();
    let message = folder.join("message.txt");
    std::fs::write(&message, "Hello from the VSC\n").unwrap();
    let signed = folder.join("message.txt.asc");
    let signing = token.gnupg.gpg_with_pin(
        pin,
        &[
            "--local-user",
            "erika@example.org",
            "--armor",
            "--output",
            signed.to_str().unwrap(),
            "--sign",
            message.to_str().unwrap(),
        ],
        TOOL_TIMEOUT,
    );
    succeeded(&signing.unwrap());
    let verify = token.gnupg.verify(&[&signed], TOOL_TIMEOUT).unwrap();
    assert!(verify.status.success(), "{verify:#?}");
    assert!(
        verify
            .stderr
            .contains("Good signature from \"Erika Mustermann <erika@example.org>\""),
        "{verify:#?}"
    );

    let encrypted = folder.join("secret.asc");
    let encrypt = token.gpg(
        &[
            "--batch",
            "--trust-model",
            "always",
            "--recipient",
            "erika@example.org",
            "--armor",
            "--output",
            encrypted.to_str().unwrap(),
            "--encrypt",
            message.to_str().unwrap(),
        ],
        "",
    );
    succeeded(&encrypt);
    let decrypt = token
        .gnupg
        .gpg_with_pin(
            pin,
            &["--decrypt", encrypted.to_str().unwrap()],
            TOOL_TIMEOUT,
        )
        .unwrap();
    assert_eq!(succeeded(&decrypt), "Hello from the VSC\n", "{decrypt:#?}");
}

#[test]
fn gpg_generates_ed25519_and_cv25519_keys_on_the_card_signs_and_decrypts() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "ed25519", token_card());
    let attributes = card_edit(
        &token,
        &[
            "admin", "key-attr", "2", "1", "12345678", "2", "1", "12345678", "2", "1", "12345678",
            "quit",
        ],
        TOOL_TIMEOUT,
    );
    succeeded(&attributes);
    generate_keys(&token, "123456");
    let status = token.gpg(&["--card-status"], "");
    let text = succeeded(&status);
    assert!(
        text.contains("Key attributes ...: ed25519 cv25519 ed25519"),
        "{text}"
    );
    assert!(text.contains("sec>  ed25519/"), "{text}");
    assert!(text.contains("ssb>  cv25519/"), "{text}");
    sign_verify_encrypt_decrypt(&token, "123456");
    let status = token.gpg(&["--card-status"], "");
    assert!(
        !succeeded(&status).contains("Signature counter : 0\n"),
        "{}",
        status.stdout
    );
}

#[test]
fn gpg_generates_rsa_2048_keys_on_the_card_signs_and_decrypts() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "rsa", token_card());
    generate_keys(&token, "123456");
    let status = token.gpg(&["--card-status"], "");
    let text = succeeded(&status);
    assert!(
        text.contains("Key attributes ...: rsa2048 rsa2048 rsa2048"),
        "{text}"
    );
    assert!(text.contains("sec>  rsa2048/"), "{text}");
    sign_verify_encrypt_decrypt(&token, "123456");
}

#[test]
fn gpg_card_edit_changes_the_pins() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "passwd", token_card());
    let passwd = card_edit(
        &token,
        &[
            "admin", "passwd", "1", "123456", "654321", "654321", "3", "12345678", "87654321",
            "87654321", "4", "87654321", "11223344", "11223344", "q", "quit",
        ],
        TOOL_TIMEOUT,
    );
    let text = succeeded(&passwd);
    assert_eq!(
        text.matches("[GNUPG:] SC_OP_SUCCESS").count(),
        3,
        "{passwd:#?}"
    );
    let status = token.gpg(&["--card-status"], "");
    assert!(
        succeeded(&status).contains("PIN retry counter : 3 3 3"),
        "{}",
        status.stdout
    );
    // The old PINs no longer work, the new ones do: name under the new admin PIN, asked again
    // by a new scdaemon.
    token.gnupg.stop_daemons();
    let old = card_edit(
        &token,
        &["admin", "name", "Mustermann", "Erika", "12345678", "quit"],
        TOOL_TIMEOUT,
    );
    assert!(old.stderr.contains("Bad PIN"), "{old:#?}");
    let new = card_edit(
        &token,
        &["admin", "name", "Mustermann", "Erika", "87654321", "quit"],
        TOOL_TIMEOUT,
    );
    assert!(succeeded(&new).contains("SC_OP_SUCCESS"), "{new:#?}");
    let status = token.gpg(&["--card-status"], "");
    let text = succeeded(&status);
    assert!(
        text.contains("Name of cardholder: Erika Mustermann"),
        "{text}"
    );
    // The wrong admin PIN was counted, and the right one gave the try back.
    assert!(text.contains("PIN retry counter : 3 3 3"), "{text}");
}

#[test]
fn opensc_names_the_card_lists_its_objects_and_signs_through_pkcs11() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "opensc", token_card());
    generate_keys(&token, "123456");
    // OpenSC and scdaemon share the reader; scdaemon lets go when it ends.
    token.gnupg.stop_daemons();
    let name = opensc_card_name();
    assert_eq!(succeeded(&name), "OpenPGP card v3.4 (FF56 00002001)\n");
    let info = run_tool(
        "openpgp-tool",
        &["--reader", "0", "-C", "-U", "-K"],
        "",
        TOOL_TIMEOUT,
    )
    .unwrap();
    let text = succeeded(&info);
    for expected in [
        "AID:             d2:76:00:01:24:01:03:04:ff:56:00:00:20:01:00:00",
        "Version:         3.4",
        "Serial number:   00002001",
        "Sig Algorithm:   RSA2048",
        "Dec Algorithm:   RSA2048",
        "Aut Algorithm:   RSA2048",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    let dump = run_tool(
        "pkcs15-tool",
        &["--reader", "0", "--dump"],
        "",
        TOOL_TIMEOUT,
    )
    .unwrap();
    let text = succeeded(&dump);
    for expected in [
        "PIN [User PIN]",
        "PIN [User PIN (sig)]",
        "PIN [Admin PIN]",
        "Private RSA Key [Signature key]",
        "Private RSA Key [Encryption key]",
        "Private RSA Key [Authentication key]",
        "Public RSA Key [Signature key]",
        "Access Flags   : [0x1D], sensitive, alwaysSensitive, neverExtract, local",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }

    let folder = token.gnupg.path();
    let data = folder.join("data.txt");
    std::fs::write(&data, "signed through PKCS#11\n").unwrap();
    let signature = folder.join("data.sig");
    let public = folder.join("public.der");
    // OpenSC puts the signature key, guarded by "User PIN (sig)", in the second slot.
    let slot = Pkcs11Slot::at_index(1);
    let sign = slot
        .sign_sha256_rsa("01", Some("123456"), &data, &signature, TOOL_TIMEOUT)
        .unwrap();
    succeeded(&sign);
    let read = slot
        .read_object(Pkcs11Object::PublicKey, "01", &public, TOOL_TIMEOUT)
        .unwrap();
    succeeded(&read);
    check_sha256_signature(&public, KeyForm::Der, &signature, &data, TOOL_TIMEOUT).unwrap();
}

#[test]
fn a_vsc_with_its_file_system_and_openpgp_answers_both() {
    let machine = Machine::lock().unwrap();
    let token = Token::serve(&machine, "both", vsc_core::sample::card_with_openpgp());
    let status = token.gpg(&["--card-status"], "");
    let text = succeeded(&status);
    assert!(text.contains("Serial number ....: 00000001"), "{text}");
    assert!(text.contains("PIN retry counter : 3 0 3"), "{text}");
    token.gnupg.stop_daemons();
    let name = opensc_card_name();
    assert_eq!(succeeded(&name), "OpenPGP card v3.4 (FF56 00000001)\n");
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
    assert_eq!(send("00200001"), "6A86", "VERIFY 01 is not OpenPGP's");
    assert_eq!(
        send("00A4080C0460006001"),
        "9000",
        "back to the file system"
    );
    assert_eq!(send("00200001"), "63C3", "the VSC's user PIN");
    drop(card);
    assert!(!token.served.emulator_log().contains("panicked"));
}
