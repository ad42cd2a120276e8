//! `--trace`: each APDU exchange decoded on one line, with secrets masked.
//!
//! What is shown follows the disclosure rule of `vsc_core::disclosure`, knowing nothing of the
//! card's state: command data is shown only for commands whose data names something (a file
//! identifier, a path, a DF name, an offset, a tag list, a new file's control parameters).
//! Everything else —
//! PINs, keys, challenges and cryptograms, whatever is written into a file (which may be in the
//! private area), any command under secure messaging or with a proprietary class, unknown
//! instructions — shows as its length only. Response data always shows as its length: which
//! responses come from the private area is not known here.

use std::fmt;

use vsc_core::apdu::{ClassKind, Command, Ins, SmIndication, Status};
use vsc_core::disclosure::{self, Disclosure};

/// The `tracing` target of trace lines; `--trace` enables it.
pub const TARGET: &str = "apdu";

/// A command and the card's response, displayed as one trace line.
#[derive(Clone, Copy)]
pub struct Exchange<'a> {
    command: &'a [u8],
    response: &'a [u8],
}

impl<'a> Exchange<'a> {
    /// The exchange of `command` and `response` (raw APDUs, as on the wire).
    pub fn new(command: &'a [u8], response: &'a [u8]) -> Self {
        Exchange { command, response }
    }
}

impl fmt::Display for Exchange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_command(f, self.command)?;
        f.write_str(" -> ")?;
        write_response(f, self.response)
    }
}

impl fmt::Debug for Exchange<'_> {
    /// The masked trace line: the raw bytes are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Exchange({self})")
    }
}

fn write_command(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let command = match Command::parse(bytes) {
        Ok(command) => command,
        Err(error) => {
            return match bytes {
                [cla, ins, p1, p2, ..] => write!(
                    f,
                    "{} {cla:02X}{ins:02X}{p1:02X}{p2:02X}: malformed command of {} bytes ({error})",
                    instruction_name(*ins, *p1),
                    bytes.len()
                ),
                _ => write!(f, "malformed command of {} bytes", bytes.len()),
            };
        }
    };
    let [cla, ins, p1, p2] = command.header();
    write!(
        f,
        "{} {cla:02X}{ins:02X}{p1:02X}{p2:02X}",
        instruction_name(ins, p1)
    )?;
    write_class(f, &command)?;
    f.write_str(": ")?;
    write_parameters(f, &command)?;
    let nc = command.data.len();
    if nc > 0 {
        if shows_data(&command) {
            write!(f, "; Nc={nc} data=")?;
            for byte in command.data {
                write!(f, "{byte:02X}")?;
            }
        } else {
            write!(f, "; Nc={nc} data masked")?;
        }
    }
    if let Some(ne) = command.ne {
        write!(f, "; Ne={ne}")?;
    }
    Ok(())
}

fn write_response(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    match bytes {
        [data @ .., sw1, sw2] => {
            let status = Status::from([*sw1, *sw2]);
            match data.len() {
                0 => write!(f, "{status}, no data"),
                len => write!(f, "{status}, {len} data bytes"),
            }
        }
        _ => write!(f, "malformed response of {} bytes", bytes.len()),
    }
}

fn write_class(f: &mut fmt::Formatter<'_>, command: &Command<'_>) -> fmt::Result {
    let class = command.class;
    match class.kind() {
        ClassKind::Proprietary => f.write_str(" [proprietary class]")?,
        ClassKind::Invalid => f.write_str(" [invalid class]")?,
        ClassKind::FirstInterindustry | ClassKind::FurtherInterindustry => {
            match class.secure_messaging() {
                SmIndication::None => {}
                SmIndication::Proprietary => f.write_str(" [proprietary SM]")?,
                SmIndication::HeaderNotAuthenticated => f.write_str(" [SM]")?,
                SmIndication::HeaderAuthenticated => f.write_str(" [SM, header authenticated]")?,
            }
            if class.chained() {
                f.write_str(" [chained]")?;
            }
            if class.channel() != 0 {
                write!(f, " [channel {}]", class.channel())?;
            }
        }
    }
    Ok(())
}

/// Whether a command's data may be printed: the disclosure rule, knowing nothing of the card.
fn shows_data(command: &Command<'_>) -> bool {
    disclosure::command_data(command, disclosure::Context::default()) == Disclosure::Show
}

