//! Hex transcripts of the card OS (command → expected response), in the style of apdu-dispatch's
//! dispatch tests, on a card pre-initialized and personalized in plain through APDUs.

use proptest::prelude::*;

use super::*;
use crate::apdu::Response;
use crate::crypto::AesKey;
use crate::fs::fcp::{df_fcp, ef_fcp};
use crate::fs::{
    AccessRules, Aid, DataObjectRules, EfBody, FileState, Operation, RecordFile, RecordKind, Sfi,
};
use crate::security::{KeyAlgorithm, SecretBytes};
use crate::sm::{self, ChannelKeys, TerminalChannel};
use crate::test_support::run;

/// A command APDU in hex, for CREATE FILE and friends.
fn apdu(header: &str, data: &[u8]) -> String {
    let command = hex::decode(header).unwrap();
    let command = Command::new(command[0], command[1], command[2], command[3]).with_data(data);
    hex::encode_upper(command.to_vec().unwrap())
}

fn ef(fid: u16, sfi: Option<u8>, read: Condition, update: Condition, body: EfBody) -> Vec<u8> {
    ef_fcp(&Ef {
        fid: Fid::new(fid).unwrap(),
        sfi: sfi.map(|s| Sfi::new(s).unwrap()),
        state: FileState::Activated,
        rules: AccessRules::uniform(Condition::NEVER)
            .with(Operation::ReadOrDeleteChild, read)
            .with(Operation::UpdateOrCreateEf, update)
            .with(Operation::AppendOrCreateDf, update),
        body,
    })
}

fn df(fid: u16, aid: &str, data_rules: DataObjectRules) -> Vec<u8> {
    let df = Df::new(
        Fid::new(fid).unwrap(),
        Some(Aid::new(&hex::decode(aid).unwrap()).unwrap()),
        AccessRules::uniform(Condition::CHANNEL),
        data_rules,
    );
    df_fcp(&df, 0x05)
}

fn record_ef(kind: RecordKind, max_len: u16, max_records: u8) -> EfBody {
    EfBody::Records(RecordFile {
        kind,
        max_len,
        max_records,
        records: vec![],
    })
}

const PIN: &str = "31323334FFFFFFFF"; // "1234" padded to 8
const PUK: &str = "3132333435363738"; // "12345678"
/// RFC 4493's AES-128 key, so INTERNAL AUTHENTICATE has a known answer.
const KEY_01: &str = "2B7E151628AED2A6ABF7158809CF4F3C";
const KEY_02: &str = "603DEB1015CA71BE2B73AEF0857D77811F352C073B6108D72D9810A30914DFF4";

/// The pre-initialization of the test card: structure, UID, password and key objects.
fn preinitialize(card: &mut Card) {
    let always = Condition::ALWAYS;
    let never = Condition::NEVER;
    let pin = Condition::USER_PIN;
    let public_dos = DataObjectRules {
        get: always,
        put: never,
    };
    let private_dos = DataObjectRules { get: pin, put: pin };
    let script = [
        apdu(
            "00E00000",
            &ef(0x2F02, None, always, never, EfBody::Transparent(vec![0; 8])),
        ) + "->9000",
        "00D6000008 0102030405060708 -> 9000".into(),
        "00A4000C023F00 -> 9000".into(),
        apdu(
            "00E00000",
            &ef(
                0x2F00,
                None,
                always,
                never,
                record_ef(RecordKind::LinearVariable, 32, 4),
            ),
        ) + "->9000",
        "00E20000 0F 610D4F06F056534300015003505542 -> 9000".into(),
        "00A4000C023F00 -> 9000".into(),
        apdu("00E00000", &df(0x5000, "F05653430001", public_dos)) + "->9000",
        apdu(
            "00E00000",
            &ef(
                0x5001,
                Some(1),
                always,
                never,
                EfBody::Transparent(vec![0; 300]),
            ),
        ) + "->9000",
        apdu(
            "00E00000",
            &ef(
                0x5002,
                Some(2),
                always,
                never,
                record_ef(RecordKind::LinearFixed, 4, 3),
            ),
        ) + "->9000",
        "00E20010 04 41414141 -> 9000".into(),
        "00E20010 04 42424242 -> 9000".into(),
        "00DA5F20 05 414C494345 -> 9000".into(),
        "00A4000C023F00 -> 9000".into(),
        apdu("00E00000", &df(0x6000, "F05653430002", private_dos)) + "->9000",
        apdu(
            "00E00000",
            &ef(0x6001, Some(1), pin, pin, EfBody::Transparent(vec![0; 32])),
        ) + "->9000",
        "00D6000004 53454352 -> 9000".into(),
        "00DA0053 03 010203 -> 9000".into(),
        "00A4000C023F00 -> 9000".into(),
        // Password objects: user PIN 4..8 with 3 tries, PUK 8..8 with 10 tries.
        "00DA0101 0C 830101 C10104 C20108 C30103 -> 9000".into(),
        "00DA0101 0C 830102 C10108 C20108 C3010A -> 9000".into(),
        // Key objects: 01 AES-128 internal, 02 AES-256 external, 03 AES-192 both.
        "00DA0102 09 830101 800101 950101 -> 9000".into(),
        "00DA0102 09 830102 800103 950102 -> 9000".into(),
        "00DA0102 09 830103 800102 950103 -> 9000".into(),
    ];
    run(card, &script.join("\n"));
}

