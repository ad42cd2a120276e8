//! Hex transcripts of the PIV application on a token made in-process
//! ([`crate::sample::piv_token`]): `COMMAND -> RESPONSE`, `?` for a nibble that varies; key
//! operations checked by OpenSSL; and property tests (no panic, no secret in any answer, no
//! witness or challenge twice).

use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::rsa::{Padding, Rsa};
use proptest::prelude::*;

use super::*;
use crate::apdu::Command;
use crate::card::Card;
use crate::security::BlockKey;
use crate::test_support::{data, run, selected, send, uncompressed_point};

/// One command in extended form (Ne 65536), its data and status word.
fn exchange(card: &mut Card, header: [u8; 4], data: &[u8]) -> (Vec<u8>, u16) {
    let command = Command::new(header[0], header[1], header[2], header[3])
        .with_data(data)
        .with_ne(Some(65_536))
        .extended()
        .to_vec()
        .unwrap();
    let mut response = card.transmit(&command);
    let sw = response.split_off(response.len() - 2);
    (response, u16::from_be_bytes([sw[0], sw[1]]))
}

const UID: [u8; 8] = [0x56, 0x53, 0x43, 0x44, 0x00, 0x00, 0x30, 0x01];
const SELECT: &str = "00A4040005A000000308";
const PIN: &str = "0020008008 313233343536FFFF";
const WRONG_PIN: &str = "0020008008 393939393939FFFF";

fn token() -> Card {
    selected(crate::sample::piv_token(UID), SELECT)
}

fn default_key() -> BlockKey {
    BlockKey::new(BlockAlgorithm::Tdes, &DEFAULT_MANAGEMENT_KEY).unwrap()
}

/// Mutual authentication with `key`, as yubico-piv-tool does it: `9000` on success.
fn authenticate(card: &mut Card, key: &BlockKey) -> u16 {
    let algorithm = management_algorithm_byte(key.algorithm);
    let block = key.algorithm.block_len();
    let (witness, sw) = exchange(
        card,
        [0x00, 0x87, algorithm, 0x9B],
        &[0x7C, 0x02, 0x80, 0x00],
    );
    if sw != 0x9000 {
        return sw;
    }
    assert_eq!(witness[..4], [0x7C, block as u8 + 2, 0x80, block as u8]);
    let plain = key.decrypt_block(&witness[4..]).unwrap();
    let challenge: Vec<u8> = (0..block as u8).collect();
    let mut data = vec![0x7C, 2 * block as u8 + 4, 0x80, block as u8];
    data.extend_from_slice(&plain);
    data.extend_from_slice(&[0x81, block as u8]);
    data.extend_from_slice(&challenge);
    let (response, sw) = exchange(card, [0x00, 0x87, algorithm, 0x9B], &data);
    if sw == 0x9000 {
        assert_eq!(response[..4], [0x7C, block as u8 + 2, 0x82, block as u8]);
        assert!(key.verify_encryption(&challenge, &response[4..]).unwrap());
    }
    sw
}

#[test]
fn selection_by_rid_and_full_aid_answers_the_application_property_template() {
    let mut card = crate::sample::piv_token(UID);
    run(
        &mut card,
        "00A4040C06D27600012401 -> 6A82      # no OpenPGP on this token
         00A4040005A000000308 -> 9000        # yubico-piv-tool: the RID, no Le
         00A404000BA000000308000010000100 00 -> 6111 4F06000010000100 7907 4F05A000000308 9000
         00A4040009A00000030800001000 00 -> 6111 4F06000010000100 7907 4F05A000000308 9000
         00A404000CA000000308000010000100FF -> 6A82
         00FD000000 -> 050403 9000              # GET VERSION
         00F8000000 -> 00003001 9000            # GET SERIAL: the UID's last four bytes
         00CA004F00 -> 6D00                   # GET DATA even is not PIV's
         00E6000000 -> 6D00",
    );
}

#[test]
fn the_factory_chuid_ccc_and_discovery_object_derive_from_the_uid() {
    let mut card = token();
    let guid = objects::guid(crate::Uid(UID));
    // Version 8 and variant 10 (RFC 9562), and a known answer for this UID.
    assert_eq!(guid[6] >> 4, 0x8);
    assert_eq!(guid[8] >> 6, 0b10);
    assert_eq!(hex::encode_upper(guid), GUID_OF_UID);
    assert_ne!(objects::guid(crate::Uid([0; 8])), guid);
    let chuid = data(&send(&mut card, "00CB3FFF05 5C035FC102 00"));
    let expected = format!(
        "533B 3019{} 3410{GUID_OF_UID} 3508{} 3E00 FE00",
        hex::encode_upper(objects::FASC_N),
        hex::encode_upper(objects::CHUID_EXPIRATION)
    )
    .replace(' ', "");
    assert_eq!(hex::encode_upper(&chuid), expected);
    assert_eq!(objects::chuid_guid(&chuid[2..]), Some(guid));
    run(
        &mut card,
        "00CB3FFF05 5C035FC107 00 -> 5333 F015A000000116FF02 565343000000 5653434400003001 F10121 F20121 F300 F40100 F50110 F600 F700 FA00 FB00 FC00 FD00 FE00 9000
         00CB3FFF03 5C017E 00 -> 7E12 4F0BA000000308000010000100 5F2F024000 9000
         00CB3FFF05 5C035FC105 00 -> 6A82       # no certificate yet
         00CB3FFF05 5C035FC109 00 -> 6982       # printed information needs the PIN
         00CB3FFF05 5C035FC103 00 -> 6982       # so do the fingerprints
         00CB3FFF05 5C035FC1FF 00 -> 6A82       # no such object
         00CB3FFF04 5C025FC1 00 -> 6A82
         00CB3FFF05 5D035FC105 00 -> 6A80       # not a tag list
         00CB3FFF04 5C035FC1 00 -> 6A80         # malformed TLV
         00CB3FFF00 -> 6A80
         00CB3FFE05 5C035FC105 00 -> 6A86",
    );
    run(
        &mut card,
        &format!(
            "{PIN} -> 9000
             00CB3FFF05 5C035FC109 00 -> 6A82"
        ),
    );
}