/// The instruction's name: ISO 7816-4's, or for the bytes PIV cards give a meaning of their own
/// (the Yubico extensions yubico-piv-tool sends), that meaning marked "PIV". `FE` is ISO's
/// TERMINATE CARD USAGE unless P1 names a PIV algorithm (IMPORT ASYMMETRIC KEY).
fn instruction_name(ins: u8, p1: u8) -> &'static str {
    match (ins, p1) {
        (0xF7, _) => "GET METADATA (PIV)",
        (0xF8, _) => "GET SERIAL (PIV)",
        (0xFA, _) => "SET PIN RETRIES (PIV)",
        (0xFB, _) => "RESET (PIV)",
        (0xFD, _) => "GET VERSION (PIV)",
        (0xFE, 0x07 | 0x11 | 0x14) => "IMPORT ASYMMETRIC KEY (PIV)",
        (0xFF, _) => "SET MANAGEMENT KEY (PIV)",
        _ => Ins::from_byte(ins).map_or("INS", Ins::name),
    }
}

/// A PIV algorithm identifier's name (SP 800-78-4), for GENERAL AUTHENTICATE and key import.
fn piv_algorithm(byte: u8) -> Option<&'static str> {
    match byte {
        0x00 | 0x03 => Some("3DES"),
        0x07 => Some("RSA-2048"),
        0x08 => Some("AES-128"),
        0x0A => Some("AES-192"),
        0x0C => Some("AES-256"),
        0x11 => Some("ECC P-256"),
        0x14 => Some("ECC P-384"),
        _ => None,
    }
}

/// The parameters of PIV's own instructions, if `command` is one.
fn write_piv_parameters(f: &mut fmt::Formatter<'_>, command: &Command<'_>) -> Option<fmt::Result> {
    let (p1, p2) = (command.p1, command.p2);
    Some(match command.ins {
        0xF7 => write!(f, "key reference {p2:02X}"),
        0xFA => write!(f, "PIN tries {p1}, PUK tries {p2}"),
        0xFE if piv_algorithm(p1).is_some() => write!(
            f,
            "algorithm {p1:02X} ({}), key {p2:02X}",
            piv_algorithm(p1).unwrap_or_default()
        ),
        0xFF => write!(
            f,
            "key 9B, {}",
            if p2 == 0xFE {
                "touch required"
            } else {
                "no touch"
            }
        ),
        0xF8 | 0xFB | 0xFD => f.write_str("no parameters"),
        _ => return None,
    })
}

