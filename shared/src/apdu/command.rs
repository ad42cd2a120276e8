//! Command APDUs: the ISO 7816-3 cases parsed into a borrowed view, and serialized back.

use std::fmt;

use super::ApduError;

/// The largest Ne a command can ask for (extended Le `0000`).
pub const MAX_NE: usize = 65_536;

/// The class byte, decoded as ISO 7816-4 §5.4.1 defines it.
///
/// The raw byte is kept, so a parsed command serializes back unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Class(u8);

/// What the class byte says of secure messaging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmIndication {
    /// No secure messaging.
    None,
    /// Proprietary secure messaging format.
    Proprietary,
    /// ISO secure messaging, command header not authenticated.
    HeaderNotAuthenticated,
    /// ISO secure messaging, command header authenticated.
    HeaderAuthenticated,
}

/// The kind of class byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassKind {
    /// `0x00`–`0x0F`: first interindustry values (channels 0–3).
    FirstInterindustry,
    /// `0x40`–`0x7F`: further interindustry values (channels 4–19).
    FurtherInterindustry,
    /// `0x80`–`0xFE`: proprietary.
    Proprietary,
    /// `0x10`–`0x3F` (without the chaining bit) and `0xFF`: reserved or invalid.
    Invalid,
}

impl Class {
    /// The plain interindustry class `00`.
    pub const PLAIN: Class = Class(0x00);

    /// The class byte as sent.
    pub fn byte(self) -> u8 {
        self.0
    }

    /// What kind of class this is.
    pub fn kind(self) -> ClassKind {
        match self.0 {
            0x00..=0x1F => ClassKind::FirstInterindustry,
            0x40..=0x7F => ClassKind::FurtherInterindustry,
            0xFF => ClassKind::Invalid,
            0x80..=0xFE => ClassKind::Proprietary,
            _ => ClassKind::Invalid,
        }
    }

    /// Bit 5 (`0x10`): this command is not the last of a chain.
    pub fn chained(self) -> bool {
        self.is_interindustry() && self.0 & 0x10 != 0
    }

    /// The secure messaging indication.
    pub fn secure_messaging(self) -> SmIndication {
        match self.kind() {
            ClassKind::FirstInterindustry => match (self.0 >> 2) & 0b11 {
                0b00 => SmIndication::None,
                0b01 => SmIndication::Proprietary,
                0b10 => SmIndication::HeaderNotAuthenticated,
                _ => SmIndication::HeaderAuthenticated,
            },
            ClassKind::FurtherInterindustry if self.0 & 0x20 != 0 => {
                SmIndication::HeaderNotAuthenticated
            }
            _ => SmIndication::None,
        }
    }

    /// The logical channel number (0–19).
    pub fn channel(self) -> u8 {
        match self.kind() {
            ClassKind::FirstInterindustry => self.0 & 0b11,
            ClassKind::FurtherInterindustry => 4 + (self.0 & 0x0F),
            _ => 0,
        }
    }

    /// The same class with the chaining bit set or cleared.
    pub fn with_chaining(self, chained: bool) -> Class {
        if chained {
            Class(self.0 | 0x10)
        } else {
            Class(self.0 & !0x10)
        }
    }

    /// The same class (first interindustry) with the given secure messaging indication.
    pub fn with_secure_messaging(self, sm: SmIndication) -> Class {
        let bits = match sm {
            SmIndication::None => 0b00,
            SmIndication::Proprietary => 0b01,
            SmIndication::HeaderNotAuthenticated => 0b10,
            SmIndication::HeaderAuthenticated => 0b11,
        };
        Class((self.0 & !0x0C) | (bits << 2))
    }

    fn is_interindustry(self) -> bool {
        matches!(
            self.kind(),
            ClassKind::FirstInterindustry | ClassKind::FurtherInterindustry
        )
    }
}

impl From<u8> for Class {
    fn from(byte: u8) -> Self {
        Class(byte)
    }
}

impl fmt::Debug for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Class({:02X})", self.0)
    }
}

/// How the length fields are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthForm {
    /// One-byte Lc and Le.
    Short,
    /// Three-byte Lc / Le (two bytes for Le after an extended Lc).
    Extended,
}

/// The ISO 7816-3 case of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// No data, no Le.
    Case1,
    /// Le only.
    Case2,
    /// Data only.
    Case3,
    /// Data and Le.
    Case4,
}

/// A command APDU: a borrowed view of its bytes.
///
/// `ne` is Ne, the maximum number of response bytes expected: `None` when the command has no Le
/// field, otherwise 1 to 65 536 (short Le `00` is 256, extended `0000` is 65 536).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// The class byte.
    pub class: Class,
    /// The instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// The command data field (Nc bytes).
    pub data: &'a [u8],
    /// Ne, when the command has an Le field.
    pub ne: Option<usize>,
    /// The length encoding.
    pub form: LengthForm,
}