/// SHA-256("VSC PIV GUID" ‖ 5653434400003001), the first 16 bytes, version 8, variant 10.
const GUID_OF_UID: &str = "0E13C84171428BA7A975D8AF2F146B1B";

#[test]
fn verify_counts_tries_blocks_and_the_puk_unblocks() {
    let mut card = token();
    run(
        &mut card,
        &format!(
            "00200080 -> 63C3                      # the status query
             {WRONG_PIN} -> 63C2
             00200080 -> 63C2
             {PIN} -> 9000
             00200080 -> 9000
             0020FF80 -> 9000                      # P1 FF: forget it
             0020FF80 -> 9000
             00200080 -> 63C3
             0020008007 313233343536FF -> 6A80     # not 8 bytes: no try
             0020008008 31323334FFFFFFFF -> 6A80   # 4 characters: no try
             0020008008 313233FF34FFFFFF -> 6A80   # FF inside: no try
             00200080 -> 63C3
             00200081 -> 63C3                      # the PUK's counter
             0020008108 3132333435363738 -> 6A88   # the PUK is not verified alone
             0020000008 313233343536FFFF -> 6A88   # no global PIN
             0020009608 313233343536FFFF -> 6A88   # no pairing code
             0020018008 313233343536FFFF -> 6A86
             0020FF8001 00 -> 6700
             {WRONG_PIN} -> 63C2
             {WRONG_PIN} -> 63C1
             {WRONG_PIN} -> 63C0
             {WRONG_PIN} -> 6983
             {PIN} -> 6983                           # blocked: the right PIN too
             00200080 -> 6983
             002C008010 3132333435363737 313131313131FFFF -> 63C2   # wrong PUK
             002C008010 3132333435363738 3131FFFFFFFFFFFF -> 6A80   # new PIN too short
             002C008010 3132333435363738 313131313131FFFF -> 9000
             00200080 -> 63C3
             {PIN} -> 63C2                          # the old PIN is gone
             0020008008 313131313131FFFF -> 9000
             00200081 -> 63C3                        # the PUK got its try back
             002C018010 3132333435363738 313131313131FFFF -> 6A86
             002C008008 3132333435363738 -> 6A80"
        ),
    );
}

#[test]
fn change_reference_data_changes_the_pin_and_the_puk() {
    let mut card = token();
    run(
        &mut card,
        "0024008010 393939393939FFFF 3635343332FFFFFF -> 6A80   # new too short: no try
         00200080 -> 63C3
         0024008010 393939393939FFFF 363534333231FFFF -> 63C2   # wrong current
         0024008010 313233343536FFFF 363534333231FFFF -> 9000
         00200080 -> 9000                                       # verified by the change
         0020008008 313233343536FFFF -> 63C2
         0020008008 363534333231FFFF -> 9000
         0024008110 3132333435363738 3837363534333231 -> 9000   # the PUK
         002C008010 3132333435363738 313131313131FFFF -> 63C2
         002C008010 3837363534333231 313131313131FFFF -> 9000
         0024008108 3132333435363738 -> 6A80
         0024018010 313233343536FFFF 363534333231FFFF -> 6A86
         0024009B10 313233343536FFFF 363534333231FFFF -> 6A88",
    );
}

#[test]
fn mutual_authentication_with_the_default_management_key() {
    let mut card = token();
    // Writes need the management key.
    run(&mut card, "00DB3FFF08 5C035FC109 5301AA -> 6982");
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    run(&mut card, "00DB3FFF08 5C035FC109 5301AA -> 9000");
    // Another key does not authenticate: 6982, and the earlier success is forgotten.
    let wrong = BlockKey::new(BlockAlgorithm::Tdes, &[0x11; 24]).unwrap();
    assert_eq!(authenticate(&mut card, &wrong), 0x6982);
    run(&mut card, "00DB3FFF08 5C035FC109 5301AA -> 6982");
    // An AES key's algorithm against the 3DES key: 6A86.
    let aes = BlockKey::new(BlockAlgorithm::Aes128, &[0x11; 16]).unwrap();
    assert_eq!(authenticate(&mut card, &aes), 0x6A86);
}