/// What P1 and P2 mean for the instruction (ISO 7816-4 §7, §11).
fn write_parameters(f: &mut fmt::Formatter<'_>, command: &Command<'_>) -> fmt::Result {
    if let Some(result) = write_piv_parameters(f, command) {
        return result;
    }
    let (p1, p2) = (command.p1, command.p2);
    let p1p2 = u16::from_be_bytes([p1, p2]);
    match Ins::from_byte(command.ins) {
        Some(Ins::Select) => {
            write_file_target(f, p1, command.data.is_empty(), "MF")?;
            let occurrence = match p2 & 0x03 {
                0 => "first or only occurrence",
                1 => "last occurrence",
                2 => "next occurrence",
                _ => "previous occurrence",
            };
            let answer = match p2 & 0x0C {
                0x00 => "return FCI",
                0x04 => "return FCP",
                0x08 => "return FMD",
                _ => "no response data",
            };
            write!(f, ", {occurrence}, {answer}")?;
            if p2 & 0xF0 != 0 {
                write!(f, " (P2 {p2:02X}: proprietary bits)")?;
            }
            Ok(())
        }
        Some(Ins::ReadBinary | Ins::UpdateBinary | Ins::EraseBinary) if p1 & 0x80 != 0 => {
            write!(f, "short EF {:02X}, offset {p2}", p1 & 0x1F)
        }
        Some(Ins::ReadBinary | Ins::UpdateBinary | Ins::EraseBinary) => {
            write!(f, "current EF, offset {}", p1p2 & 0x7FFF)
        }
        Some(Ins::ReadBinaryOdd | Ins::UpdateBinaryOdd | Ins::EraseBinaryOdd) => {
            write_odd_file(f, p1p2)?;
            f.write_str(", offset in data")
        }
        Some(
            Ins::ReadRecord
            | Ins::ReadRecordOdd
            | Ins::UpdateRecord
            | Ins::UpdateRecordOdd
            | Ins::AppendRecord,
        ) => {
            write_record_file(f, p2)?;
            match (Ins::from_byte(command.ins), p2 & 0x07) {
                (Some(Ins::AppendRecord), _) => Ok(()),
                (_, 0x04) if p1 == 0 => f.write_str(", current record"),
                (_, 0x04) => write!(f, ", record {p1}"),
                (Some(Ins::ReadRecord | Ins::ReadRecordOdd), 0x05) => {
                    write!(f, ", records {p1} to last")
                }
                (Some(Ins::ReadRecord | Ins::ReadRecordOdd), 0x06) => {
                    write!(f, ", records last to {p1}")
                }
                (_, occurrence @ 0x00..=0x03) => write!(
                    f,
                    ", record identifier {p1:02X}, {} occurrence",
                    ["first", "last", "next", "previous"][usize::from(occurrence)]
                ),
                (_, other) => write!(f, ", P2 b3-b1 {other:03b} reserved"),
            }
        }
        Some(Ins::GetData | Ins::PutData) => {
            write!(f, "tag {p1p2:04X}")?;
            if command.ins == Ins::PutData.byte() && (0x0100..=0x01FF).contains(&p1p2) {
                f.write_str(" (key or password object)")?;
            }
            Ok(())
        }
        Some(Ins::GetDataOdd | Ins::PutDataOdd) => write_odd_file(f, p1p2),
        Some(Ins::Verify | Ins::VerifyOdd) => {
            write_reference(f, "reference", p2)?;
            if command.data.is_empty() {
                f.write_str(", retry counter query")?;
            }
            Ok(())
        }
        Some(Ins::ChangeReferenceData) => {
            write_reference(f, "reference", p2)?;
            f.write_str(match p1 {
                0x00 => ", old and new reference data",
                0x01 => ", new reference data only",
                _ => ", P1 unknown",
            })
        }
        Some(Ins::ResetRetryCounter) => {
            write_reference(f, "reference", p2)?;
            f.write_str(match p1 {
                0x00 => ", resetting code and new reference data",
                0x01 => ", resetting code only",
                0x02 => ", new reference data only",
                0x03 => ", no data",
                _ => ", P1 unknown",
            })
        }
        Some(Ins::GetChallenge) => match p1 {
            0 => f.write_str("no algorithm information"),
            algorithm => write!(f, "algorithm {algorithm:02X}"),
        },
        Some(
            Ins::InternalAuthenticate
            | Ins::ExternalAuthenticate
            | Ins::GeneralAuthenticate
            | Ins::GeneralAuthenticateOdd,
        ) => {
            match (p1, piv_algorithm(p1)) {
                (0, _) => f.write_str("algorithm known before")?,
                (algorithm, Some(name)) if command.ins == Ins::GeneralAuthenticateOdd.byte() => {
                    write!(f, "algorithm {algorithm:02X} ({name})")?
                }
                (algorithm, _) => write!(f, "algorithm {algorithm:02X}")?,
            }
            f.write_str(", ")?;
            write_reference(f, "key", p2)
        }
        Some(Ins::CreateFile) => match p1p2 {
            0 => f.write_str("control parameters in data"),
            _ => write!(f, "P1-P2 {p1p2:04X}"),
        },
        Some(
            Ins::DeleteFile
            | Ins::ActivateFile
            | Ins::DeactivateFile
            | Ins::TerminateDf
            | Ins::TerminateEf,
        ) => write_file_target(f, p1, command.data.is_empty(), "current file"),
        Some(Ins::TerminateCardUsage) => f.write_str("the whole card"),
        Some(Ins::PerformSecurityOperation) => match p1p2 {
            0x9E9A => f.write_str("compute digital signature"),
            0x8086 => f.write_str("decipher"),
            0x8680 => f.write_str("encipher"),
            _ => write!(f, "P1-P2 {p1p2:04X}"),
        },
        Some(Ins::GenerateAsymmetricKeyPair) => match p1 {
            0x80 => f.write_str("generate a key pair"),
            0x81 => f.write_str("read a public key"),
            _ => write!(f, "P1 {p1:02X}"),
        },
        Some(Ins::ManageSecurityEnvironment) => {
            let template = match p2 {
                0xA4 => "authentication",
                0xB6 => "digital signature",
                0xB8 => "confidentiality",
                _ => "P2 unknown",
            };
            match p1 {
                0x41 => write!(f, "set, {template} template"),
                _ => write!(f, "P1 {p1:02X}, {template} template"),
            }
        }
        Some(Ins::SelectData) => write!(f, "occurrence {p1}, P2 {p2:02X}"),
        Some(Ins::GetResponse) => f.write_str("the remaining response bytes"),
        _ => write!(f, "P1-P2 {p1p2:04X}"),
    }
}

