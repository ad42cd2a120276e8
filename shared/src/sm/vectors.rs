//! The channel against independent test vectors: `vectors.txt`, made by
//! `scripts/gen-sm-vectors.py` (pycryptodome, written from the specification, not from this
//! code).
//!
//! No published worked example of ICAO secure messaging with AES was at hand (ICAO Doc 9303
//! Part 11 appendix D works its SM example with 3DES); the AES building blocks the channel uses
//! are checked against their standards in `crypto` (SP 800-38A for the IV block and CBC,
//! RFC 4493 / SP 800-38B for CMAC, RFC 5869 for HKDF).

use super::*;
use crate::apdu::{Command, Response};
use crate::crypto::MasterKey;

const VECTORS: &str = include_str!("vectors.txt");

struct Step {
    name: String,
    command: Vec<u8>,
    protected_command: Vec<u8>,
    response: Vec<u8>,
    protected_response: Vec<u8>,
}

struct Vectors {
    master: Vec<u8>,
    uid: Vec<u8>,
    k_enc: Vec<u8>,
    k_mac: Vec<u8>,
    steps: Vec<Step>,
}

fn parse_vectors() -> Vectors {
    let mut vectors = Vectors {
        master: Vec::new(),
        uid: Vec::new(),
        k_enc: Vec::new(),
        k_mac: Vec::new(),
        steps: Vec::new(),
    };
    for line in VECTORS.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(' ').unwrap();
        if key == "step" {
            vectors.steps.push(Step {
                name: value.to_string(),
                command: Vec::new(),
                protected_command: Vec::new(),
                response: Vec::new(),
                protected_response: Vec::new(),
            });
            continue;
        }
        let bytes = hex::decode(value).unwrap();
        let step = vectors.steps.last_mut();
        match (key, step) {
            ("master", _) => vectors.master = bytes,
            ("uid", _) => vectors.uid = bytes,
            ("k-enc", _) => vectors.k_enc = bytes,
            ("k-mac", _) => vectors.k_mac = bytes,
            ("command", Some(step)) => step.command = bytes,
            ("protected-command", Some(step)) => step.protected_command = bytes,
            ("response", Some(step)) => step.response = bytes,
            ("protected-response", Some(step)) => step.protected_response = bytes,
            _ => panic!("unexpected line {line:?}"),
        }
    }
    vectors
}

#[test]
fn keys_are_derived_as_the_vectors_say() {
    let vectors = parse_vectors();
    let master = MasterKey::from_bytes(&vectors.master.try_into().unwrap());
    let keys = ChannelKeys::derive(&master, &vectors.uid.try_into().unwrap());
    assert_eq!(keys.enc().secret_bytes(), vectors.k_enc);
    assert_eq!(keys.mac().secret_bytes(), vectors.k_mac);
}

#[test]
fn both_ends_reproduce_every_step() {
    let vectors = parse_vectors();
    assert_eq!(vectors.steps.len(), 10);
    let master = MasterKey::from_bytes(&vectors.master.try_into().unwrap());
    let keys = ChannelKeys::derive(&master, &vectors.uid.try_into().unwrap());
    let mut terminal = TerminalChannel::new(keys.clone());
    let mut card = CardChannel::new(keys);
    for step in &vectors.steps {
        let name = &step.name;
        let command = Command::parse(&step.command).unwrap();
        let protected = terminal.wrap_command(&command).unwrap();
        assert_eq!(
            hex::encode_upper(&protected),
            hex::encode_upper(&step.protected_command),
            "{name}"
        );

        let plain = card
            .unwrap_command(&Command::parse(&step.protected_command).unwrap())
            .unwrap();
        assert_eq!(*plain, step.command, "{name}");

        let response = Response::parse(&step.response).unwrap();
        let protected_response = card.wrap_response(&response.data, response.status);
        assert_eq!(
            hex::encode_upper(&protected_response),
            hex::encode_upper(&step.protected_response),
            "{name}"
        );

        assert_eq!(
            terminal.unwrap_response(&step.protected_response).unwrap(),
            response,
            "{name}"
        );
    }
}