/// Personalization in plain (a card without the channel): PIN, PUK, key values, activation.
fn personalize(card: &mut Card) {
    run(
        card,
        &format!(
            "0024010108{PIN} -> 9000
             0024010208{PUK} -> 9000
             00DA010415 830101 8F10{KEY_01} -> 9000
             00DA010425 830102 8F20{KEY_02} -> 9000
             00DA010425 830103 8F18{KEY_02} -> 6A80
             00DA010415 830103 8F10{KEY_01} -> 6700
             00DA01041D 830103 8F18000102030405060708090A0B0C0D0E0F1011121314151617 -> 9000
             00A4000C023F00 -> 9000
             00440000023F00 -> 9000"
        ),
    );
}

fn operational_card() -> Card {
    let mut card = Card::blank();
    preinitialize(&mut card);
    personalize(&mut card);
    assert_eq!(card.state().life_cycle, LifeCycle::Operational);
    card.reset();
    card
}

#[test]
fn blank_card_answers() {
    let mut card = Card::blank();
    assert_eq!(card.atr(), crate::atr::atr(0x01));
    run(
        &mut card,
        "00A4000C023F00 -> 9000
         00A40004023F00 00 -> 6218 820138 83023F00 8A0101 8C087FFFFFFFFF4040FF 86020040 9000
         00B0000008 -> 6986",
    );
}

#[test]
fn select_by_fid_name_and_path() {
    let mut card = operational_card();
    run(
        &mut card,
        "# FID: child DF, then its EF, then the parent's other child
         00A4000C025000 -> 9000
         00A4000C025001 -> 9000
         00A4000C026000 -> 9000
         00A4000C022F02 -> 9000
         00A4000C025001 -> 6A82
         # child DF (01), EF (02), parent (03)
         00A4010C025000 -> 9000
         00A4010C025001 -> 6A82
         00A4020C025001 -> 9000
         00A4030C -> 9000
         00A4030C025000 -> 6A87
         # FCP of an EF: size 300, transparent, FID, SFI 1, activated, rules
         00A4020400 -> 6A87
         00A40804045000500100 -> 621B 8002012C 820101 83025001 880108 8A0105 8C087FFFFFFFFFFFFF00 9000
         # FCI has the same objects under 6F
         00A40800045000500100 -> 6F1B 8002012C 820101 83025001 880108 8A0105 8C087FFFFFFFFFFFFF00 9000
         # FMD of a DF: its AID
         00A4040806F05653430002 00 -> 6408 8406F05653430002 9000
         # by name: full, partial first / next / last / previous, absent
         00A4040C06F05653430001 -> 9000
         00A4040C05F056534300 -> 9000
         00A40404 05 F056534300 00 -> 6220 820138 83025000 8406F05653430001 8A0105 8C08???????????????? 8602???? 9000
         00A4040605F056534300 00 -> 6220 820138 83026000 8406F05653430002 8A0105 8C08???????????????? 8602???? 9000
         00A4040605F056534300 00 -> 6A82
         00A4040705F056534300 00 -> 6220 820138 83025000 ?????????????????????????????????????????????????? 9000
         00A4040C05F056534399 -> 6A82
         # path from the MF (with or without 3F00) and from the current DF
         00A4080C 0450005002 -> 9000
         00A4080C 063F0050005002 -> 9000
         00A4080C 0450015002 -> 6A82
         00A4090C 026001 -> 6A82
         00A4000C 026000 -> 9000
         00A4090C 026001 -> 9000
         00A4080C 03500050 -> 6A87
         # bad P1 / P2
         00A4050C023F00 -> 6A86
         00A4001C023F00 -> 6A86
         00A4000D023F00 -> 6A86",
    );
}