#[test]
fn general_authenticate_out_of_order_or_malformed_is_refused() {
    let mut card = token();
    run(
        &mut card,
        "# the second step without the first, for both exchanges
         008703 9B16 7C14 80080102030405060708 81080102030405060708 -> 6985
         008703 9B0C 7C0A 82080102030405060708 -> 6985
         # the card enciphers no challenge for a terminal that proved nothing
         008703 9B0E 7C0C 81080102030405060708 8200 -> 6A80
         008703 9B04 7C028000 00 -> 7C0A8008???????????????? 9000
         # a witness answers the very next command only
         00200080 -> 63C3
         008703 9B16 7C14 80080102030405060708 81080102030405060708 -> 6985
         008703 9B04 7C028100 00 -> 7C0A8108???????????????? 9000
         008703 9B0B 7C09 820701020304050607 -> 6982          # wrong length: wrong
         008703 9B0C 7C0A 82080102030405060708 -> 6985        # the challenge is spent
         008703 9B04 7C028000 -> 7C0A8008???????????????? 9000   # no Le: answered all the same
         008703 9B04 7D028000 -> 6A80                          # not a 7C template
         008703 9B04 7C038000 -> 6A80                          # malformed TLV
         008703 9B06 7C0480008100 -> 6A80                      # two requests
         008703 9B06 7C0480008000 -> 6A80                      # a tag twice
         008703 9B04 7C028300 -> 6A80                          # an unknown tag
         008703 9B00 -> 6A80
         008711 9B04 7C028000 -> 6A86                          # not the key's algorithm
         008703 9904 7C028000 -> 6A86                          # no key 99
         008707 9A06 7C0482008100 -> 6A88                      # no key: before the data
         008707 9A08 7C06820081020102 -> 6A88                  # no key in 9A yet
         008711 9A08 7C06820081020102 -> 6A88",
    );
}

#[test]
fn external_authentication_as_piv_tool_does_it() {
    let mut card = token();
    let key = default_key();
    let (response, sw) = exchange(
        &mut card,
        [0x00, 0x87, 0x03, 0x9B],
        &[0x7C, 0x02, 0x81, 0x00],
    );
    assert_eq!(sw, 0x9000);
    assert_eq!(response[..4], [0x7C, 0x0A, 0x81, 0x08]);
    let answer = key.encrypt_block(&response[4..]).unwrap();
    let mut data = vec![0x7C, 0x0A, 0x82, 0x08];
    data.extend_from_slice(&answer);
    let (empty, sw) = exchange(&mut card, [0x00, 0x87, 0x03, 0x9B], &data);
    assert_eq!((empty.as_slice(), sw), (&[][..], 0x9000));
    run(&mut card, "00DB3FFF08 5C035FC109 5301AA -> 9000");
    // The same answer again: the challenge is spent.
    let (_, sw) = exchange(&mut card, [0x00, 0x87, 0x03, 0x9B], &data);
    assert_eq!(sw, 0x6985);
    // A wrong answer to a fresh challenge: 6982, and nothing is allowed.
    let (_, sw) = exchange(
        &mut card,
        [0x00, 0x87, 0x03, 0x9B],
        &[0x7C, 0x02, 0x81, 0x00],
    );
    assert_eq!(sw, 0x9000);
    let (_, sw) = exchange(&mut card, [0x00, 0x87, 0x03, 0x9B], &data);
    assert_eq!(sw, 0x6982);
    run(&mut card, "00DB3FFF08 5C035FC109 5301AA -> 6982");
}

#[test]
fn put_data_and_get_data_of_every_kind_of_object() {
    let mut card = token();
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    // A certificate longer than a short APDU: chained in, read back through GET RESPONSE.
    let certificate: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let mut value = vec![0x70, 0x82, 0x07, 0xD0];
    value.extend_from_slice(&certificate);
    value.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
    let mut put = vec![0x5C, 0x03, 0x5F, 0xC1, 0x0A, 0x53, 0x82];
    put.extend_from_slice(&(value.len() as u16).to_be_bytes());
    put.extend_from_slice(&value);
    for (i, chunk) in put.chunks(255).enumerate() {
        let last = (i + 1) * 255 >= put.len();
        let mut apdu = vec![
            if last { 0x00 } else { 0x10 },
            0xDB,
            0x3F,
            0xFF,
            chunk.len() as u8,
        ];
        apdu.extend_from_slice(chunk);
        assert_eq!(card.transmit(&apdu), [0x90, 0x00]);
    }
    let mut read = card.transmit(&hex::decode("00CB3FFF055C035FC10A00").unwrap());
    let mut got = Vec::new();
    while read[read.len() - 2] == 0x61 {
        got.extend_from_slice(&read[..read.len() - 2]);
        read = card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]);
    }
    got.extend_from_slice(&read[..read.len() - 2]);
    assert_eq!(read[read.len() - 2..], [0x90, 0x00]);
    assert_eq!(got[..4], [0x53, 0x82, 0x07, 0xD9]);
    assert_eq!(got[4..], value[..]);
    run(
        &mut card,
        "00DB3FFF0C 5C035FC109 5305 0102030405 -> 9000    # printed information
         00CB3FFF05 5C035FC109 00 -> 6982
         00DB3FFF06 7F6103 020101 -> 9000                  # the BIT group as it is
         00CB3FFF04 5C027F61 00 -> 7F6103 020101 9000
         00DB3FFF0A 5C035FFF00 5303 010203 -> 9000         # Yubico's admin data
         00CB3FFF05 5C035FFF00 00 -> 5303010203 9000
         00DB3FFF0A 5C035FC120 5303 010203 -> 9000         # retired slot 95's certificate
         00CB3FFF05 5C035FC120 00 -> 5303010203 9000
         00CB3FFF05 5C035FC121 00 -> 6982                  # iris images: behind the PIN
         00DB3FFF07 5C017E 5302 0102 -> 6A80               # the discovery object is the card's
         00DB3FFF0A 5C035FC1FF 5303 010203 -> 6A80        # no such object
         00DB3FFF08 5C035FC109 5401AA -> 6A80               # not 53
         00DB3FFF08 5C035FC109 5302AA -> 6A80               # malformed TLV
         00DB3FFF05 5C035FC109 -> 6A80                      # no value
         00DB3FFE08 5C035FC109 5301AA -> 6A86
         00DB3FFF07 5C035FC109 5300 -> 9000                 # empty: deleted
         00DB3FFF07 5C035FC109 5300 -> 9000",
    );
    run(
        &mut card,
        &format!(
            "{PIN} -> 9000
             00CB3FFF05 5C035FC109 00 -> 6A82"
        ),
    );
    // Too long for the object: 6A84, and nothing changes.
    let mut put = vec![0x5C, 0x03, 0x5F, 0xC1, 0x09, 0x53, 0x82, 0x0B, 0xED];
    put.extend_from_slice(&[0xAB; 3053]);
    let (_, sw) = exchange(&mut card, [0x00, 0xDB, 0x3F, 0xFF], &put);
    assert_eq!(sw, 0x6A84);
    run(&mut card, "00CB3FFF05 5C035FC109 00 -> 6A82");
}

