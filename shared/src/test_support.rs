//! Support for the card OS's and the applications' unit tests: hex transcripts (`COMMAND ->
//! RESPONSE`, in the style of apdu-dispatch's dispatch tests) run against a card in process,
//! and the OpenSSL encodings the answers are checked against.

use crate::card::Card;

/// Runs `script` against `card`: one `COMMAND -> RESPONSE` per line (hex, spaces ignored), `?`
/// for a nibble that may be anything; `#` starts a comment.
#[track_caller]
pub(crate) fn run(card: &mut Card, script: &str) {
    for (number, line) in script.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (command, expected) = line.split_once("->").expect("COMMAND -> RESPONSE");
        let response = send(card, command);
        let expected: String = expected.chars().filter(|c| !c.is_whitespace()).collect();
        let matches = response.len() == expected.len()
            && response
                .chars()
                .zip(expected.chars())
                .all(|(r, e)| e == '?' || r == e.to_ascii_uppercase());
        assert!(
            matches,
            "line {}: {line}\n  expected {expected}\n  got      {response}",
            number + 1
        );
    }
}

/// Sends `command` (hex, spaces ignored) and returns the whole response in upper-case hex.
#[track_caller]
pub(crate) fn send(card: &mut Card, command: &str) -> String {
    let command = hex::decode(command.replace(' ', "")).expect("command hex");
    hex::encode_upper(card.transmit(&command))
}

/// The data of a response (upper-case hex, as [`send`] gives it) that ends in `9000`.
#[track_caller]
pub(crate) fn data(response: &str) -> Vec<u8> {
    assert!(response.ends_with("9000"), "{response}");
    hex::decode(&response[..response.len() - 4]).expect("response hex")
}

/// `card` once `select` (a SELECT command in hex) has answered `9000`.
#[track_caller]
pub(crate) fn selected(mut card: Card, select: &str) -> Card {
    run(&mut card, &format!("{select} -> 9000"));
    card
}

/// `key`'s public point uncompressed (SEC 1: `04 X Y`), as OpenSSL encodes it: what the card's
/// public keys and key agreements are checked against.
pub(crate) fn uncompressed_point<T: openssl::pkey::HasPublic>(
    key: &openssl::ec::EcKeyRef<T>,
) -> Vec<u8> {
    let mut context = openssl::bn::BigNumContext::new().expect("a BN context");
    key.public_key()
        .to_bytes(
            key.group(),
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut context,
        )
        .expect("the point's encoding")
}