#[test]
fn read_binary_forms() {
    let mut card = operational_card();
    run(
        &mut card,
        "00A4080C0450005001 -> 9000
         # 300 zero bytes; Le 00 reads 256 of them, extended Le 0000 all of them
         00B0000004 -> 00000000 9000
         00B0012C01 -> 6B00
         00B0012A00 -> 0000 9000
         00B0012A04 -> 0000 6282
         00B00000 -> 6700
         00B0000001 00 -> 6700
         00B0800004 -> 6A86
         # by SFI (P1 b8): selects the EF
         00A4000C025000 -> 9000
         00B0810002 -> 0000 9000
         00B0830002 -> 6A82
         00B0000002 -> 0000 9000
         # odd INS: offset in 54, data in 53
         00B10000 03 540101 04 -> 53020000 9000
         00B15001 04 54020128 00 -> 53040000 0000 9000
         00B10000 02 5401 00 -> 6A80
         00B10000 03 550101 04 -> 6A80
         # not transparent, and no current EF
         00B0820004 -> 6981
         00A4000C023F00 -> 9000
         00B0000004 -> 6986",
    );
    let response = card.transmit(&hex::decode("00A4080C0450005001").unwrap());
    assert_eq!(response, [0x90, 0x00]);
    let response = card.transmit(&hex::decode("00B00000000000").unwrap());
    assert_eq!(response.len(), 302, "extended Le 0000 reads all 300 bytes");
    assert_eq!(response[300..], [0x90, 0x00]);
}

#[test]
fn updates_follow_the_access_rules() {
    let mut card = operational_card();
    run(
        &mut card,
        &format!(
            "# public EF: update never
             00A4080C0450005001 -> 9000
             00D6000002 AAAA -> 6982
             # private EF: PIN for read and update
             00A4080C0460006001 -> 9000
             00B0000004 -> 6982
             00D6000002 AAAA -> 6982
             00200001 08 {PIN} -> 9000
             00B0000004 -> 53454352 9000
             00D6001E02 AAAA -> 9000
             00D6001F02 AAAA -> 6A84
             00D6002102 AAAA -> 6B00
             00D60000 -> 6700
             00B0001E02 -> AAAA 9000
             00D7000008 540101 5303BBBBBB -> 9000
             00B0000004 -> 53BBBBBB 9000
             00D70000 03 540101 -> 6A80
             00D70000 05 540101 5301 -> 6A80
             # ERASE BINARY from an offset to an end offset, and to the end
             000E0001 02 0004 -> 9000
             00B0000004 -> 53000000 9000
             000E001E -> 9000
             00B0001C04 -> 00000000 9000
             000F0000 06 540100 540140 -> 6B00
             000F0000 03 540100 -> 9000
             00B0000004 -> 00000000 9000
             # the PIN forgotten: refused again
             0020FF01 -> 9000
             00B0000004 -> 6982"
        ),
    );
}

#[test]
fn records() {
    let mut card = operational_card();
    run(
        &mut card,
        "00A4080C0450005002 -> 9000
         00B2000400 -> 6A83
         00B2010404 -> 41414141 9000
         00B2020400 -> 42424242 9000
         00B2030400 -> 6A83
         00B2010402 -> 6C04
         00B2000400 -> 42424242 9000
         00B2010500 -> 4141414142424242 9000
         00B2000400 -> 42424242 9000
         00B2010600 -> 4242424241414141 9000
         00B2010000 -> 6A81
         00B2010700 -> 6A86
         # by SFI from the DF, and EF.DIR in the MF
         00A4000C023F00 -> 9000
         00B2011400 -> 6A82
         00A4000C025000 -> 9000
         00B2011400 -> 41414141 9000
         00A4000C023F00 -> 9000
         00A4020C022F00 -> 9000
         00B2010400 -> 610D4F06F056534300015003505542 9000
         # update and append: never allowed in the public DF
         00A4080C0450005002 -> 9000
         00DC010404 43434343 -> 6982
         00E2000004 43434343 -> 6982",
    );
}

#[test]
fn record_writes_while_creating() {
    let mut card = Card::blank();
    preinitialize(&mut card);
    run(
        &mut card,
        "00A4080C0450005002 -> 9000
         00DC010404 43434343 -> 9000
         00DC010403 434343 -> 6700
         00DC030404 43434343 -> 6A83
         00DC010004 43434343 -> 6A81
         00E2000004 44444444 -> 9000
         00E2000004 45454545 -> 6A84
         00E2010004 45454545 -> 6A86
         00B2010500 -> 434343434242424244444444 9000
         00A4080C0420002F00 -> 6A82
         00A4000C023F00 -> 9000
         00A4020C022F00 -> 9000
         00E2000000 -> 6700
         00E2000021 000000000000000000000000000000000000000000000000000000000000000000 -> 6700",
    );
}

