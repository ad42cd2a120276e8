//! A short, printed session with the in-process card OS: a blank chip is pre-initialized and
//! personalized in plain, then an application reads public data, is refused private data,
//! verifies the PIN and reads it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use vsc_core::apdu::{Response, Status};
use vsc_core::card::Card;
use vsc_core::sample;

fn main() {
    let mut card = Card::blank();
    println!("A blank chip, ATR {}", hex::encode_upper(card.atr()));
    println!(
        "\nPre-initialization and personalization ({} commands):",
        sample::script().len()
    );
    for (what, command) in sample::script() {
        let response = Response::parse(&card.transmit(&command))
            .unwrap_or(Response::status(Status::NoPreciseDiagnosis));
        println!("  {:<32} {}", what, response.status);
    }
    card.reset();
    println!(
        "\nThe card is {}; ATR {}",
        card.state().life_cycle.name(),
        hex::encode_upper(card.atr())
    );

    let mut verify = vec![0x00, 0x20, 0x00, 0x01, 0x08];
    verify.extend_from_slice(sample::USER_PIN);
    let mut wrong = verify.clone();
    wrong[5] = b'9';
    let session: [(&str, Vec<u8>, bool); 8] = [
        (
            "select DF.PUBLIC by AID",
            hex::decode("00A4040C06F05653430001").unwrap_or_default(),
            false,
        ),
        (
            "read EF 5001 by SFI 1",
            hex::decode("00B0810010").unwrap_or_default(),
            true,
        ),
        (
            "select EF 6001 by path",
            hex::decode("00A4080C0460006001").unwrap_or_default(),
            false,
        ),
        (
            "read the address (no PIN yet)",
            hex::decode("00B0000000").unwrap_or_default(),
            false,
        ),
        ("verify a wrong PIN", wrong, false),
        (
            "ask for tries left",
            hex::decode("00200001").unwrap_or_default(),
            false,
        ),
        ("verify the PIN", verify, false),
        (
            "read the address",
            hex::decode("00B0000000").unwrap_or_default(),
            true,
        ),
    ];
    println!("\nAn application session:");
    for (what, command, show_text) in session {
        let response = Response::parse(&card.transmit(&command))
            .unwrap_or(Response::status(Status::NoPreciseDiagnosis));
        let text = String::from_utf8_lossy(&response.data)
            .trim_end_matches('\0')
            .to_string();
        if show_text && !response.data.is_empty() {
            println!("  {:<32} {}  \"{}\"", what, response.status, text);
        } else {
            println!("  {:<32} {}", what, response.status);
        }
    }
}