/// The key pair's public key from a GENERATE answer.
fn public_key(answer: &[u8]) -> crate::security::PublicKey {
    let template = crate::tlv::parse_one(answer).unwrap();
    assert_eq!(crate::tlv::tag_number(template.tag()), 0x7F49);
    let iso7816_tlv::ber::Value::Constructed(items) = template.value() else {
        panic!("7F49 is constructed")
    };
    match crate::tlv::find_primitive(items, 0x86) {
        Some(point) => crate::security::PublicKey::Ec {
            point: point.to_vec(),
        },
        None => crate::security::PublicKey::Rsa {
            n: crate::tlv::find_primitive(items, 0x81).unwrap().to_vec(),
            e: crate::tlv::find_primitive(items, 0x82).unwrap().to_vec(),
        },
    }
}

fn generate(
    card: &mut Card,
    slot: u8,
    algorithm: u8,
    policy: Option<u8>,
) -> crate::security::PublicKey {
    let mut template = vec![0xAC, 0x03, 0x80, 0x01, algorithm];
    if let Some(policy) = policy {
        template.extend_from_slice(&[0xAA, 0x01, policy]);
        template[1] += 3;
    }
    let (answer, sw) = exchange(card, [0x00, 0x47, 0x00, slot], &template);
    assert_eq!(sw, 0x9000);
    public_key(&answer)
}

/// `7C { 82, 81 data }` or `7C { 82, 85 point }`, answered `7C { 82 result }`.
fn operate(card: &mut Card, algorithm: u8, slot: u8, tag: u8, input: &[u8]) -> (Vec<u8>, u16) {
    let mut inner = vec![0x82, 0x00, tag];
    crate::tlv::push_length(&mut inner, input.len());
    inner.extend_from_slice(input);
    let mut data = vec![0x7C];
    crate::tlv::push_length(&mut data, inner.len());
    data.extend_from_slice(&inner);
    let (answer, sw) = exchange(card, [0x00, 0x87, algorithm, slot], &data);
    if sw != 0x9000 {
        return (answer, sw);
    }
    let template = crate::tlv::parse_one(&answer).unwrap();
    let iso7816_tlv::ber::Value::Constructed(items) = template.value() else {
        panic!("7C is constructed")
    };
    (
        crate::tlv::find_primitive(items, 0x82).unwrap().to_vec(),
        sw,
    )
}

fn ec_verify(nid: Nid, point: &[u8], digest: &[u8], der: &[u8]) -> bool {
    let group = EcGroup::from_curve_name(nid).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let point = openssl::ec::EcPoint::from_bytes(&group, point, &mut ctx).unwrap();
    let key = EcKey::from_public_key(&group, &point).unwrap();
    EcdsaSig::from_der(der)
        .unwrap()
        .verify(digest, &key)
        .unwrap()
}

