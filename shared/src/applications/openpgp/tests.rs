//! Hex transcripts of the OpenPGP application on a token made in-process
//! ([`crate::sample::openpgp_token`]): `COMMAND -> RESPONSE`, `?` for a nibble that varies.

use super::*;
use crate::apdu::Command;
use crate::card::Card;
use crate::test_support::{data, run, selected, send, uncompressed_point};

fn hexs(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

const UID: [u8; 8] = [0x56, 0x53, 0x43, 0x44, 0x00, 0x00, 0x10, 0x01];
const SELECT: &str = "00A4040006D27600012401";
const PW1: &str = "0020008106 313233343536";
const PW1_OTHER: &str = "0020008206 313233343536";
const PW3: &str = "0020008308 3132333435363738";

fn token() -> Card {
    selected(crate::sample::openpgp_token(UID), SELECT)
}

#[test]
fn selection_by_full_and_partial_aid_and_the_application_data() {
    let mut card = crate::sample::openpgp_token(UID);
    run(
        &mut card,
        "00A4040C05A000000308 -> 6A82  # PIV is not there
         00A4040C06D27600012402 -> 6A82
         00A4040C04D2760001 -> 9000     # a partial AID
         00CA004F00 -> D27600012401 0304 FF56 00001001 0000 9000
         00CA5F5200 -> 0073C001C0059000 9000
         00CA00C400 -> 007F7F7F030003 9000
         00CA00C000 -> 7C0000FF080000FF0001 9000
         00CA00DE00 -> 010002000300 9000
         00CA00C100 -> 010800002000 9000
         00CA007A00 -> 7A0593030000009000
         00CA7F6600 -> 7F660802020800020208009000
         00CA006500 -> 65085B005F2D005F3500 9000
         00CA010300 -> 6982              # private use DO 3 needs PW1
         00CA5C0000 -> 6A88
         00A4000C023F00 -> 9000          # back to the file system
         00CA004F00 -> 6A88",
    );
    let response = send(&mut card, "00A4040006D2760001240100");
    assert!(response.starts_with("6F1284"), "{response}");
    let related = data(&send(&mut card, "00CA006E00"));
    assert_eq!(&related[..4], &[0x6E, 0x81, related[2], 0x4F]);
    let full = format!("00A4040C10{}", hexs(&aid(Some(crate::Uid(UID)))));
    run(&mut card, &format!("{full} -> 9000"));
}

#[test]
fn passwords_are_counted_blocked_and_reset() {
    let mut card = token();
    run(
        &mut card,
        &format!(
            "00200081 -> 63C3
             0020008106 313233343535 -> 6982    # wrong: counted
             00200081 -> 63C2
             {PW1} -> 9000
             00200081 -> 9000
             00200082 -> 63C3                  # 82 is a verification of its own
             00200081 -> 9000
             0020FF81 -> 9000
             00200081 -> 63C3
             0020008308 3132333435363737 -> 6982   # a wrong PW3 is counted
             00CA00C400 -> 007F7F7F030002 9000
             {PW3} -> 9000
             00CA00C400 -> 007F7F7F030003 9000
             0020008305 3132333435 -> 6982      # too short: wrong, not counted
             00CA00C400 -> 007F7F7F030003 9000
             0020008406 313233343536 -> 6A86
             # block PW1, then unblock it with the resetting code
             0020008106 303030303030 -> 6982
             0020008106 303030303030 -> 6982
             0020008106 303030303030 -> 6982
             {PW1} -> 6983
             00200081 -> 6983
             002C008106 313233343536 -> 6982          # no resetting code set
             00DA00D308 3837363534333231 -> 6982      # PW3 is no longer verified
             {PW3} -> 9000
             00DA00D308 3837363534333231 -> 9000      # PUT DATA D3 under PW3
             00CA00C400 -> 007F7F7F000303 9000
             002C00810E 3837363534333230 313233343536 -> 6982   # wrong code: counted
             00CA00C400 -> 007F7F7F000203 9000
             002C00810E 3837363534333231 363534333231 -> 9000
             0020008106 363534333231 -> 9000
             # PW3 resets PW1 to a value of its own
             002C028106 313233343536 -> 9000
             {PW1} -> 9000
             # CHANGE REFERENCE DATA: old and new
             002400810D 313233343536 31323334353637 -> 9000
             0020008107 31323334353637 -> 9000
             002400810B 313233343536 3132333435 -> 6A80   # new one too short: nothing counted
             002400810D 30303030303030 313233343536 -> 6982
             002400830E 3132333435363738 313233343536 -> 6A80
             00240083 -> 6700"
        ),
    );
}

#[test]
fn cardholder_data_needs_pw3() {
    let mut card = token();
    run(
        &mut card,
        &format!(
            "00DA005B0B 4D75737465726D616E6E -> 6700
             00DA005B0A 4D75737465726D616E6E -> 6982
             {PW3} -> 9000
             00DA005B0A 4D75737465726D616E6E -> 9000
             00DA5F2D02 6465 -> 9000
             00DA5F3501 32 -> 9000
             00DA5F3501 33 -> 6A80
             00DA5F5005 6874747073 -> 9000
             00DA005E04 6572696B -> 9000
             00DA004F01 00 -> 6982              # the AID is never written
             00DA00F901 00 -> 6A88              # KDF: not on this card
             00CA006500 -> 65155B0A4D75737465726D616E6E5F2D0264655F350132 9000
             00CA5F5000 -> 6874747073 9000
             00CA005E00 -> 6572696B 9000
             00DA010303 414243 -> 6982
             {PW1_OTHER} -> 9000
             00DA010303 414243 -> 9000
             00CA010300 -> 414243 9000
             00DA00C401 01 -> 9000
             00CA00C400 -> 017F7F7F030003 9000
             00DA00C401 02 -> 6A80"
        ),
    );
}

#[test]
fn ed25519_signatures_and_the_signature_counter() {
    let mut card = token();
    run(
        &mut card,
        &format!(
            "0047800002B600 -> 6982              # key generation needs PW3
             {PW3} -> 9000
             00DA00C10A 162B06010401DA470F01 -> 9000
             00DA00C20A 162B06010401DA470F01 -> 6A80   # EdDSA cannot decipher
             0047810002B600 -> 6A88
             002A9E9A20 {hash} -> 6982
             {PW1} -> 9000
             002A9E9A20 {hash} -> 6A88           # no key yet",
            hash = "11".repeat(32)
        ),
    );
    let generated = data(&send(&mut card, "0047800002B60000"));
    assert_eq!(&generated[..5], &[0x7F, 0x49, 0x22, 0x86, 0x20]);
    let public = generated[5..].to_vec();
    assert_eq!(data(&send(&mut card, "0047810002B60000")), generated);
    run(
        &mut card,
        &format!("00CA00DE00 -> 010102000300 9000\n{PW1} -> 9000"),
    );
    let hash = [0x11u8; 32];
    let signature = data(&send(&mut card, &format!("002A9E9A20{}00", hexs(&hash))));
    assert_eq!(signature.len(), 64);
    let key = openssl::pkey::PKey::public_key_from_raw_bytes(&public, openssl::pkey::Id::ED25519)
        .unwrap();
    let mut verifier = openssl::sign::Verifier::new_without_digest(&key).unwrap();
    assert!(verifier.verify_oneshot(&signature, &hash).unwrap());
    run(
        &mut card,
        &format!(
            "002A9E9A20 {hash} -> 6982          # PW1 was valid for one signature
             00CA007A00 -> 7A059303000001 9000
             00DA00C401 01 -> 9000
             {PW1} -> 9000
             002A9E9A20 {hash} 00 -> {any}9000
             002A9E9A20 {hash} 00 -> {any}9000
             00CA009300 -> 000003 9000",
            hash = "11".repeat(32),
            any = "?".repeat(128)
        ),
    );
}

#[test]
fn x25519_and_p256_decipherment() {
    let mut card = token();
    run(
        &mut card,
        &format!("{PW3} -> 9000\n00DA00C20B 122B060104019755010501 -> 9000"),
    );
    let generated = data(&send(&mut card, "0047800002B80000"));
    let card_public: [u8; 32] = generated[5..].try_into().unwrap();
    let ours = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
    let our_public = x25519_dalek::PublicKey::from(&ours);
    let expected = ours.diffie_hellman(&x25519_dalek::PublicKey::from(card_public));
    let command = format!(
        "002A808628A6267F4923862140{}00",
        hexs(our_public.as_bytes())
    );
    run(
        &mut card,
        &format!("{command} -> 6982\n{PW1_OTHER} -> 9000"),
    );
    assert_eq!(data(&send(&mut card, &command)), expected.as_bytes());
    run(
        &mut card,
        &format!("002A808626 A6237F4920862000{} -> 6A80", "00".repeat(31)),
    );

    // P-256 ECDH against OpenSSL.
    run(&mut card, "00DA00C209 122A8648CE3D030107 -> 9000");
    let generated = data(&send(&mut card, "0047800002B80000"));
    let point = &generated[5..];
    assert_eq!(point.len(), 65);
    use openssl::bn::BigNumContext;
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let mine = EcKey::generate(&group).unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let theirs = EcPoint::from_bytes(&group, point, &mut ctx).unwrap();
    let mut shared = EcPoint::new(&group).unwrap();
    shared
        .mul2(&group, &theirs, mine.private_key(), &mut ctx)
        .unwrap();
    let mut x = openssl::bn::BigNum::new().unwrap();
    let mut y = openssl::bn::BigNum::new().unwrap();
    shared
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
        .unwrap();
    let mine_point = uncompressed_point(&mine);
    let command = format!("002A808648A6467F49438641{}00", hexs(&mine_point));
    assert_eq!(
        data(&send(&mut card, &command)),
        x.to_vec_padded(32).unwrap()
    );
}

#[test]
fn rsa_2048_generation_decipherment_and_authentication() {
    let mut card = token();
    run(&mut card, &format!("{PW3} -> 9000\n{PW1_OTHER} -> 9000"));
    // The public key does not fit a short answer: 61xx and GET RESPONSE, or extended Le.
    let first = send(&mut card, "0047800002B80000");
    assert!(
        first.starts_with("7F4982010981820100") && first.ends_with("610E"),
        "{first}"
    );
    let rest = send(&mut card, "00C0000000");
    let generated = [
        data(&format!("{}9000", &first[..first.len() - 4])),
        data(&rest),
    ]
    .concat();
    assert_eq!(generated.len(), 5 + 4 + 256 + 2 + 3);
    assert_eq!(data(&send(&mut card, "00478100000002B8000000")), generated);
    let n = openssl::bn::BigNum::from_slice(&generated[9..265]).unwrap();
    let e = openssl::bn::BigNum::from_slice(&generated[267..]).unwrap();
    let public = openssl::rsa::Rsa::from_public_components(n, e).unwrap();
    let mut cryptogram = vec![0; 256];
    public
        .public_encrypt(
            b"a session key",
            &mut cryptogram,
            openssl::rsa::Padding::PKCS1,
        )
        .unwrap();
    let command = format!("002A808600010100{}0000", hexs(&cryptogram));
    assert_eq!(data(&send(&mut card, &command)), b"a session key");
    run(
        &mut card,
        "002A80860101 -> 6A80            # the padding indicator must be 00
         0088000004 01020304 -> 6A88          # no authentication key
         002241A4 03 830102 -> 9000           # MSE: authenticate with the decryption key
         002241A4 03 830104 -> 6A80",
    );
    let signature = data(&send(&mut card, "00880000000004010203040000"));
    let mut recovered = vec![0; 256];
    let len = public
        .public_decrypt(&signature, &mut recovered, openssl::rsa::Padding::PKCS1)
        .unwrap();
    assert_eq!(&recovered[..len], &[1, 2, 3, 4]);
}

#[test]
fn key_import_checks_every_size() {
    let mut card = token();
    run(
        &mut card,
        &format!("{PW3} -> 9000\n00DA00C109 132A8648CE3D030107 -> 9000"),
    );
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key = openssl::ec::EcKey::generate(&group).unwrap();
    let scalar = key.private_key().to_vec_padded(32).unwrap();
    let import = |template: &str, values: &[u8]| {
        let template = hex::decode(template).unwrap();
        let mut body = vec![0xB6, 0x00, 0x7F, 0x48, template.len() as u8];
        body.extend(&template);
        body.extend([0x5F, 0x48, values.len() as u8]);
        body.extend(values);
        let mut data = vec![0x4D, body.len() as u8];
        data.extend(body);
        format!("00DB3FFF{:02X}{}", data.len(), hexs(&data))
    };
    run(
        &mut card,
        &format!(
            "{} -> 6A80
             {} -> 6A80
             {} -> 6A80
             {} -> 6A80
             00DB3FFF03 4D0100 -> 6A80
             00DB3FFF02 4D00 -> 6A80
             00DB0000 02 4D00 -> 6A86
             0047810002B600 -> 6A88",
            import("9221", &[&scalar[..], &[0]].concat()),
            import("9220", &scalar[..31]),
            import("9320", &scalar),
            import("9220", &[0xFF; 32]),
        ),
    );
    run(
        &mut card,
        &format!(
            "{} -> 9000\n00CA00DE00 -> 010202000300 9000",
            import("9220", &scalar)
        ),
    );
    let public = data(&send(&mut card, "0047810002B60000"));
    let expected = uncompressed_point(&key);
    assert_eq!(&public[5..], &expected[..]);
    // A wrong PW3 session cannot import.
    run(
        &mut card,
        &format!("0020FF83 -> 9000\n{} -> 6982", import("9220", &scalar)),
    );
}

#[test]
fn terminate_and_activate_give_a_factory_token() {
    let mut card = token();
    run(
        &mut card,
        &format!(
            "00E60000 -> 6982
             {PW3} -> 9000
             00DA005B03 414243 -> 9000
             00E60000 -> 9000
             {SELECT} -> 6285
             00CA006500 -> 6285
             {PW3} -> 6285
             00FF0000 -> 6D00
             00440000 -> 9000
             {SELECT} -> 9000
             00CA006500 -> 65085B005F2D005F3500 9000
             {PW1} -> 9000
             # PW3 blocked: TERMINATE DF works without it (GnuPG's factory-reset)
             0020008308 3030303030303030 -> 6982
             0020008308 3030303030303030 -> 6982
             0020008308 3030303030303030 -> 6982
             00E60000 -> 9000
             00440000 -> 9000
             {SELECT} -> 9000
             {PW3} -> 9000"
        ),
    );
}

#[test]
fn chained_and_extended_commands() {
    let mut card = token();
    run(&mut card, &format!("{PW3} -> 9000"));
    let certificate: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let parts: Vec<String> = certificate.chunks(200).map(hexs).collect();
    run(
        &mut card,
        &format!(
            "10DA7F21C8{} -> 9000\n10DA7F21C8{} -> 9000\n00DA7F21C8{} -> 9000",
            parts[0], parts[1], parts[2]
        ),
    );
    assert_eq!(data(&send(&mut card, "00CA7F21000000")), certificate);
    // The same in one extended command; a chain of an instruction OpenPGP does not know.
    let command = format!("00DA7F2100{:04X}{}", certificate.len(), hexs(&certificate));
    run(&mut card, &format!("{command} -> 9000\n10B0000000 -> 6D00"));
}

/// A host that cannot save anything.
#[derive(Debug)]
struct Unsavable(Box<crate::card::CardState>);

impl crate::card::Persistence for Unsavable {
    fn save(&mut self, _state: &crate::card::CardState) -> Result<(), crate::card::SaveFailed> {
        Err(crate::card::SaveFailed)
    }
    fn durable(&self) -> Option<crate::card::CardState> {
        Some((*self.0).clone())
    }
}

#[test]
fn a_password_try_that_cannot_be_saved_is_never_compared() {
    // Issue 9, defect 1, for OpenPGP's PW1, PW3 and resetting code.
    let mut card = token();
    run(
        &mut card,
        &format!("{PW3} -> 9000\n00DA00D308 3837363534333231 -> 9000"),
    );
    let state = card.into_state();
    let mut card =
        Card::with_persistence(state.clone(), Box::new(Unsavable(Box::new(state.clone()))));
    run(
        &mut card,
        &format!(
            "{SELECT} -> 9000
             {PW1} -> 6581
             0020008106 303030303030 -> 6581
             {PW3} -> 6581
             00200081 -> 63C3
             00200083 -> 63C3
             00DA005B0141 -> 6982                      # nothing was unlocked
             002C00810E 3837363534333231 363534333231 -> 6581
             002400810C 313233343536 363534333231 -> 6581"
        ),
    );
    assert_eq!(card.state(), &state);
}

#[test]
fn commands_out_of_order_and_broken_chains() {
    let mut card = token();
    run(
        &mut card,
        &format!(
            "00C0000000 -> 6985                         # GET RESPONSE with nothing pending
             10DA005B0141 -> 9000
             00CA006E00 -> 6883                       # another command inside a chain
             {PW3} -> 9000
             002C028106 363534333231 -> 9000
             0020FF83 -> 9000
             002C028106 363534333231 -> 6982          # PW3 no longer verified
             0C200081 06 313233343536 -> 6985         # SM belongs to the VSC's channel"
        ),
    );
}

proptest::proptest! {
    #[test]
    fn no_command_panics_the_application_or_shows_a_private_key(
        commands in proptest::collection::vec(
            (proptest::sample::select(vec![0x20u8, 0x22, 0x24, 0x2A, 0x2C, 0x44, 0x47, 0x84, 0x88, 0xA5, 0xC0, 0xCA, 0xDA, 0xDB, 0xE6]),
             proptest::prelude::any::<u8>(), proptest::prelude::any::<u8>(),
             proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
             proptest::option::of(1usize..=300)),
            1..25)
    ) {
        let mut card = token();
        run(&mut card, &format!("{PW3} -> 9000\n00DA00C10A162B06010401DA470F01 -> 9000\n{PW1} -> 9000"));
        let generated = send(&mut card, "0047800002B60000");
        proptest::prop_assert!(generated.ends_with("9000"));
        // The private key as the image seals it: its last 32 bytes are the Ed25519 seed.
        let crate::applications::Application::OpenPgp(app) = &card.state().applications[0] else {
            unreachable!("the token holds OpenPGP only")
        };
        let sealed = postcard::to_allocvec(app.key(Slot::Signature).unwrap()).unwrap();
        let seed = sealed[sealed.len() - 32..].to_vec();
        for (ins, p1, p2, data, ne) in commands {
            let command = Command::new(0x00, ins, p1, p2).with_data(&data).with_ne(ne).to_vec().unwrap();
            let response = card.transmit(&command);
            proptest::prop_assert!(response.len() >= 2);
            proptest::prop_assert!(!response.windows(32).any(|w| w == seed.as_slice()));
        }
    }
}