impl<'a> Command<'a> {
    /// A case 1 command; add data and Ne with [`Command::with_data`] and [`Command::with_ne`].
    pub fn new(class: impl Into<Class>, ins: u8, p1: u8, p2: u8) -> Command<'static> {
        Command {
            class: class.into(),
            ins,
            p1,
            p2,
            data: &[],
            ne: None,
            form: LengthForm::Short,
        }
    }

    /// The same command with `data` as its data field. The form becomes extended if the data
    /// does not fit a short Lc.
    pub fn with_data<'b>(self, data: &'b [u8]) -> Command<'b> {
        let mut command = Command { data, ..self };
        command.form = command.smallest_form();
        command
    }

    /// The same command asking for `ne` response bytes (1 to 65 536), or for none.
    pub fn with_ne(self, ne: Option<usize>) -> Self {
        let mut command = Command { ne, ..self };
        command.form = command.smallest_form();
        command
    }

    /// The same command in extended length form.
    pub fn extended(self) -> Self {
        Command {
            form: LengthForm::Extended,
            ..self
        }
    }

    /// Parses a command APDU. Every byte string gets either a command or an error; trailing or
    /// missing bytes are an error.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(ApduError::TooShort(bytes.len()));
        };
        let header = |data, ne, form| Command {
            class: Class(*cla),
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data,
            ne,
            form,
        };
        let short_ne = |b: u8| if b == 0 { 256 } else { usize::from(b) };
        let extended_ne = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
            0 => MAX_NE,
            n => usize::from(n),
        };
        match body {
            // Case 1.
            [] => Ok(header(&[], None, LengthForm::Short)),
            // Case 2S.
            [le] => Ok(header(&[], Some(short_ne(*le)), LengthForm::Short)),
            // Case 2E.
            [0, hi, lo] => Ok(header(
                &[],
                Some(extended_ne(*hi, *lo)),
                LengthForm::Extended,
            )),
            // Case 3E / 4E.
            [0, hi, lo, rest @ ..] => {
                let nc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if nc == 0 {
                    return Err(ApduError::ZeroExtendedLc);
                }
                match (rest.get(..nc), rest.len().checked_sub(nc)) {
                    (Some(data), Some(0)) => Ok(header(data, None, LengthForm::Extended)),
                    (Some(data), Some(2)) => {
                        let ne = extended_ne(rest[nc], rest[nc + 1]);
                        Ok(header(data, Some(ne), LengthForm::Extended))
                    }
                    _ => Err(ApduError::LengthMismatch {
                        nc,
                        body: rest.len(),
                    }),
                }
            }
            // Case 3S / 4S; a short Lc is never zero.
            [lc, rest @ ..] => {
                let nc = usize::from(*lc);
                if nc == 0 {
                    return Err(ApduError::LengthMismatch {
                        nc,
                        body: rest.len(),
                    });
                }
                match (rest.get(..nc), rest.len().checked_sub(nc)) {
                    (Some(data), Some(0)) => Ok(header(data, None, LengthForm::Short)),
                    (Some(data), Some(1)) => {
                        Ok(header(data, Some(short_ne(rest[nc])), LengthForm::Short))
                    }
                    _ => Err(ApduError::LengthMismatch {
                        nc,
                        body: rest.len(),
                    }),
                }
            }
        }
    }

    /// The ISO 7816-3 case.
    pub fn case(&self) -> Case {
        match (self.data.is_empty(), self.ne.is_some()) {
            (true, false) => Case::Case1,
            (true, true) => Case::Case2,
            (false, false) => Case::Case3,
            (false, true) => Case::Case4,
        }
    }

    /// Ne, or 0 when there is no Le field.
    pub fn expected_len(&self) -> usize {
        self.ne.unwrap_or(0)
    }

    /// The four header bytes.
    pub fn header(&self) -> [u8; 4] {
        [self.class.byte(), self.ins, self.p1, self.p2]
    }

    /// Appends the encoded command to `out`.
    ///
    /// Fails when the data or Ne does not fit the length form (more than 65 535 data bytes, Ne
    /// above 65 536, a short form with more than 255 data bytes or Ne above 256).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ApduError> {
        let nc = self.data.len();
        let ne = self.ne;
        if nc > 0xFFFF || ne.is_some_and(|n| n == 0 || n > MAX_NE) {
            return Err(ApduError::TooLong);
        }
        if self.form == LengthForm::Short && (nc > 0xFF || ne.is_some_and(|n| n > 256)) {
            return Err(ApduError::TooLong);
        }
        out.extend_from_slice(&self.header());
        match self.form {
            LengthForm::Short => {
                if nc > 0 {
                    out.push(nc as u8);
                    out.extend_from_slice(self.data);
                }
                if let Some(n) = ne {
                    out.push((n & 0xFF) as u8);
                }
            }
            LengthForm::Extended => {
                if nc > 0 {
                    out.push(0);
                    out.extend_from_slice(&(nc as u16).to_be_bytes());
                    out.extend_from_slice(self.data);
                }
                if let Some(n) = ne {
                    if nc == 0 {
                        out.push(0);
                    }
                    out.extend_from_slice(&((n & 0xFFFF) as u16).to_be_bytes());
                }
            }
        }
        Ok(())
    }

    /// The encoded command.
    pub fn to_vec(&self) -> Result<Vec<u8>, ApduError> {
        let mut out = Vec::with_capacity(9 + self.data.len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    fn smallest_form(&self) -> LengthForm {
        if self.data.len() > 0xFF || self.ne.is_some_and(|n| n > 256) {
            LengthForm::Extended
        } else {
            self.form
        }
    }
}

impl fmt::Debug for Command<'_> {
    /// Prints the header and lengths, never the data: a command may carry a PIN or a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("class", &self.class)
            .field("ins", &format_args!("{:02X}", self.ins))
            .field("p1", &format_args!("{:02X}", self.p1))
            .field("p2", &format_args!("{:02X}", self.p2))
            .field("nc", &self.data.len())
            .field("ne", &self.ne)
            .field("form", &self.form)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(hex: &str) -> Result<Command<'static>, ApduError> {
        let bytes: &'static [u8] = Box::leak(hex::decode(hex).unwrap().into_boxed_slice());
        Command::parse(bytes)
    }

    #[test]
    fn the_seven_cases() {
        let c = parse("00A40000").unwrap();
        assert_eq!((c.case(), c.data, c.ne), (Case::Case1, &[][..], None));

        let c = parse("00B0000000").unwrap();
        assert_eq!(
            (c.case(), c.ne, c.form),
            (Case::Case2, Some(256), LengthForm::Short)
        );

        let c = parse("00A4000C023F00").unwrap();
        assert_eq!(
            (c.case(), c.data, c.ne),
            (Case::Case3, &[0x3F, 0x00][..], None)
        );

        let c = parse("00A40004023F0010").unwrap();
        assert_eq!((c.case(), c.ne), (Case::Case4, Some(16)));

        let c = parse("00B00000000000").unwrap();
        assert_eq!(
            (c.case(), c.ne, c.form),
            (Case::Case2, Some(65_536), LengthForm::Extended)
        );

        let c = parse("00D600000000020102").unwrap();
        assert_eq!(
            (c.case(), c.data, c.form),
            (Case::Case3, &[1, 2][..], LengthForm::Extended)
        );

        let c = parse("00D6000000000201020100").unwrap();
        assert_eq!((c.case(), c.ne), (Case::Case4, Some(256)));
    }

    #[test]
    fn malformed_lengths_are_errors() {
        assert_eq!(parse("00A400").unwrap_err(), ApduError::TooShort(3));
        assert!(matches!(
            parse("00A4000C033F00").unwrap_err(),
            ApduError::LengthMismatch { .. }
        ));
        assert!(matches!(
            parse("00A4000C023F000000").unwrap_err(),
            ApduError::LengthMismatch { .. }
        ));
        assert_eq!(
            parse("00B000000000000100").unwrap_err(),
            ApduError::ZeroExtendedLc
        );
        assert!(matches!(
            parse("00B000000000010203").unwrap_err(),
            ApduError::LengthMismatch { .. }
        ));
    }

    #[test]
    fn class_byte() {
        let c = Class::from(0x1C);
        assert!(c.chained());
        assert_eq!(c.secure_messaging(), SmIndication::HeaderAuthenticated);
        assert_eq!(c.channel(), 0);
        assert_eq!(Class::from(0x0C).with_chaining(true).byte(), 0x1C);
        assert_eq!(Class::from(0x03).channel(), 3);
        assert_eq!(Class::from(0x65).channel(), 9);
        assert_eq!(
            Class::from(0x60).secure_messaging(),
            SmIndication::HeaderNotAuthenticated
        );
        assert_eq!(Class::from(0x80).kind(), ClassKind::Proprietary);
        assert_eq!(Class::from(0xFF).kind(), ClassKind::Invalid);
        assert_eq!(Class::from(0x20).kind(), ClassKind::Invalid);
    }

    #[test]
    fn builder_picks_the_form() {
        let data = [0u8; 300];
        let c = Command::new(0x00, 0xD6, 0, 0).with_data(&data);
        assert_eq!(c.form, LengthForm::Extended);
        let bytes = c.to_vec().unwrap();
        assert_eq!(&bytes[..7], &[0, 0xD6, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(Command::parse(&bytes).unwrap(), c);
        let c = Command::new(0x00, 0xB0, 0, 0).with_ne(Some(256));
        assert_eq!(c.to_vec().unwrap(), [0, 0xB0, 0, 0, 0]);
    }
}
