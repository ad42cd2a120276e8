//! The one rule for what of an APDU exchange may be shown outside the card: in the emulator's
//! trace, in a recorded session, in a station's or a replay's failure message, in the store's
//! failure column.
//!
//! The rule is an allow list. Command data is shown only when it merely *names* something (a
//! file, a path, an application, an offset, a tag list, a new file's control parameters), or
//! when it is known to be written into public data; response data only when it is known to be
//! read from public data or to be a public key. What is public is the card's to say
//! ([`crate::card::Card::disclosure_context`]): for the VSC file system the file addressed, for
//! an application the data object or key pair its last command addressed (OpenPGP's cardholder
//! data and public keys are public; its private use DOs 3 and 4, the resetting code and key
//! imports are not). Everything else — reference data (PINs, PUKs,
//! resetting codes), keys, challenges and cryptograms, private data, any instruction this rule
//! does not know (including every proprietary or application-specific one), any proprietary
//! class — is masked. Secure messaging is shown only when the exchange is known to be genuine
//! secure messaging (the card answered it under the channel): a command with an SM class that the
//! card refused may carry a PIN in clear.

use std::fmt::{self, Write as _};

use crate::apdu::{ClassKind, Command, Ins, SmIndication};

/// Whether bytes may be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disclosure {
    /// They may be shown as they are.
    Show,
    /// They must be masked: shown as their length, or as zero bytes or `?` in a recording.
    Mask,
}

/// What the observer knows about an exchange beyond its bytes. The default knows nothing, and
/// masks the most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The exchange is genuine secure messaging: the card accepted the command under the
    /// channel and protected its answer (or the exchange comes from a transcript whose header
    /// says the steps go through the channel). Its data is ciphertext and MACs.
    pub protected: bool,
    /// Whether the file or object the command addresses is known to be public (`Some(true)`),
    /// known to be private (`Some(false)`), or not known (`None`, treated as private).
    pub public_target: Option<bool>,
}

impl Context {
    /// A context for an exchange known to be genuine secure messaging.
    pub fn protected() -> Context {
        Context {
            protected: true,
            ..Context::default()
        }
    }
}

/// Whether a command's data may be shown.
pub fn command_data(command: &Command<'_>, context: Context) -> Disclosure {
    if command.data.is_empty() {
        return Disclosure::Show;
    }
    match plain_interindustry(command, context) {
        Some(true) => {}
        Some(false) => return Disclosure::Show,
        None => return Disclosure::Mask,
    }
    let public = context.public_target == Some(true);
    let shown = match Ins::from_byte(command.ins) {
        // Data that only names or addresses something.
        Some(
            Ins::Select
            | Ins::SelectData
            | Ins::ReadBinaryOdd
            | Ins::ReadRecordOdd
            | Ins::EraseBinary
            | Ins::EraseBinaryOdd
            | Ins::GetDataOdd
            | Ins::CreateFile
            | Ins::DeleteFile
            | Ins::ActivateFile
            | Ins::DeactivateFile
            | Ins::TerminateDf
            | Ins::TerminateEf
            | Ins::ManageSecurityEnvironment,
        ) => true,
        // Writes: shown only into what is known to be public. PUT DATA `01xx` defines and
        // loads key and password objects: never shown.
        Some(
            Ins::UpdateBinary
            | Ins::UpdateBinaryOdd
            | Ins::WriteBinary
            | Ins::UpdateRecord
            | Ins::UpdateRecordOdd
            | Ins::WriteRecord
            | Ins::AppendRecord,
        ) => public,
        Some(Ins::PutData | Ins::PutDataOdd) => public && command.p1 != 0x01,
        // A key pair's control reference template (which key), when the card says the
        // command is about a public key.
        Some(Ins::GenerateAsymmetricKeyPair) => public,
        _ => false,
    };
    if shown {
        Disclosure::Show
    } else {
        Disclosure::Mask
    }
}

