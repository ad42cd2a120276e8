//! Status words (SW1-SW2): the documented ISO 7816-4 values as an enum, lossless to and from `u16`.

use std::fmt;

/// A status word as a card sends it after every command.
///
/// Every `u16` maps to exactly one value and back (`Status::from(sw).sw() == sw`): the values
/// ISO 7816-4 names get a variant, counters keep their count, and anything else is kept whole in
/// [`Status::Other`]. Card operations return `Result<T, Status>`, so an error *is* the status word
/// the card answers with.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `9000`: normal processing.
    Success,
    /// `61xx`: more response data is available, to be fetched with GET RESPONSE. The count is
    /// SW2: the number of bytes still available, `0` meaning 256 or more.
    MoreData(u8),
    /// `6281`: part of the returned data may be corrupted.
    DataMayBeCorrupted,
    /// `6282`: end of file or record reached before reading Ne bytes.
    EndOfFile,
    /// `6283`: the selected file is deactivated.
    FileDeactivated,
    /// `6285`: the selected file is in termination state.
    FileTerminated,
    /// `6300`: verification or authentication failed, no counter given.
    AuthenticationFailed,
    /// `6381`: the file is filled up by the last write.
    FileFilledUp,
    /// `63Cx`: verification failed; `x` tries are left (0 to 15).
    TriesLeft(u8),
    /// `6400`: execution error, non-volatile memory unchanged.
    ExecutionError,
    /// `6581`: memory failure.
    MemoryFailure,
    /// `6700`: wrong length (Lc or Le).
    WrongLength,
    /// `6881`: logical channel not supported.
    LogicalChannelNotSupported,
    /// `6882`: secure messaging not supported.
    SecureMessagingNotSupported,
    /// `6883`: last command of the chain expected.
    LastCommandOfChainExpected,
    /// `6884`: command chaining not supported.
    CommandChainingNotSupported,
    /// `6981`: command incompatible with the file structure.
    IncompatibleFileStructure,
    /// `6982`: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthenticationMethodBlocked,
    /// `6984`: reference data not usable.
    ReferenceDataNotUsable,
    /// `6985`: conditions of use not satisfied.
    ConditionsOfUseNotSatisfied,
    /// `6986`: command not allowed (no current EF).
    NoCurrentEf,
    /// `6987`: expected secure messaging data objects missing.
    SmDataObjectsMissing,
    /// `6988`: incorrect secure messaging data objects.
    SmDataObjectsIncorrect,
    /// `6A80`: incorrect parameters in the command data field.
    IncorrectData,
    /// `6A81`: function not supported.
    FunctionNotSupported,
    /// `6A82`: file or application not found.
    FileNotFound,
    /// `6A83`: record not found.
    RecordNotFound,
    /// `6A84`: not enough memory space in the file.
    NotEnoughMemory,
    /// `6A85`: Nc inconsistent with TLV structure.
    NcInconsistentWithTlv,
    /// `6A86`: incorrect parameters P1-P2.
    IncorrectP1P2,
    /// `6A87`: Nc inconsistent with parameters P1-P2.
    NcInconsistentWithP1P2,
    /// `6A88`: referenced data or reference data not found.
    ReferencedDataNotFound,
    /// `6A89`: file already exists.
    FileAlreadyExists,
    /// `6A8A`: DF name already exists.
    DfNameAlreadyExists,
    /// `6B00`: wrong parameters P1-P2 (e.g. offset outside the EF).
    WrongP1P2,
    /// `6Cxx`: wrong Le field; SW2 is the exact number of available bytes (`0` meaning 256).
    WrongLe(u8),
    /// `6D00`: instruction code not supported or invalid.
    InstructionNotSupported,
    /// `6E00`: class not supported.
    ClassNotSupported,
    /// `6F00`: no precise diagnosis.
    NoPreciseDiagnosis,
    /// Any other status word, kept whole.
    Other(OtherStatus),
}

/// A status word without a named [`Status`] variant. Only [`Status::from`] makes one, so a
/// status word has exactly one representation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OtherStatus(u16);

impl OtherStatus {
    /// The status word.
    pub fn sw(self) -> u16 {
        self.0
    }
}