#[test]
fn verify_counts_down_blocks_and_unblocks() {
    let mut card = operational_card();
    run(
        &mut card,
        &format!(
            "00200001 -> 63C3
             0020000108 39393939FFFFFFFF -> 63C2
             0020000108 39393939FFFFFFFF -> 63C1
             00200001 -> 63C1
             0020000108 {PIN} -> 9000
             00200001 -> 9000
             0020000108 39393939FFFFFFFF -> 63C2
             00200001 -> 63C2
             # badly formatted: no try spent
             0020000104 31323334 -> 6A80
             0020000108 3132FF34FFFFFFFF -> 6A80
             00200001 -> 63C2
             0020000108 39393939FFFFFFFF -> 63C1
             0020000108 39393939FFFFFFFF -> 63C0
             00200001 -> 6983
             0020000108 {PIN} -> 6983
             # unknown references and P1
             00200003 -> 6A88
             00200101 -> 6A86
             # RESET RETRY COUNTER with a wrong PUK costs a PUK try
             002C0101 08 3030303030303030 -> 63C9
             002C0101 08 {PUK} -> 9000
             00200001 -> 63C3
             0020000108 {PIN} -> 9000
             # wrong lengths and references
             002C0001 -> 6700
             002C0001 09 {PUK}00 -> 6700
             002C0301 -> 6982
             002C0002 08 {PUK} -> 6A86
             002C0401 -> 6A86"
        ),
    );
}

#[test]
fn reset_retry_counter_and_change_reference_data() {
    let mut card = operational_card();
    run(
        &mut card,
        &format!(
            "002C0001 10 {PUK}35353535FFFFFFFF -> 9000
             00200001 -> 63C3
             0020000108 {PIN} -> 63C2
             0020000108 35353535FFFFFFFF -> 9000
             # PUK verified first, then a new PIN alone (P1 02)
             002C0201 08 36363636FFFFFFFF -> 6982
             0020000208 {PUK} -> 9000
             002C0201 08 36363636FFFFFFFF -> 9000
             0020000108 36363636FFFFFFFF -> 9000
             # CHANGE REFERENCE DATA: old and new
             0024000110 39393939FFFFFFFF 37373737FFFFFFFF -> 63C2
             0024000110 36363636FFFFFFFF 373737FFFFFFFFFF -> 6A80
             0024000110 36363636FFFFFFFF 37373737FFFFFFFF -> 9000
             0020000108 37373737FFFFFFFF -> 9000
             # new value only: once verified
             0024010108 38383838FFFFFFFF -> 9000
             0024010108 39393939FFFFFFFF -> 6982
             0020000108 38383838FFFFFFFF -> 9000
             0024020108 38383838FFFFFFFF -> 6A86"
        ),
    );
}

#[test]
fn data_objects() {
    let mut card = operational_card();
    run(
        &mut card,
        &format!(
            "00A4000C025000 -> 9000
             00CA5F2000 -> 414C494345 9000
             00CA5F2002 -> 414C 6103
             00C0000003 -> 494345 9000
             00C0000003 -> 6985
             00CA5F2100 -> 6A88
             00CA5F8000 -> 6A88
             00CA000000 -> 6A88
             00CB3FFF 04 5C025F20 00 -> 5F2005414C494345 9000
             00CB3FFF 04 5C025F21 00 -> 6A88
             00CB3FFE 04 5C025F20 00 -> 6A86
             00DA5F20 01 42 -> 6982
             # private DOs: behind the PIN, both ways
             00A4000C026000 -> 9000
             00CA005300 -> 6982
             00DA0053 01 09 -> 6982
             0020000108 {PIN} -> 9000
             00CA005300 -> 010203 9000
             00DA0053 02 0908 -> 9000
             00CA005300 -> 0908 9000
             00DB3FFF 08 5F2101AA 7F220100 -> 6A80
             00DB3FFF 0A 5F2101AA 7F2203 800101 -> 9000
             00CB3FFF 06 5C045F217F22 00 -> 5F2101AA 7F2203800101 9000
             # an empty value deletes
             00DA5F21 -> 9000
             00CA5F2100 -> 6A88
             # constructed values must be BER-TLV
             00DA7F23 02 8005 -> 6A80
             # structure and keys cannot be made any more
             00DA0101 0C 830101 C10104 C20108 C30103 -> 6985
             00DA0103 04 C0010000 -> 6985
             00DA0104 15 830101 8F10{KEY_01} -> 6985
             00DA01FF 01 00 -> 6A88
             # security objects: parameters and states, never values
             00CA010100 -> E112 830101 C10104 C20108 C30103 C40103 C50101 E112 830102 C10108 C20108 C3010A C4010A C50101 9000
             00CA010200 -> E20C 830101 800101 950101 C50101 E20C 830102 800103 950102 C50101 E20C 830103 800102 950103 C50101 9000"
        ),
    );
}