/// Whether a response's data may be shown.
pub fn response_data(command: &Command<'_>, context: Context) -> Disclosure {
    match plain_interindustry(command, context) {
        Some(true) => {}
        Some(false) => return Disclosure::Show,
        None => return Disclosure::Mask,
    }
    let public = context.public_target == Some(true);
    let shown = match Ins::from_byte(command.ins) {
        // The FCI or FCP of a selected file describes it; it holds no content.
        Some(Ins::Select) => true,
        Some(
            Ins::ReadBinary
            | Ins::ReadBinaryOdd
            | Ins::ReadRecord
            | Ins::ReadRecordOdd
            | Ins::GetData
            | Ins::GetDataOdd
            | Ins::GenerateAsymmetricKeyPair,
        ) => public,
        // Challenges are random, signatures and deciphered data are the card's secrets' work,
        // GET RESPONSE continues an answer whose kind is not known here.
        _ => false,
    };
    if shown {
        Disclosure::Show
    } else {
        Disclosure::Mask
    }
}

/// `Some(true)` for a plain interindustry command (the instruction decides), `Some(false)` for
/// genuine secure messaging (shown: ciphertext), `None` for everything else (masked).
fn plain_interindustry(command: &Command<'_>, context: Context) -> Option<bool> {
    match command.class.kind() {
        ClassKind::FirstInterindustry | ClassKind::FurtherInterindustry => {}
        ClassKind::Proprietary | ClassKind::Invalid => return None,
    }
    match command.class.secure_messaging() {
        SmIndication::None => Some(true),
        SmIndication::HeaderAuthenticated | SmIndication::HeaderNotAuthenticated
            if context.protected =>
        {
            Some(false)
        }
        _ => None,
    }
}

/// A command APDU in hex with its data masked where the rule says so, for messages:
/// `00200001 Lc=08 data masked (8 bytes)`, or the whole APDU when nothing is secret.
/// Bytes that are not a command APDU show as their length.
pub struct MaskedCommand<'a> {
    bytes: &'a [u8],
    context: Context,
}

impl<'a> MaskedCommand<'a> {
    /// `bytes` (a command APDU as sent) shown under `context`.
    pub fn new(bytes: &'a [u8], context: Context) -> MaskedCommand<'a> {
        MaskedCommand { bytes, context }
    }
}

impl fmt::Display for MaskedCommand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(command) = Command::parse(self.bytes) else {
            return write!(f, "({} bytes, not a command APDU)", self.bytes.len());
        };
        match command_data(&command, self.context) {
            Disclosure::Show => write_hex(f, self.bytes),
            Disclosure::Mask => {
                write_hex(f, &command.header())?;
                write!(f, " ({} data bytes masked)", command.data.len())?;
                if let Some(ne) = command.ne {
                    write!(f, " Ne={ne}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for MaskedCommand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskedCommand({self})")
    }
}

/// A response APDU in hex with its data masked where the rule says so: the status word is
/// always shown.
pub struct MaskedResponse<'a> {
    command: &'a [u8],
    response: &'a [u8],
    context: Context,
}

impl<'a> MaskedResponse<'a> {
    /// The `response` to `command` shown under `context`.
    pub fn new(command: &'a [u8], response: &'a [u8], context: Context) -> MaskedResponse<'a> {
        MaskedResponse {
            command,
            response,
            context,
        }
    }
}

impl fmt::Display for MaskedResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let disclosure = Command::parse(self.command).map_or(Disclosure::Mask, |command| {
            response_data(&command, self.context)
        });
        match (disclosure, self.response) {
            (_, []) => f.write_str("(no response)"),
            (Disclosure::Show, bytes) => write_hex(f, bytes),
            (Disclosure::Mask, [sw1, sw2]) => write!(f, "{sw1:02X}{sw2:02X}"),
            (Disclosure::Mask, [data @ .., sw1, sw2]) => {
                write!(f, "({} data bytes masked) {sw1:02X}{sw2:02X}", data.len())
            }
            (Disclosure::Mask, bytes) => write!(f, "({} bytes)", bytes.len()),
        }
    }
}

impl fmt::Debug for MaskedResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskedResponse({self})")
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for byte in bytes {
        f.write_fmt(format_args!("{byte:02X}"))?;
    }
    Ok(())
}