impl Status {
    /// The status word as a number, e.g. `0x9000`.
    pub fn sw(self) -> u16 {
        match self {
            Status::Success => 0x9000,
            Status::MoreData(n) => 0x6100 | u16::from(n),
            Status::DataMayBeCorrupted => 0x6281,
            Status::EndOfFile => 0x6282,
            Status::FileDeactivated => 0x6283,
            Status::FileTerminated => 0x6285,
            Status::AuthenticationFailed => 0x6300,
            Status::FileFilledUp => 0x6381,
            Status::TriesLeft(n) => 0x63C0 | u16::from(n & 0x0F),
            Status::ExecutionError => 0x6400,
            Status::MemoryFailure => 0x6581,
            Status::WrongLength => 0x6700,
            Status::LogicalChannelNotSupported => 0x6881,
            Status::SecureMessagingNotSupported => 0x6882,
            Status::LastCommandOfChainExpected => 0x6883,
            Status::CommandChainingNotSupported => 0x6884,
            Status::IncompatibleFileStructure => 0x6981,
            Status::SecurityStatusNotSatisfied => 0x6982,
            Status::AuthenticationMethodBlocked => 0x6983,
            Status::ReferenceDataNotUsable => 0x6984,
            Status::ConditionsOfUseNotSatisfied => 0x6985,
            Status::NoCurrentEf => 0x6986,
            Status::SmDataObjectsMissing => 0x6987,
            Status::SmDataObjectsIncorrect => 0x6988,
            Status::IncorrectData => 0x6A80,
            Status::FunctionNotSupported => 0x6A81,
            Status::FileNotFound => 0x6A82,
            Status::RecordNotFound => 0x6A83,
            Status::NotEnoughMemory => 0x6A84,
            Status::NcInconsistentWithTlv => 0x6A85,
            Status::IncorrectP1P2 => 0x6A86,
            Status::NcInconsistentWithP1P2 => 0x6A87,
            Status::ReferencedDataNotFound => 0x6A88,
            Status::FileAlreadyExists => 0x6A89,
            Status::DfNameAlreadyExists => 0x6A8A,
            Status::WrongP1P2 => 0x6B00,
            Status::WrongLe(n) => 0x6C00 | u16::from(n),
            Status::InstructionNotSupported => 0x6D00,
            Status::ClassNotSupported => 0x6E00,
            Status::NoPreciseDiagnosis => 0x6F00,
            Status::Other(other) => other.0,
        }
    }

    /// The two status bytes, SW1 then SW2.
    pub fn to_bytes(self) -> [u8; 2] {
        self.sw().to_be_bytes()
    }

    /// `9000`, or a warning (`62xx`, `63xx`) or `61xx`: the command was processed.
    pub fn is_success(self) -> bool {
        self == Status::Success
    }

    /// What the status word means, in a few words (for traces and error messages).
    pub fn meaning(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::MoreData(_) => "more data available",
            Status::DataMayBeCorrupted => "returned data may be corrupted",
            Status::EndOfFile => "end of file reached",
            Status::FileDeactivated => "selected file deactivated",
            Status::FileTerminated => "selected file terminated",
            Status::AuthenticationFailed => "authentication failed",
            Status::FileFilledUp => "file filled up",
            Status::TriesLeft(_) => "verification failed, tries left",
            Status::ExecutionError => "execution error",
            Status::MemoryFailure => "memory failure",
            Status::WrongLength => "wrong length",
            Status::LogicalChannelNotSupported => "logical channel not supported",
            Status::SecureMessagingNotSupported => "secure messaging not supported",
            Status::LastCommandOfChainExpected => "last command of the chain expected",
            Status::CommandChainingNotSupported => "command chaining not supported",
            Status::IncompatibleFileStructure => "incompatible with file structure",
            Status::SecurityStatusNotSatisfied => "security status not satisfied",
            Status::AuthenticationMethodBlocked => "authentication method blocked",
            Status::ReferenceDataNotUsable => "reference data not usable",
            Status::ConditionsOfUseNotSatisfied => "conditions of use not satisfied",
            Status::NoCurrentEf => "no current EF",
            Status::SmDataObjectsMissing => "SM data objects missing",
            Status::SmDataObjectsIncorrect => "SM data objects incorrect",
            Status::IncorrectData => "incorrect data field",
            Status::FunctionNotSupported => "function not supported",
            Status::FileNotFound => "file not found",
            Status::RecordNotFound => "record not found",
            Status::NotEnoughMemory => "not enough memory",
            Status::NcInconsistentWithTlv => "Nc inconsistent with TLV",
            Status::IncorrectP1P2 => "incorrect P1-P2",
            Status::NcInconsistentWithP1P2 => "Nc inconsistent with P1-P2",
            Status::ReferencedDataNotFound => "referenced data not found",
            Status::FileAlreadyExists => "file already exists",
            Status::DfNameAlreadyExists => "DF name already exists",
            Status::WrongP1P2 => "wrong P1-P2",
            Status::WrongLe(_) => "wrong Le",
            Status::InstructionNotSupported => "instruction not supported",
            Status::ClassNotSupported => "class not supported",
            Status::NoPreciseDiagnosis => "no precise diagnosis",
            Status::Other(_) => "unknown status",
        }
    }
}