#[test]
fn authentication_with_keys() {
    let mut card = operational_card();
    run(
        &mut card,
        "# INTERNAL AUTHENTICATE: RFC 4493 example 2 through the card
         00880001 10 6BC1BEE22E409F96E93D7E117393172A 00 -> 070A16B46B4D4144F79BDD9DD04A287C 9000
         00880002 10 6BC1BEE22E409F96E93D7E117393172A 00 -> 6985
         00880004 10 6BC1BEE22E409F96E93D7E117393172A 00 -> 6A88
         00880001 00 -> 6700
         # EXTERNAL AUTHENTICATE needs a fresh challenge and the right key usage
         00820002 10 00000000000000000000000000000000 -> 6985
         00840000 -> 6700
         00840000 04 -> 6C08
         00840001 08 -> 6A86
         00840000 08 -> ????????????????9000
         00820001 10 00000000000000000000000000000000 -> 6985
         00820002 10 00000000000000000000000000000000 -> 6985
         00840000 10 -> ????????????????????????????????9000
         00820002 10 00000000000000000000000000000000 -> 6300",
    );
    // The right answer: CMAC(key 02, challenge).
    let challenge = card.transmit(&hex::decode("0084000008").unwrap());
    let key = SecretBytes::new(&hex::decode(KEY_02).unwrap());
    let answer = auth::cmac(KeyAlgorithm::Aes256, &key, &challenge[..8]).unwrap();
    let mut command = hex::decode("0082000210").unwrap();
    command.extend_from_slice(&answer);
    assert_eq!(card.transmit(&command), [0x90, 0x00]);
    assert_eq!(card.session.authenticated_keys, 1 << 2);
    // Used up.
    assert_eq!(card.transmit(&command), [0x69, 0x85]);
}

#[test]
fn life_cycle_of_files() {
    let mut card = Card::blank();
    preinitialize(&mut card);
    run(
        &mut card,
        "00A4080C0450005001 -> 9000
         00040000 -> 9000
         00B0000004 -> 6985
         00A4080C0450005001 -> 6283
         00A40804045000500100 -> 621B 8002012C 820101 83025001 880108 8A0104 ???????????????????? 6283
         00440000 -> 9000
         00B0000004 -> 00000000 9000
         00E80000 -> 9000
         00B0000004 -> 6985
         00440000 -> 6985
         00A4080C0450005001 -> 6285
         # DELETE FILE: a child by FID, then the current DF itself
         00A4000C025000 -> 9000
         00E40000025001 -> 9000
         00A4020C025001 -> 6A82
         00E40000025099 -> 6A82
         00E40000 -> 9000
         00A4000C025000 -> 6A82
         00E40000023F00 -> 6985
         # CREATE FILE refuses what exists
         00A4000C026000 -> 9000
         00E00000 -> 6A80
         00E00001 00 -> 6A86
         00E00000 09 620783025000820101 -> 6A80",
    );
    let duplicate = apdu(
        "00E00000",
        &ef(
            0x6001,
            None,
            Condition::ALWAYS,
            Condition::NEVER,
            EfBody::Transparent(vec![0; 4]),
        ),
    );
    let duplicate_sfi = apdu(
        "00E00000",
        &ef(
            0x6002,
            Some(1),
            Condition::ALWAYS,
            Condition::NEVER,
            EfBody::Transparent(vec![0; 4]),
        ),
    );
    let parent_fid = apdu(
        "00E00000",
        &ef(
            0x6000,
            None,
            Condition::ALWAYS,
            Condition::NEVER,
            EfBody::Transparent(vec![0; 4]),
        ),
    );
    let duplicate_aid = apdu(
        "00E00000",
        &df(
            0x6100,
            "F05653430002",
            DataObjectRules {
                get: Condition::ALWAYS,
                put: Condition::ALWAYS,
            },
        ),
    );
    run(
        &mut card,
        &format!(
            "{duplicate} -> 6A89
             {duplicate_sfi} -> 6A89
             {parent_fid} -> 6A89
             {duplicate_aid} -> 6A8A"
        ),
    );
    // Memory runs out: 32 KB EFs until the card is full.
    let mut statuses = Vec::new();
    for fid in 0x6100..0x6120u16 {
        let create = apdu(
            "00E00000",
            &ef(
                fid,
                None,
                Condition::ALWAYS,
                Condition::NEVER,
                EfBody::Transparent(vec![0; 0x7FFF]),
            ),
        );
        statuses.push(hex::encode_upper(
            card.transmit(&hex::decode(&create).unwrap()),
        ));
        card.transmit(&hex::decode("00A4000C026000").unwrap());
    }
    let full = statuses
        .iter()
        .position(|s| s == "6A84")
        .expect("memory runs out");
    assert!(
        full >= 6 && statuses[..full].iter().all(|s| s == "9000"),
        "{statuses:?}"
    );
    assert!(statuses[full..].iter().all(|s| s == "6A84"));
    assert!(card.state().fs.capacity() <= MEMORY);
}