/// P1 of SELECT and of the file life cycle commands: how the data field names the file.
fn write_file_target(
    f: &mut fmt::Formatter<'_>,
    p1: u8,
    no_data: bool,
    without_data: &str,
) -> fmt::Result {
    match p1 {
        0x00 if no_data => f.write_str(without_data),
        0x00 => f.write_str("by file identifier"),
        0x01 => f.write_str("child DF"),
        0x02 => f.write_str("EF under the current DF"),
        0x03 => f.write_str("parent DF"),
        0x04 => f.write_str("by DF name"),
        0x08 => f.write_str("by path from the MF"),
        0x09 => f.write_str("by path from the current DF"),
        other => write!(f, "P1 {other:02X} unknown"),
    }
}

/// P1-P2 of the odd instructions that name a file: a file identifier, or a short EF identifier
/// in its last five bits when the eleven before them are zero.
fn write_odd_file(f: &mut fmt::Formatter<'_>, p1p2: u16) -> fmt::Result {
    match p1p2 {
        0x0000 => f.write_str("current EF"),
        0x3FFF => f.write_str("current DF"),
        0x0001..=0x001E => write!(f, "short EF {p1p2:02X}"),
        file => write!(f, "file {file:04X}"),
    }
}

/// P2 of the record commands: the file (bits 8-4).
fn write_record_file(f: &mut fmt::Formatter<'_>, p2: u8) -> fmt::Result {
    match p2 >> 3 {
        0x00 => f.write_str("current EF"),
        0x1F => f.write_str("P2 b8-b4 reserved"),
        sfi => write!(f, "short EF {sfi:02X}"),
    }
}