/// The hex of a masked command, as a string (for error values that own their text).
pub fn masked_command(bytes: &[u8], context: Context) -> String {
    let mut text = String::new();
    let _ = write!(text, "{}", MaskedCommand::new(bytes, context));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(hex: &str) -> Vec<u8> {
        hex::decode(hex).unwrap()
    }

    fn shown(hex: &str, context: Context) -> bool {
        let bytes = command(hex);
        command_data(&Command::parse(&bytes).unwrap(), context) == Disclosure::Show
    }

    const PUBLIC: Context = Context {
        protected: false,
        public_target: Some(true),
    };

    #[test]
    fn reference_data_is_never_shown() {
        for hex in [
            "0020000108313233343536FFFF", // VERIFY
            "0021000108313233343536FFFF", // VERIFY, odd INS (6D00 on the VSC)
            "0C20000108313233343536FFFF", // VERIFY with an SM class, refused (6985)
            "0824010108313233343536FFFF", // CHANGE REFERENCE DATA, SM class not genuine
            "002401010831323334353637FF", // CHANGE REFERENCE DATA
            "002C0001083132333435363738", // RESET RETRY COUNTER
            "00DA0104038F0101",           // PUT DATA 0104: a key value
            "80200001083132333435363738", // proprietary class
            "1020000108313233343536FFFF", // a chained VERIFY
        ] {
            for context in [Context::default(), PUBLIC] {
                assert!(!shown(hex, context), "{hex} shown under {context:?}");
            }
        }
    }

    #[test]
    fn unknown_and_application_instructions_are_masked() {
        // PIV's SET MANAGEMENT KEY (FF), OpenPGP's PSO (2A), GENERAL AUTHENTICATE (87).
        for hex in [
            "00FFFFFF1B039B18000102030405060708090A0B0C0D0E0F1011121314151617",
            "002A9E9A0401020304",
            "0087039B047C028100",
        ] {
            assert!(!shown(hex, PUBLIC), "{hex}");
        }
    }

    #[test]
    fn addressing_data_is_shown() {
        assert!(shown("00A4040C06D27600012401", Context::default()));
        assert!(shown("00A4080C0450005001", Context::default()));
        assert!(shown("00CB3FFF045C025FC1", Context::default()));
    }

    #[test]
    fn writes_are_shown_only_into_public_data() {
        assert!(shown("00D6000003414243", PUBLIC));
        assert!(!shown("00D6000003414243", Context::default()));
        assert!(shown("00DA005B03414243", PUBLIC));
        assert!(!shown("00DA010103414243", PUBLIC), "PUT DATA 01xx");
    }

    #[test]
    fn public_keys_are_shown_only_when_the_card_says_so() {
        let generate = command("0047810002B60000");
        let generate = Command::parse(&generate).unwrap();
        assert_eq!(command_data(&generate, PUBLIC), Disclosure::Show);
        assert_eq!(response_data(&generate, PUBLIC), Disclosure::Show);
        assert_eq!(
            response_data(&generate, Context::default()),
            Disclosure::Mask
        );
        // OpenPGP key import and the resetting code: the card says "not public".
        let private = Context {
            public_target: Some(false),
            ..Context::default()
        };
        assert!(!shown("00DB3FFF044D02B600", private));
        assert!(!shown("00DA00D3083132333435363738", private));
        assert!(!shown("002A9E9A0401020304", PUBLIC), "what is signed");
    }

    #[test]
    fn genuine_secure_messaging_is_shown() {
        let sm = "0CD600001D871101A54DCA182530BB1D6D132CDED6237B2E8E08D91E3F721FCB197100";
        assert!(shown(sm, Context::protected()));
        assert!(!shown(sm, Context::default()));
    }

    #[test]
    fn responses_are_shown_only_when_public() {
        let read = command("00B0000004");
        let read = Command::parse(&read).unwrap();
        assert_eq!(response_data(&read, PUBLIC), Disclosure::Show);
        assert_eq!(response_data(&read, Context::default()), Disclosure::Mask);
        let challenge = command("0084000008");
        let challenge = Command::parse(&challenge).unwrap();
        assert_eq!(response_data(&challenge, PUBLIC), Disclosure::Mask);
    }

    #[test]
    fn masked_text_keeps_the_header_and_the_status() {
        let verify = command("0020000108313233343536FFFF");
        assert_eq!(
            masked_command(&verify, Context::default()),
            "00200001 (8 data bytes masked)"
        );
        let read = command("00B0000004");
        assert_eq!(
            MaskedResponse::new(&read, &command("010203049000"), Context::default()).to_string(),
            "(4 data bytes masked) 9000"
        );
        assert_eq!(
            MaskedResponse::new(&read, &command("010203049000"), PUBLIC).to_string(),
            "010203049000"
        );
        assert_eq!(
            masked_command(&[0x00, 0x20], Context::default()),
            "(2 bytes, not a command APDU)"
        );
    }
}