#[test]
fn pre_initialization_and_the_channel() {
    let mut card = Card::blank();
    preinitialize(&mut card);
    run(&mut card, CHANNEL_KEYS);
    assert_eq!(card.state().life_cycle, LifeCycle::Initialisation);
    assert_eq!(card.atr(), crate::atr::atr(0x03));
    run(
        &mut card,
        &format!(
            "# structure is frozen, writes need the channel, reads follow the rules
             00DA0101 0C 830101 C10104 C20108 C30103 -> 6985
             00A4080C0450005001 -> 9000
             00B0000002 -> 0000 9000
             00D6000002 AAAA -> 6982
             0024010108 {PIN} -> 6982
             00DA010415 830101 8F10{KEY_01} -> 6982
             00440000023F00 -> 6982
             00A4000C023F00 -> 9000
             00E00000 0C 620A 820101 83027001 800104 -> 6982
             # secure messaging: protected commands only; proprietary SM is not offered
             0CB0000000 -> 6987
             04B0000000 -> 6882"
        ),
    );
}

/// The terminal side of the channel for the keys `channel_keys_command` loads.
fn terminal(enc: u8, mac: u8) -> TerminalChannel {
    let key = |first: u8| AesKey::aes256(&std::array::from_fn(|i| first + i as u8));
    TerminalChannel::new(ChannelKeys::from_keys(key(enc), key(mac)))
}

const CHANNEL_KEYS: &str = "00DA0103 44 C020 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F C120 202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F -> 9000";

/// Sends `command` through `terminal`'s channel; the card's plain answer.
fn protected(
    card: &mut Card,
    terminal: &mut TerminalChannel,
    command: &str,
) -> Result<Response, sm::SmError> {
    let command = hex::decode(command.replace(' ', "")).unwrap();
    let wrapped = terminal.wrap_command(&Command::parse(&command).unwrap())?;
    terminal.unwrap_response(&card.transmit(&wrapped))
}

#[test]
fn personalization_through_the_channel() {
    let mut card = Card::blank();
    preinitialize(&mut card);
    run(&mut card, CHANNEL_KEYS);
    card.reset();
    let mut channel = terminal(0x00, 0x20);
    for command in [
        "00A4080C0450005001".to_string(),
        "00D6000002 AAAA".into(),
        "00A4080C0460006001".into(),
        "00D6000002 BBBB".into(),
        format!("0024010108{PIN}"),
        format!("0024010208{PUK}"),
        format!("00DA010415 830101 8F10{KEY_01}"),
        "00A4000C023F00".into(),
    ] {
        let response = protected(&mut card, &mut channel, &command).unwrap();
        assert_eq!(response.status, Status::Success, "{command}");
    }
    // Reads through the channel answer protected data; wrong references their status.
    let read = protected(&mut card, &mut channel, "00A4080C0460006001").unwrap();
    assert_eq!(read.status, Status::Success);
    let read = protected(&mut card, &mut channel, "00B0000004").unwrap();
    assert_eq!(
        (read.data.as_slice(), read.status),
        (&[0xBB, 0xBB, 0x43, 0x52][..], Status::Success)
    );
    let missing = protected(&mut card, &mut channel, "00A4000C029999").unwrap();
    assert_eq!(missing.status, Status::FileNotFound);
    // Plain commands in between leave the channel alone.
    run(&mut card, "00A4000C023F00 -> 9000");
    let activate = protected(&mut card, &mut channel, "00440000023F00").unwrap();
    assert_eq!(activate.status, Status::Success);
    assert_eq!(card.state().life_cycle, LifeCycle::Operational);
    card.reset();
    run(
        &mut card,
        &format!(
            "00A4080C0450005001 -> 9000
             00B0000002 -> AAAA 9000
             00A4080C0460006001 -> 9000
             00B0000002 -> 6982
             0020000108{PIN} -> 9000
             00B0000002 -> BBBB 9000"
        ),
    );
    // The channel is closed for good.
    let mut channel = terminal(0x00, 0x20);
    assert!(matches!(
        protected(&mut card, &mut channel, "00A4000C023F00"),
        Err(sm::SmError::Unprotected(
            Status::ConditionsOfUseNotSatisfied
        ))
    ));
}

#[test]
fn another_cards_channel_writes_nothing() {
    let mut card = Card::blank();
    preinitialize(&mut card);
    run(&mut card, CHANNEL_KEYS);
    card.reset();
    let before = card.state().clone();
    let mut wrong = terminal(0x01, 0x20);
    assert!(matches!(
        protected(&mut card, &mut wrong, "00D6000002 AAAA"),
        Err(sm::SmError::Unprotected(Status::SmDataObjectsIncorrect))
    ));
    assert_eq!(card.state(), &before);
    // The card closed its side: even the right keys fail until the next reset.
    let mut right = terminal(0x00, 0x20);
    assert!(protected(&mut card, &mut right, "00A4000C023F00").is_err());
    card.reset();
    let mut right = terminal(0x00, 0x20);
    assert_eq!(
        protected(&mut card, &mut right, "00A4000C023F00")
            .unwrap()
            .status,
        Status::Success
    );
    assert_eq!(card.state(), &before);
}