#[test]
fn generated_keys_sign_decipher_and_agree() {
    let mut card = token();
    run(&mut card, "0047009A05 AC03800111 -> 6982");
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    run(
        &mut card,
        "0047009A05 AC03800106 -> 6A80          # RSA-1024 is not on this card
         0047009B05 AC03800111 -> 6A86          # 9B holds no key pair
         0047019A05 AC03800111 -> 6A86
         0047009A05 AD03800111 -> 6A80
         0047009A08 AC0680011 1AB0102 -> 6A80    # touch policy: no button
         0047009A08 AC06800111AA0104 -> 6A80     # no such PIN policy",
    );
    let rsa = generate(&mut card, 0x9A, 0x07, None);
    let p256 = generate(&mut card, 0x9D, 0x11, None);
    let p384 = generate(&mut card, 0x9E, 0x14, None);
    // 9A and 9D need the PIN, 9E (PIN never) does not.
    let digest = [0x5A; 32];
    assert_eq!(operate(&mut card, 0x11, 0x9D, 0x81, &digest).1, 0x6982);
    let (signature, sw) = operate(&mut card, 0x14, 0x9E, 0x81, &[0x5A; 48]);
    assert_eq!(sw, 0x9000);
    let crate::security::PublicKey::Ec { point } = &p384 else {
        panic!()
    };
    assert!(ec_verify(Nid::SECP384R1, point, &[0x5A; 48], &signature));
    assert!(!ec_verify(Nid::SECP384R1, point, &[0x5B; 48], &signature));
    run(&mut card, &format!("{PIN} -> 9000"));
    let (signature, sw) = operate(&mut card, 0x11, 0x9D, 0x81, &digest);
    assert_eq!(sw, 0x9000);
    let crate::security::PublicKey::Ec { point } = &p256 else {
        panic!()
    };
    assert!(ec_verify(Nid::X9_62_PRIME256V1, point, &digest, &signature));
    // The wrong algorithm for the key: 6A86.
    assert_eq!(operate(&mut card, 0x14, 0x9D, 0x81, &digest).1, 0x6A86);

    // RSA: the terminal pads; the card applies the private key.
    let crate::security::PublicKey::Rsa { n, e } = &rsa else {
        panic!()
    };
    let public = Rsa::from_public_components(
        BigNum::from_slice(n).unwrap(),
        BigNum::from_slice(e).unwrap(),
    )
    .unwrap();
    let mut block = vec![0x00, 0x01];
    block.extend_from_slice(&[0xFF; 256 - 3 - 51]);
    block.push(0x00);
    block.extend_from_slice(&hex::decode("3031300d060960864801650304020105000420").unwrap());
    block.extend_from_slice(&digest);
    let (signature, sw) = operate(&mut card, 0x07, 0x9A, 0x81, &block);
    assert_eq!(sw, 0x9000);
    let mut recovered = vec![0; 256];
    let len = public
        .public_decrypt(&signature, &mut recovered, Padding::PKCS1)
        .unwrap();
    assert_eq!(recovered[len - 32..len], digest);
    // Decipherment: a PKCS #1 v1.5 cryptogram comes back as the padded block.
    let mut cryptogram = vec![0; 256];
    public
        .public_encrypt(b"session key", &mut cryptogram, Padding::PKCS1)
        .unwrap();
    let (plain, sw) = operate(&mut card, 0x07, 0x9A, 0x81, &cryptogram);
    assert_eq!(sw, 0x9000);
    assert!(plain.ends_with(b"\x00session key") && plain[..2] == [0x00, 0x02]);
    assert_eq!(
        operate(&mut card, 0x07, 0x9A, 0x81, &[0xFF; 256]).1,
        0x6A80,
        "not below n"
    );
    assert_eq!(
        operate(&mut card, 0x07, 0x9A, 0x81, &[0x01; 255]).1,
        0x6A80,
        "not 256 bytes"
    );
    assert_eq!(
        operate(&mut card, 0x07, 0x9A, 0x85, &[0x04; 65]).1,
        0x6A80,
        "ECDH with RSA"
    );

    // ECDH: the card's secret is the one OpenSSL computes from the other side.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let peer = EcKey::generate(&group).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let peer_point = uncompressed_point(&peer);
    let (secret, sw) = operate(&mut card, 0x11, 0x9D, 0x85, &peer_point);
    assert_eq!(sw, 0x9000);
    let own = openssl::ec::EcPoint::from_bytes(&group, point, &mut ctx).unwrap();
    let own =
        openssl::pkey::PKey::from_ec_key(EcKey::from_public_key(&group, &own).unwrap()).unwrap();
    let peer = openssl::pkey::PKey::from_ec_key(peer).unwrap();
    let mut deriver = openssl::derive::Deriver::new(&peer).unwrap();
    deriver.set_peer(&own).unwrap();
    assert_eq!(secret, deriver.derive_to_vec().unwrap());
    let mut off_curve = peer_point.clone();
    off_curve[64] ^= 1;
    assert_eq!(operate(&mut card, 0x11, 0x9D, 0x85, &off_curve).1, 0x6A80);
    assert_eq!(
        operate(&mut card, 0x11, 0x9D, 0x85, &peer_point[..33]).1,
        0x6A80
    );
}

#[test]
fn the_signature_key_needs_the_pin_right_before_every_use() {
    let mut card = token();
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    generate(&mut card, 0x9C, 0x11, None);
    generate(&mut card, 0x82, 0x11, Some(0x03));
    run(&mut card, &format!("{PIN} -> 9000"));
    let digest = [0x11; 32];
    assert_eq!(operate(&mut card, 0x11, 0x9C, 0x81, &digest).1, 0x9000);
    assert_eq!(operate(&mut card, 0x11, 0x9C, 0x81, &digest).1, 0x6982);
    assert_eq!(
        operate(&mut card, 0x11, 0x82, 0x81, &digest).1,
        0x6982,
        "always too"
    );
    run(&mut card, &format!("{PIN} -> 9000"));
    assert_eq!(operate(&mut card, 0x11, 0x82, 0x81, &digest).1, 0x9000);
    // Selecting PIV again keeps the PIN (clients select before each operation); selecting
    // something else in between, or a reset, forgets it.
    run(
        &mut card,
        &format!(
            "{SELECT} -> 9000
             00200080 -> 9000
             00A4000C023F00 -> 9000
             {SELECT} -> 9000
             00200080 -> 63C3
             {PIN} -> 9000"
        ),
    );
    card.reset();
    run(&mut card, &format!("{SELECT} -> 9000\n00200080 -> 63C3"));
    assert_eq!(operate(&mut card, 0x11, 0x9C, 0x81, &digest).1, 0x6982);
}