impl From<u16> for Status {
    fn from(sw: u16) -> Self {
        let [sw1, sw2] = sw.to_be_bytes();
        match (sw1, sw2) {
            (0x90, 0x00) => Status::Success,
            (0x61, n) => Status::MoreData(n),
            (0x62, 0x81) => Status::DataMayBeCorrupted,
            (0x62, 0x82) => Status::EndOfFile,
            (0x62, 0x83) => Status::FileDeactivated,
            (0x62, 0x85) => Status::FileTerminated,
            (0x63, 0x00) => Status::AuthenticationFailed,
            (0x63, 0x81) => Status::FileFilledUp,
            (0x63, n) if n & 0xF0 == 0xC0 => Status::TriesLeft(n & 0x0F),
            (0x64, 0x00) => Status::ExecutionError,
            (0x65, 0x81) => Status::MemoryFailure,
            (0x67, 0x00) => Status::WrongLength,
            (0x68, 0x81) => Status::LogicalChannelNotSupported,
            (0x68, 0x82) => Status::SecureMessagingNotSupported,
            (0x68, 0x83) => Status::LastCommandOfChainExpected,
            (0x68, 0x84) => Status::CommandChainingNotSupported,
            (0x69, 0x81) => Status::IncompatibleFileStructure,
            (0x69, 0x82) => Status::SecurityStatusNotSatisfied,
            (0x69, 0x83) => Status::AuthenticationMethodBlocked,
            (0x69, 0x84) => Status::ReferenceDataNotUsable,
            (0x69, 0x85) => Status::ConditionsOfUseNotSatisfied,
            (0x69, 0x86) => Status::NoCurrentEf,
            (0x69, 0x87) => Status::SmDataObjectsMissing,
            (0x69, 0x88) => Status::SmDataObjectsIncorrect,
            (0x6A, 0x80) => Status::IncorrectData,
            (0x6A, 0x81) => Status::FunctionNotSupported,
            (0x6A, 0x82) => Status::FileNotFound,
            (0x6A, 0x83) => Status::RecordNotFound,
            (0x6A, 0x84) => Status::NotEnoughMemory,
            (0x6A, 0x85) => Status::NcInconsistentWithTlv,
            (0x6A, 0x86) => Status::IncorrectP1P2,
            (0x6A, 0x87) => Status::NcInconsistentWithP1P2,
            (0x6A, 0x88) => Status::ReferencedDataNotFound,
            (0x6A, 0x89) => Status::FileAlreadyExists,
            (0x6A, 0x8A) => Status::DfNameAlreadyExists,
            (0x6B, 0x00) => Status::WrongP1P2,
            (0x6C, n) => Status::WrongLe(n),
            (0x6D, 0x00) => Status::InstructionNotSupported,
            (0x6E, 0x00) => Status::ClassNotSupported,
            (0x6F, 0x00) => Status::NoPreciseDiagnosis,
            _ => Status::Other(OtherStatus(sw)),
        }
    }
}

impl From<Status> for u16 {
    fn from(status: Status) -> Self {
        status.sw()
    }
}

impl From<[u8; 2]> for Status {
    fn from(bytes: [u8; 2]) -> Self {
        Status::from(u16::from_be_bytes(bytes))
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Status({:04X} {})", self.sw(), self.meaning())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::MoreData(0) => write!(f, "6100 (256 or more bytes available)"),
            Status::MoreData(n) => write!(f, "{:04X} ({n} bytes available)", self.sw()),
            Status::TriesLeft(n) => {
                write!(f, "{:04X} (verification failed, {n} tries left)", self.sw())
            }
            Status::WrongLe(n) => write!(f, "{:04X} (wrong Le, {n} bytes available)", self.sw()),
            _ => write!(f, "{:04X} ({})", self.sw(), self.meaning()),
        }
    }
}

impl fmt::Debug for OtherStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_u16_round_trips() {
        for sw in 0..=u16::MAX {
            assert_eq!(Status::from(sw).sw(), sw, "{sw:04X}");
        }
    }

    #[test]
    fn named_values() {
        assert_eq!(Status::from(0x9000), Status::Success);
        assert_eq!(Status::from(0x63C2), Status::TriesLeft(2));
        assert_eq!(Status::from(0x6110), Status::MoreData(0x10));
        assert_eq!(Status::from(0x6C08), Status::WrongLe(8));
        assert_eq!(Status::from(0x6983), Status::AuthenticationMethodBlocked);
        assert!(matches!(Status::from(0x6999), Status::Other(o) if o.sw() == 0x6999));
        assert_eq!(
            Status::TriesLeft(3).to_string(),
            "63C3 (verification failed, 3 tries left)"
        );
    }
}