#[test]
fn operational_card_refuses_personalization() {
    let mut card = operational_card();
    run(
        &mut card,
        "0CD6000000 -> 6985
         00E00000 0C 620A 820101 83027001 800104 -> 6982
         00FE0000 -> 6982
         00440000023F00 -> 9000",
    );
}

#[test]
fn class_and_instruction_errors() {
    let mut card = operational_card();
    run(
        &mut card,
        "80A4000C023F00 -> 6E00
         FFA4000C023F00 -> 6E00
         20A4000C023F00 -> 6E00
         01A4000C023F00 -> 6881
         40A4000C023F00 -> 6881
         00FF0000 -> 6D00
         00A4 -> 6700
         00A4000C033F00 -> 6700
         00B000000000 -> 6700",
    );
}

#[test]
fn chaining_and_get_response() {
    let mut card = Card::blank();
    preinitialize(&mut card);
    let (ones, twos, threes) = ("01".repeat(100), "02".repeat(100), "03".repeat(100));
    run(
        &mut card,
        &format!(
            "# a 300-byte update in three chained parts
         00A4080C0450005001 -> 9000
         10D6000064 {ones} -> 9000
         10D6000064 {twos} -> 9000
         00D6000064 {threes} -> 9000
         00B0006301 -> 01 9000
         00B0006401 -> 02 9000
         00B0012B01 -> 03 9000
         # a chain broken by another command
         10D6000001 09 -> 9000
         00B0000001 -> 6883
         00B0000001 -> 01 9000
         # the FCP without Le: all of it waits for GET RESPONSE
         00A40804 04 50005001 -> 611D
         00C0000010 -> 621B8002012C82010183025001880108 610D
         00C0010000 -> 6A86
         00C0000000 -> 8A01058C087FFFFFFFFFFFFF00 9000
         00C0000000 -> 6985"
        ),
    );
}

#[test]
fn get_response_in_parts() {
    let mut card = operational_card();
    run(
        &mut card,
        "00A40804 04 50005001 -> 611D
         00C0000010 -> 621B8002012C82010183025001880108 610D
         00C000000D -> 8A01058C087FFFFFFFFFFFFF00 9000",
    );
}

#[test]
fn reset_clears_the_session() {
    let mut card = operational_card();
    run(
        &mut card,
        &format!("0020000108{PIN} -> 9000\n00A4080C0460006001 -> 9000\n00B0000001 -> 53 9000"),
    );
    card.reset();
    run(
        &mut card,
        "00200001 -> 63C3\n00B0000001 -> 6986\n00A4080C0460006001 -> 9000\n00B0000001 -> 6982",
    );
}

#[test]
fn changes_are_reported_for_persistence() {
    let mut card = operational_card();
    card.take_changed();
    card.transmit(&hex::decode("00A4080C0450005001").unwrap());
    card.transmit(&hex::decode("00B0000004").unwrap());
    assert!(!card.take_changed(), "reads change nothing");
    card.transmit(&hex::decode(format!("0020000108{PIN}")).unwrap());
    assert!(
        card.take_changed(),
        "a right PIN's try is counted and saved before the comparison, then given back"
    );
    card.transmit(&hex::decode("002000010839393939FFFFFFFF").unwrap());
    assert!(
        card.take_changed(),
        "a wrong PIN costs a try that must be saved"
    );
    assert!(!card.take_changed());
}

#[test]
fn terminated_card_refuses_everything() {
    let mut card = Card::blank();
    preinitialize(&mut card);
    run(
        &mut card,
        "00FE0000 -> 9000\n00A4000C023F00 -> 6985\n00B0000001 -> 6985",
    );
    assert_eq!(card.state().life_cycle, LifeCycle::Terminated);
}

/// Every key value's bytes, to look for in responses.
fn key_values() -> Vec<Vec<u8>> {
    vec![
        hex::decode(KEY_01).unwrap(),
        hex::decode(KEY_02).unwrap(),
        (0..24).collect(),
    ]
}

/// Whether `needle` (at least 8 bytes of it) shows anywhere in `haystack`.
fn leaks(haystack: &[u8], needle: &[u8]) -> bool {
    needle
        .windows(8)
        .any(|w| haystack.windows(8).any(|h| h == w))
}