/// An RSA-2048 key's import data: `01` p … `05` qInv, each padded to 128 bytes.
fn rsa_import(rsa: &Rsa<openssl::pkey::Private>) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, value) in [
        (0x01u8, rsa.p().unwrap()),
        (0x02, rsa.q().unwrap()),
        (0x03, rsa.dmp1().unwrap()),
        (0x04, rsa.dmq1().unwrap()),
        (0x05, rsa.iqmp().unwrap()),
    ] {
        crate::tlv::push_primitive(&mut out, &[tag], &value.to_vec_padded(128).unwrap());
    }
    out
}

#[test]
fn imported_keys_match_their_public_keys_and_bad_imports_change_nothing() {
    let mut card = token();
    let rsa = Rsa::generate(2048).unwrap();
    let import = rsa_import(&rsa);
    let (_, sw) = exchange(&mut card, [0x00, 0xFE, 0x07, 0x9A], &import);
    assert_eq!(sw, 0x6982, "the management key first");
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    // A wrong CRT value, a missing part, a part twice, a wrong algorithm: 6A80 and no key.
    let mut wrong = import.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    let missing = import[..import.len() - 131].to_vec();
    let mut twice = import.clone();
    twice.extend_from_slice(&import[..131]);
    for (bad, status) in [
        (wrong, 0x6A80),
        (missing, 0x6A80),
        (twice, 0x6A80),
        (
            vec![0x06, 0x20].into_iter().chain([1; 32]).collect(),
            0x6A80,
        ),
    ] {
        let (_, sw) = exchange(&mut card, [0x00, 0xFE, 0x07, 0x9A], &bad);
        assert_eq!(sw, status);
    }
    run(&mut card, "00F7009A -> 6A88");
    let (_, sw) = exchange(&mut card, [0x00, 0xFE, 0x07, 0x9A], &import);
    assert_eq!(sw, 0x9000);
    let (metadata, sw) = exchange(&mut card, [0x00, 0xF7, 0x00, 0x9A], &[]);
    assert_eq!(sw, 0x9000);
    assert_eq!(
        metadata[..11],
        hex::decode("01010702020201030102 04".replace(' ', "")).unwrap()[..]
    );
    assert!(
        metadata
            .windows(256)
            .any(|window| window == rsa.n().to_vec_padded(256).unwrap().as_slice())
    );
    run(&mut card, &format!("{PIN} -> 9000"));
    let block: Vec<u8> = [0x00, 0x01]
        .into_iter()
        .chain([0xFF; 220])
        .chain([0x00])
        .chain([0x42; 33])
        .collect();
    let (signature, sw) = operate(&mut card, 0x07, 0x9A, 0x81, &block);
    assert_eq!(sw, 0x9000);
    let mut recovered = vec![0; 256];
    rsa.public_decrypt(&signature, &mut recovered, Padding::NONE)
        .unwrap();
    assert_eq!(recovered, block);

    // ECC: the scalar padded to the field length.
    let group = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
    let ec = EcKey::generate(&group).unwrap();
    let mut data = vec![0x06, 0x30];
    data.extend_from_slice(&ec.private_key().to_vec_padded(48).unwrap());
    data.extend_from_slice(&[0xAA, 0x01, 0x01]);
    let (_, sw) = exchange(&mut card, [0x00, 0xFE, 0x11, 0x9E], &data);
    assert_eq!(sw, 0x6A80, "a P-384 scalar for P-256");
    let (_, sw) = exchange(&mut card, [0x00, 0xFE, 0x14, 0x9E], &data);
    assert_eq!(sw, 0x9000);
    let (signature, sw) = operate(&mut card, 0x14, 0x9E, 0x81, &[0x33; 48]);
    assert_eq!(sw, 0x9000);
    assert!(
        EcdsaSig::from_der(&signature)
            .unwrap()
            .verify(&[0x33; 48], &ec)
            .unwrap()
    );
    run(
        &mut card,
        &format!(
            "00F7009E00 -> 010114 02020101 030102 0463 8661 04{} 9000
         00FE149903 060100 -> 6A86
         00FE159E03 060100 -> 6A86",
            "?".repeat(192)
        ),
    );
}