/// A reference byte (P2 of VERIFY and the authentications): b8 global/specific, b5-b1 number.
fn write_reference(f: &mut fmt::Formatter<'_>, what: &str, p2: u8) -> fmt::Result {
    match p2 {
        0 => write!(f, "no {what} information"),
        _ => {
            let scope = if p2 & 0x80 == 0 { "global" } else { "specific" };
            write!(f, "{what} {p2:02X} ({scope}, number {})", p2 & 0x1F)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(command: &str, response: &str) -> String {
        let command = hex::decode(command).unwrap();
        let response = hex::decode(response).unwrap();
        Exchange::new(&command, &response).to_string()
    }

    #[test]
    fn select_by_name() {
        assert_eq!(
            line("00A4040C07F0010203040506", "9000"),
            "SELECT 00A4040C: by DF name, first or only occurrence, no response data; \
             Nc=7 data=F0010203040506 -> 9000 (success), no data"
        );
    }

    #[test]
    fn select_mf_and_path() {
        assert_eq!(
            line("00A40000", "6A82"),
            "SELECT 00A40000: MF, first or only occurrence, return FCI -> 6A82 (file not found), \
             no data"
        );
        assert_eq!(
            line("00A408040450002F0100", "62038201019000"),
            "SELECT 00A40804: by path from the MF, first or only occurrence, return FCP; \
             Nc=4 data=50002F01; Ne=256 -> 9000 (success), 5 data bytes"
        );
    }

    #[test]
    fn reads_show_offsets_and_lengths_only() {
        assert_eq!(
            line("00B0811000", "0102039000"),
            "READ BINARY 00B08110: short EF 01, offset 16; Ne=256 -> 9000 (success), 3 data bytes"
        );
        assert_eq!(
            line("00B2010C00", "6A83"),
            "READ RECORD(S) 00B2010C: short EF 01, record 1; Ne=256 -> 6A83 (record not found), \
             no data"
        );
        assert_eq!(
            line("00CA9F7F2D", "6C10"),
            "GET DATA 00CA9F7F: tag 9F7F; Ne=45 -> 6C10 (wrong Le, 16 bytes available), no data"
        );
    }

    #[test]
    fn verify_masks_the_pin() {
        let text = line("0020008108313233343536FFFF", "63C2");
        assert_eq!(
            text,
            "VERIFY 00200081: reference 81 (specific, number 1); Nc=8 data masked -> \
             63C2 (verification failed, 2 tries left), no data"
        );
        assert!(!text.contains("313233"));
    }

    #[test]
    fn key_loads_and_sm_commands_are_masked() {
        let key = "00112233445566778899AABBCCDDEEFF";
        let text = line(&format!("00DA010110{key}"), "9000");
        assert!(text.starts_with(
            "PUT DATA 00DA0101: tag 0101 (key or password object); Nc=16 data masked"
        ));
        assert!(!text.contains("00112233"));

        // SELECT is shown in plain, but not under SM: its data is a cryptogram then.
        let text = line("0CA4040C0B870901A1A2A3A4A5A6A7A8", "9000");
        assert_eq!(
            text,
            "SELECT 0CA4040C [SM, header authenticated]: by DF name, first or only occurrence, \
             no response data; Nc=11 data masked -> 9000 (success), no data"
        );
    }

    #[test]
    fn openpgp_commands_are_named_and_their_secrets_masked() {
        let sign = line(&format!("002A9E9A20{}00", "11".repeat(32)), "9000");
        assert!(
            sign.starts_with(
                "PERFORM SECURITY OPERATION 002A9E9A: compute digital signature; Nc=32 data masked"
            ),
            "{sign}"
        );
        let generate = line("0047800002B60000", "9000");
        assert!(
            generate.starts_with("GENERATE ASYMMETRIC KEY PAIR 00478000: generate a key pair"),
            "{generate}"
        );
        assert!(line("002241B803830102", "9000").contains("set, confidentiality template"));
        assert!(
            line("00A5020406600 45C027F21".replace(' ', "").as_str(), "9000")
                .starts_with("SELECT DATA 00A50204: occurrence 2")
        );
        let import = line("00DB3FFF064D04B6007F4800", "9000");
        assert!(import.contains("data masked"), "{import}");
    }

    #[test]
    fn piv_instructions_are_named_and_their_secrets_masked() {
        let key = "0102030405060708".repeat(3);
        let set = line(&format!("00FFFFFF1B039B18{key}"), "9000");
        assert!(
            set.starts_with(
                "SET MANAGEMENT KEY (PIV) 00FFFFFF: key 9B, no touch; Nc=27 data masked"
            ),
            "{set}"
        );
        assert!(!set.contains("01020304"));
        let import = line(
            &format!("00FE119E22 0620{}", "AB".repeat(32)).replace(' ', ""),
            "9000",
        );
        assert!(
            import.starts_with(
                "IMPORT ASYMMETRIC KEY (PIV) 00FE119E: algorithm 11 (ECC P-256), key 9E"
            ),
            "{import}"
        );
        assert!(import.contains("data masked") && !import.contains("ABAB"));
        assert!(line("00FE0000", "6985").starts_with("TERMINATE CARD USAGE 00FE0000"));
        let witness = line("0087039B047C028000", "7C0A8008A1A2A3A4A5A6A7A89000");
        assert!(
            witness.starts_with(
                "GENERAL AUTHENTICATE 0087039B: algorithm 03 (3DES), key 9B (specific, number 27); \
                 Nc=4 data masked"
            ),
            "{witness}"
        );
        assert!(witness.ends_with("12 data bytes") && !witness.contains("A1A2"));
        assert!(
            line("00F7009A", "6A88").starts_with("GET METADATA (PIV) 00F7009A: key reference 9A")
        );
        assert!(line("00FA0506", "9000").contains("PIN tries 5, PUK tries 6"));
        assert!(line("00FD000000", "0504039000").starts_with("GET VERSION (PIV) 00FD0000"));
        assert!(line("00FB0000", "6985").starts_with("RESET (PIV) 00FB0000"));
        assert!(line("00F8000000", "000030019000").starts_with("GET SERIAL (PIV) 00F80000"));
    }

    #[test]
    fn class_notes() {
        assert!(line("10DA0101020102", "9000").contains("[chained]"));
        assert!(line("01A40000", "9000").contains("[channel 1]"));
        assert!(line("80A4040C02A1A2", "9000").contains("[proprietary class]"));
        assert!(line("80A4040C02A1A2", "9000").contains("data masked"));
    }

    #[test]
    fn malformed_apdus() {
        assert_eq!(
            line("0020008108313233", "6700"),
            "VERIFY 00200081: malformed command of 8 bytes (Lc says 8 data bytes but 3 bytes \
             follow it) -> 6700 (wrong length), no data"
        );
        assert_eq!(
            line("00", "90"),
            "malformed command of 1 bytes -> malformed response of 1 bytes"
        );
    }

    #[test]
    fn authenticate_and_record_writes() {
        assert_eq!(
            line(
                "0088008110A0A1A2A3A4A5A6A7A8A9AAABACADAEAF00",
                "C0C1C2C39000"
            ),
            "INTERNAL AUTHENTICATE 00880081: algorithm known before, key 81 (specific, number 1); \
             Nc=16 data masked; Ne=256 -> 9000 (success), 4 data bytes"
        );
        assert_eq!(
            line("00E2001003414243", "9000"),
            "APPEND RECORD 00E20010: short EF 02; Nc=3 data masked -> 9000 (success), no data"
        );
        assert_eq!(
            line("002C0201023132", "9000"),
            "RESET RETRY COUNTER 002C0201: reference 01 (global, number 1), new reference data \
             only; Nc=2 data masked -> 9000 (success), no data"
        );
    }

    /// Commands under SM, and every instruction whose data is secret or may be private.
    fn masked_header() -> impl Strategy<Value = [u8; 4]> {
        let secret_ins = prop::sample::select(vec![
            Ins::Verify,
            Ins::ChangeReferenceData,
            Ins::ResetRetryCounter,
            Ins::InternalAuthenticate,
            Ins::ExternalAuthenticate,
            Ins::PutData,
            Ins::PutDataOdd,
            Ins::UpdateBinary,
            Ins::UpdateBinaryOdd,
            Ins::UpdateRecord,
            Ins::AppendRecord,
        ]);
        let plain = (0u8..4, secret_ins, any::<u8>(), any::<u8>())
            .prop_map(|(cla, ins, p1, p2)| [cla, ins.byte(), p1, p2]);
        let sm = (
            prop::sample::select(vec![0x04u8, 0x08, 0x0C, 0x0D, 0x1C, 0x60, 0x6F]),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
        )
            .prop_map(|(cla, ins, p1, p2)| [cla, ins, p1, p2]);
        prop_oneof![plain, sm]
    }

    fn apdu(header: [u8; 4], data: &[u8], ne: Option<usize>) -> Vec<u8> {
        Command::new(header[0], header[1], header[2], header[3])
            .with_data(data)
            .with_ne(ne)
            .to_vec()
            .unwrap()
    }

    proptest! {
        #[test]
        fn never_panics(
            command in proptest::collection::vec(any::<u8>(), 0..300),
            response in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let _ = Exchange::new(&command, &response).to_string();
        }

        /// No masked byte reaches the line: two commands that differ only in their masked data
        /// give the same line.
        #[test]
        fn masked_data_does_not_reach_the_line(
            header in masked_header(),
            (a, b) in (1usize..300).prop_flat_map(|n| (
                proptest::collection::vec(any::<u8>(), n),
                proptest::collection::vec(any::<u8>(), n),
            )),
            ne in proptest::option::of(1usize..=256),
        ) {
            let response = [0x90, 0x00];
            let line_a = Exchange::new(&apdu(header, &a, ne), &response).to_string();
            let line_b = Exchange::new(&apdu(header, &b, ne), &response).to_string();
            prop_assert!(line_a.contains("data masked"), "{}", line_a);
            prop_assert_eq!(line_a, line_b);
        }

        /// Response data never reaches the line, whatever the command.
        #[test]
        fn response_data_does_not_reach_the_line(
            command in proptest::collection::vec(any::<u8>(), 4..40),
            (a, b) in (0usize..300).prop_flat_map(|n| (
                proptest::collection::vec(any::<u8>(), n),
                proptest::collection::vec(any::<u8>(), n),
            )),
            sw in any::<[u8; 2]>(),
        ) {
            let response_a = [&a[..], &sw].concat();
            let response_b = [&b[..], &sw].concat();
            prop_assert_eq!(
                Exchange::new(&command, &response_a).to_string(),
                Exchange::new(&command, &response_b).to_string()
            );
        }
    }
}