#[test]
fn no_command_returns_key_bytes() {
    let mut card = operational_card();
    let keys = key_values();
    let datas: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x3F, 0x00],
        vec![0x01, 0x02],
        vec![0x5C, 0x02, 0x01, 0x02],
        hex::decode("830101").unwrap(),
        hex::decode("830102").unwrap(),
        vec![0; 16],
        vec![0xFF; 8],
    ];
    let mut responses = 0;
    for ins in 0..=255u8 {
        for (p1, p2) in [
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (1, 1),
            (1, 2),
            (1, 4),
            (0x3F, 0xFF),
            (0x80, 0),
            (0xFF, 0xFF),
        ] {
            for data in &datas {
                for ne in [None, Some(16), Some(256), Some(65_536)] {
                    let command = Command::new(0x00, ins, p1, p2).with_data(data).with_ne(ne);
                    let response = card.transmit(&command.to_vec().unwrap());
                    responses += 1;
                    for key in &keys {
                        assert!(
                            !leaks(&response, key),
                            "INS {ins:02X} {p1:02X}{p2:02X} returned key bytes"
                        );
                    }
                }
            }
        }
        card.reset();
    }
    assert!(responses > 80_000);
}

proptest! {
    #[test]
    fn no_bytes_panic_the_card(commands in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
        let mut card = operational_card();
        for command in commands {
            let response = card.transmit(&command);
            prop_assert!(response.len() >= 2);
        }
    }

    #[test]
    fn plausible_commands_do_not_panic_the_card(
        commands in proptest::collection::vec(
            (prop::sample::select(vec![0x00u8, 0x10, 0x0C]),
             prop::sample::select(vec![0xA4u8, 0xB0, 0xB1, 0xD6, 0xD7, 0x0E, 0x0F, 0xB2, 0xDC, 0xE2, 0xCA, 0xCB,
                                       0xDA, 0xDB, 0x20, 0x24, 0x2C, 0x84, 0x88, 0x82, 0xE0, 0xE4, 0x44, 0x04,
                                       0xE6, 0xE8, 0xFE, 0xC0]),
             any::<u8>(), any::<u8>(),
             proptest::collection::vec(any::<u8>(), 0..40),
             proptest::option::of(1usize..300)),
            1..40),
        creating in any::<bool>(),
    ) {
        let mut card = Card::blank();
        preinitialize(&mut card);
        if !creating {
            personalize(&mut card);
        }
        for (cla, ins, p1, p2, data, ne) in commands {
            let command = Command::new(cla, ins, p1, p2).with_data(&data).with_ne(ne);
            let response = card.transmit(&command.to_vec().unwrap());
            prop_assert!(response.len() >= 2);
            for key in key_values() {
                prop_assert!(!leaks(&response, &key));
            }
        }
    }

    #[test]
    fn failed_commands_leave_the_card_unchanged(
        ins in prop::sample::select(vec![0xD6u8, 0xD7, 0x0E, 0xDC, 0xE2, 0xDA, 0xDB, 0xE0, 0xE4, 0x44, 0x04, 0xE6, 0xE8, 0x24, 0x2C]),
        p1 in any::<u8>(), p2 in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut card = Card::blank();
        preinitialize(&mut card);
        let before = card.state().clone();
        let command = Command::new(0x00, ins, p1, p2).with_data(&data);
        let response = card.transmit(&command.to_vec().unwrap());
        let status = Status::from([response[response.len() - 2], response[response.len() - 1]]);
        if !status.is_success() {
            prop_assert_eq!(card.state(), &before);
        }
    }
}

/// A host that cannot save: every save fails, and it counts the tries.
#[derive(Debug, Default)]
struct Unsavable {
    durable: Option<Box<CardState>>,
}

impl Persistence for Unsavable {
    fn save(&mut self, _state: &CardState) -> Result<(), SaveFailed> {
        Err(SaveFailed)
    }
    fn durable(&self) -> Option<CardState> {
        self.durable.as_deref().cloned()
    }
}

#[test]
fn a_pin_try_that_cannot_be_saved_is_never_compared() {
    // Issue 9, defect 1: the try is saved before the comparison; when that fails, the answer is
    // 6581 for the right PIN and the wrong one alike, and nothing is unlocked.
    let state = operational_card().into_state();
    let hook = Unsavable {
        durable: Some(Box::new(state.clone())),
    };
    let mut card = Card::with_persistence(state.clone(), Box::new(hook));
    run(
        &mut card,
        &format!(
            "0020000108{PIN} -> 6581
             002000010839393939FFFFFFFF -> 6581
             00A4080C0460006001 -> 9000
             00B0000001 -> 6982
             00200001 -> 63C3"
        ),
    );
    assert_eq!(card.state(), &state, "nothing changed");
}

#[test]
fn a_chain_of_an_unknown_instruction_is_refused() {
    // Issue 9, defect 8: 105C0301000007 answered 9000.
    let mut card = operational_card();
    run(
        &mut card,
        "105C0301000007 -> 6D00
         105C030102AABB -> 6D00
         00A4080C0450005001 -> 9000",
    );
}