#[test]
fn set_management_key_to_each_algorithm() {
    let mut card = token();
    run(
        &mut card,
        "00FFFFFF1B 039B18 000102030405060708090A0B0C0D0E0F1011121314151617 -> 6982
         00F7009B00 -> 010103 02020001 050101 9000",
    );
    let mut current = default_key();
    for (algorithm, len) in [(0x08u8, 16u8), (0x0A, 24), (0x0C, 32), (0x03, 24)] {
        assert_eq!(authenticate(&mut card, &current), 0x9000);
        let value: Vec<u8> = (0..len)
            .map(|i| i.wrapping_mul(7).wrapping_add(algorithm))
            .collect();
        let mut data = vec![algorithm, 0x9B, len];
        data.extend_from_slice(&value);
        let (_, sw) = exchange(&mut card, [0x00, 0xFF, 0xFF, 0xFF], &data);
        assert_eq!(sw, 0x9000);
        let next = BlockKey::new(management_algorithm(algorithm).unwrap(), &value).unwrap();
        // The old key no longer authenticates; the new one does.
        assert_ne!(authenticate(&mut card, &current), 0x9000);
        assert_eq!(authenticate(&mut card, &next), 0x9000);
        current = next;
    }
    run(
        &mut card,
        "00F7009B00 -> 010103 02020001 050100 9000
         00FFFFFF1A 039B18 000102030405060708090A0B0C0D0E0F10111213141516 -> 6A80
         00FFFFFF13 089B18 000102030405060708090A0B0C0D0E0F -> 6A80
         00FFFFFF13 099B10 000102030405060708090A0B0C0D0E0F -> 6A80
         00FFFFFF13 089A10 000102030405060708090A0B0C0D0E0F -> 6A80
         00FFFFFE13 089B10 000102030405060708090A0B0C0D0E0F -> 6A86   # touch: no button
         00FFFFFF -> 6A80",
    );
}

#[test]
fn set_pin_retries_and_reset_as_yubico_piv_tool_uses_them() {
    let mut card = token();
    run(
        &mut card,
        &format!(
            "00FA0505 -> 6982
             {PIN} -> 9000
             00FA0505 -> 6982                  # the management key too"
        ),
    );
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    run(
        &mut card,
        "00FA0010 -> 6A86
             00FA0510 -> 6A86
             00FA0506 -> 9000
             00200080 -> 63C5
             00200081 -> 63C6
             00F7008000 -> 0101FF 050101 06020505 9000
             00F7008100 -> 0101FF 050101 06020606 9000
             00FB0000 -> 6985                  # RESET needs both blocked",
    );
    generate(&mut card, 0x9A, 0x11, None);
    let block = |card: &mut Card, password: &str| {
        for _ in 0..6 {
            send(card, password);
        }
    };
    block(&mut card, WRONG_PIN);
    run(&mut card, "00FB0000 -> 6985");
    block(&mut card, "002C008010 3131313131313131 313131313131FFFF");
    run(
        &mut card,
        "00200080 -> 6983
         00200081 -> 6983
         00FB0100 -> 6A86
         00FB0000 -> 9000
         00200080 -> 63C3
         00F7009A -> 6A88                   # the keys are gone
         00F7008000 -> 0101FF 050101 06020303 9000",
    );
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    let chuid = send(&mut card, "00CB3FFF05 5C035FC102 00");
    assert!(chuid.contains(&hex::encode_upper(objects::guid(crate::Uid(UID)))));
}

#[test]
fn the_piv_state_survives_an_image_and_a_card_carries_all_three_applications() {
    let mut card = crate::sample::card_with_openpgp_and_piv();
    run(&mut card, &format!("{SELECT} -> 9000"));
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    generate(&mut card, 0x9C, 0x11, None);
    run(
        &mut card,
        &format!(
            "00DB3FFF0C 5C035FC109 5305 0102030405 -> 9000
             {WRONG_PIN} -> 63C2
             00A4040C06D27600012401 -> 9000       # OpenPGP
             0020008106 313233343536 -> 9000
             00A4040C06F05653430001 -> 9000       # the VSC file system
             00B0810010 -> 4552494B41204D55535445524D414E4E 9000
             {SELECT} -> 9000
             00200080 -> 63C2"
        ),
    );
    let master = crate::crypto::MasterKey::from_bytes(&[7; 32]);
    let state = card.into_state();
    let bytes = crate::image::encode(&state, &master).unwrap();
    let back = crate::image::decode(&bytes, &master).unwrap();
    assert_eq!(back, state);
    // The private key, the management key, the PIN and the printed information are sealed.
    let clear = crate::image::read_clear(&bytes).unwrap();
    let crate::applications::PublicPart::Piv(public) = &clear.applications[1] else {
        panic!("PIV is the second application")
    };
    assert!(public.objects.contains_key(&objects::CHUID));
    assert!(!public.objects.contains_key(&objects::PRINTED));
    assert!(!bytes.windows(24).any(|w| w == DEFAULT_MANAGEMENT_KEY));
    let mut card = Card::from_state(back);
    run(
        &mut card,
        &format!(
            "{SELECT} -> 9000
             00200080 -> 63C2
             00F7009C00 -> 010111 02020301 030101 0443 8641 04???????????????????????????????????????????????????????????????????????????????????????????????????????????????????????????????? 9000"
        ),
    );
}

#[test]
fn every_instruction_a_piv_client_does_not_send_is_refused() {
    let mut card = token();
    for ins in 0..=255u8 {
        if knows_instruction(ins) || ins == 0xA4 || ins == 0xC0 {
            continue;
        }
        let response = card.transmit(&[0x00, ins, 0x00, 0x00]);
        assert!(
            response == [0x6D, 0x00] || (ins & 0xF0 == 0x60 || ins & 0xF0 == 0x90),
            "{ins:02X}: {response:02X?}"
        );
    }
}

/// The secrets a card was given: every 8-byte window of each.
fn windows(secrets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    secrets
        .iter()
        .flat_map(|secret| secret.windows(8).map(<[u8]>::to_vec).collect::<Vec<_>>())
        .collect()
}

