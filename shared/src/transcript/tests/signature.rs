//! Signed transcripts: what data preparation signs verifies, and nothing an attacker can make
//! without the preparation key does: an edited step with a recomputed digest, a removed step, a
//! downgrade to the unsigned version, another issuer's key.

use super::*;
use crate::crypto::MasterKey;

fn key(seed: u8) -> PreparationKey {
    PreparationKey::derive(&MasterKey::from_bytes(&[seed; 32]))
}

fn personalization() -> Transcript {
    let mut transcript = sample();
    transcript.steps.retain(
        |step| matches!(step, Step::Command { expect, .. } if !expect.to_string().contains('?')),
    );
    transcript.steps.push(Step::Command {
        comment: Some(Comment::new("activate the card: it becomes operational").unwrap()),
        command: CommandApdu::new(hex::decode("00440000023F00").unwrap()).unwrap(),
        expect: Expectation::exact(vec![0x90, 0x00]).unwrap(),
    });
    transcript
}

/// Replaces the body of a signed text and recomputes the digest, keeping the signature line:
/// what an attacker without the key can do.
fn recompute(signed: &str, edit: impl Fn(&str) -> String) -> String {
    let (body, rest) = signed.split_at(signed.find("sha256 ").unwrap());
    let signature = rest.split_once('\n').unwrap().1;
    format!("{}{signature}", seal(&edit(body)))
}

#[test]
fn a_signed_transcript_verifies_and_prints_back() {
    let key = key(1);
    let (text, digest) = personalization().encode_signed(&key);
    assert!(text.starts_with("VSC-TRANSCRIPT 2\n"));
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("ed25519 {} ", key.verify_key().id())),
        "{last}"
    );
    let document = Document::parse(&text).unwrap();
    assert_eq!(document.version, 2);
    assert_eq!(document.digest, digest);
    assert_eq!(document.transcript, personalization());
    assert_eq!(
        document.verify(&[key.verify_key()]),
        Ok(key.verify_key().id())
    );
    assert_eq!(
        document.transcript.encode_signed(&key).0,
        text,
        "Ed25519 is deterministic"
    );
    // Transcript::parse reads it too (the steps, not the trust).
    assert_eq!(Transcript::parse(&text).unwrap(), personalization());
}

#[test]
fn an_edited_step_with_a_recomputed_digest_does_not_verify() {
    let key = key(1);
    let (text, _) = personalization().encode_signed(&key);
    let tampered = recompute(&text, |body| body.replace("> 00B0000000", "> 00B0000010"));
    assert_ne!(tampered, text);
    let document = Document::parse(&tampered).expect("the digest matches again");
    assert_eq!(
        document.verify(&[key.verify_key()]),
        Err(SignatureError::Invalid(key.verify_key().id()))
    );
}

#[test]
fn a_removed_activate_step_does_not_verify() {
    let key = key(1);
    let (text, _) = personalization().encode_signed(&key);
    let tampered = recompute(&text, |body| {
        body.replace(
            "# activate the card: it becomes operational\n> 00440000023F00\n< 9000\n",
            "",
        )
    });
    let document = Document::parse(&tampered).unwrap();
    assert_eq!(
        document.transcript.steps.len(),
        personalization().steps.len() - 1
    );
    assert!(matches!(
        document.verify(&[key.verify_key()]),
        Err(SignatureError::Invalid(_))
    ));
}

#[test]
fn unsigned_foreign_and_stripped_transcripts_are_refused() {
    let key = key(1);
    let (unsigned, _) = personalization().encode();
    let document = Document::parse(&unsigned).unwrap();
    assert_eq!(document.version, 1);
    assert_eq!(
        document.verify(&[key.verify_key()]),
        Err(SignatureError::Unsigned)
    );

    let (foreign, _) = personalization().encode_signed(&self::key(2));
    assert_eq!(
        Document::parse(&foreign)
            .unwrap()
            .verify(&[key.verify_key()]),
        Err(SignatureError::UnknownKey(self::key(2).verify_key().id()))
    );

    let (signed, _) = personalization().encode_signed(&key);
    let stripped: String = signed
        .lines()
        .take(signed.lines().count() - 1)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(matches!(
        Document::parse(&stripped),
        Err(TranscriptError::SignatureMissing { .. })
    ));
    let doubled = format!("{signed}{}\n", signed.lines().last().unwrap());
    assert!(matches!(
        Document::parse(&doubled),
        Err(TranscriptError::TrailingContent { .. })
    ));
    let mangled = signed.replace("ed25519 ", "ed25519  ");
    assert!(Document::parse(&mangled).is_err());
}

#[test]
fn every_changed_character_of_the_signature_line_is_detected() {
    let key = key(1);
    let (text, _) = personalization().encode_signed(&key);
    let start = text.rfind("ed25519 ").unwrap();
    for index in start..text.len() - 1 {
        let mut tampered = text.clone().into_bytes();
        tampered[index] = if tampered[index] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        let verified = Document::parse(&tampered)
            .ok()
            .map(|d| d.verify(&[key.verify_key()]));
        assert!(!matches!(verified, Some(Ok(_))), "at {index}");
    }
}

#[test]
fn the_preparation_key_is_hkdf_of_the_master_key() {
    // Known answer: master 00 01 .. 1F. The seed, HKDF-SHA256(IKM = master, no salt,
    // info = "vsc/v1/transcript/ed25519", L = 32), is B28F1E86…30DD3B (Python's hmac and
    // hashlib); the public key of that seed (RFC 8032) was computed independently with Python's
    // `cryptography` (OpenSSL).
    let master = MasterKey::from_bytes(&std::array::from_fn(|i| i as u8));
    let verify = PreparationKey::derive(&master).verify_key();
    assert_eq!(hex::encode_upper(verify.to_bytes()), VERIFY_KEY_VECTOR);
    assert_eq!(
        format!("{:?}", PreparationKey::derive(&master)),
        format!("PreparationKey({})", verify.id())
    );
}

const VERIFY_KEY_VECTOR: &str = "53FDDD3BD5804C844D6D75AAC86F6B1449759897BFFE060DE5266CE7F40F96E5";

#[test]
fn verification_key_files_round_trip_strictly() {
    let verify = key(3).verify_key();
    let text = verify.encode();
    assert_eq!(VerifyKey::decode(&text), Ok(verify));
    let lower_hex = format!(
        "vsc-transcript-key 1\ned25519 {}\nkey-id {}\n",
        hex::encode(verify.to_bytes()),
        verify.id().to_string().to_lowercase()
    );
    assert_eq!(VerifyKey::decode(&lower_hex), Ok(verify));
    let other = key(4).verify_key();
    let swapped = text.replace(
        &hex::encode_upper(verify.to_bytes()),
        &hex::encode_upper(other.to_bytes()),
    );
    assert_eq!(VerifyKey::decode(&swapped), Err(KeyFileError::IdMismatch));
    for broken in [
        "",
        "vsc-transcript-key 1\n",
        &text.replace('\n', "\r\n"),
        &format!("{text}\n"),
    ] {
        assert!(VerifyKey::decode(broken).is_err(), "{broken:?}");
    }
}