/// A token whose management key and keys are known (to look for them in every answer).
fn keyed_token() -> (Card, BlockKey, Vec<Vec<u8>>) {
    let mut card = token();
    assert_eq!(authenticate(&mut card, &default_key()), 0x9000);
    let management: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5A).collect();
    let mut data = vec![0x0C, 0x9B, 32];
    data.extend_from_slice(&management);
    assert_eq!(
        exchange(&mut card, [0x00, 0xFF, 0xFF, 0xFF], &data).1,
        0x9000
    );
    let key = BlockKey::new(BlockAlgorithm::Aes256, &management).unwrap();
    assert_eq!(authenticate(&mut card, &key), 0x9000);
    let rsa = Rsa::generate(2048).unwrap();
    assert_eq!(
        exchange(&mut card, [0x00, 0xFE, 0x07, 0x9A], &rsa_import(&rsa)).1,
        0x9000
    );
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let ec = EcKey::generate(&group).unwrap();
    let scalar = ec.private_key().to_vec_padded(32).unwrap();
    let mut data = vec![0x06, 0x20];
    data.extend_from_slice(&scalar);
    assert_eq!(
        exchange(&mut card, [0x00, 0xFE, 0x11, 0x9D], &data).1,
        0x9000
    );
    let secrets = vec![
        management,
        scalar,
        rsa.d().to_vec(),
        rsa.p().unwrap().to_vec(),
        rsa.q().unwrap().to_vec(),
        rsa.dmp1().unwrap().to_vec(),
        rsa.dmq1().unwrap().to_vec(),
        rsa.iqmp().unwrap().to_vec(),
    ];
    run(&mut card, &format!("{SELECT} -> 9000"));
    (card, key, windows(&secrets))
}

/// Commands a PIV client sends, to mutate: every instruction, with data that is right, nearly
/// right, or noise.
fn piv_command() -> impl Strategy<Value = Vec<u8>> {
    let templates = prop::sample::select(vec![
        "00A4040005A000000308",
        "0020008008313233343536FFFF",
        "00200080",
        "0024008010313233343536FFFF363534333231FFFF",
        "002C0080103132333435363738313233343536FFFF",
        "0087079A0A7C08820081040102030400",
        "0087119D0A7C08820081040102030400",
        "0087119D0A7C08820085040102030400",
        "00870C9B047C02800000",
        "00870C9B047C02810000",
        "00870C9B267C2480100102030405060708090A0B0C0D0E0F10811001020304050607080910111213141516",
        "00870C9B127C1082100102030405060708090A0B0C0D0E0F10",
        "00870C9B247C22811001020304050607080910111213141516821000",
        "00CB3FFF055C035FC10200",
        "00CB3FFF055C035FC10900",
        "00CB3FFF035C017E00",
        "00DB3FFF085C035FC1095301AA",
        "0047009A05AC0380011100",
        "00F7009A00",
        "00F7009B00",
        "00F7008000",
        "00F8000000",
        "00FD000000",
        "00FA0303",
        "00FB0000",
        "00FFFFFF13089B10000102030405060708090A0B0C0D0E0F",
        "00C0000000",
    ]);
    let mutation = prop_oneof![Just(None), (0usize..64, any::<u8>()).prop_map(Some),];
    (
        templates,
        mutation,
        prop::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(template, mutation, tail)| {
            let mut bytes = hex::decode(template).unwrap();
            if let Some((at, byte)) = mutation {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            if tail.len() > 4 {
                bytes.extend_from_slice(&tail[4..]);
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever a terminal sends, in whatever order, the card answers with a status word and
    /// no answer carries any 8 bytes of the management key or of a private key.
    #[test]
    fn no_answer_carries_a_secret(commands in prop::collection::vec(piv_command(), 1..40)) {
        let (mut card, _, secrets) = keyed_token();
        for command in &commands {
            let response = card.transmit(command);
            prop_assert!(response.len() >= 2);
            for secret in &secrets {
                prop_assert!(
                    !response.windows(8).any(|w| w == secret.as_slice()),
                    "{} answered a secret", hex::encode_upper(command)
                );
            }
        }
    }

    /// Random bytes never make the card panic or stay silent.
    #[test]
    fn random_commands_get_a_status_word(commands in prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..300), 1..20)
    ) {
        let mut card = token();
        for command in &mut commands.clone() {
            if command.len() > 1 {
                command[0] = 0x00;
            }
            prop_assert!(card.transmit(command).len() >= 2);
        }
    }
}

#[test]
fn witnesses_and_challenges_never_repeat() {
    let (mut card, key, _) = keyed_token();
    let mut seen = std::collections::HashSet::new();
    for round in 0..2000 {
        let request = if round % 2 == 0 { 0x80 } else { 0x81 };
        let (answer, sw) = exchange(
            &mut card,
            [0x00, 0x87, 0x0C, 0x9B],
            &[0x7C, 0x02, request, 0x00],
        );
        assert_eq!(sw, 0x9000);
        let value = &answer[4..];
        assert_eq!(value.len(), 16);
        // The witness travels enciphered: what repeats would be the witness itself.
        let plain = if request == 0x80 {
            key.decrypt_block(value).unwrap()
        } else {
            value.to_vec()
        };
        assert!(seen.insert(plain), "round {round} repeated");
    }
}
