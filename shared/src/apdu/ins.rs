//! Instructions: the interindustry INS bytes of ISO 7816-4 (§5.4.2, table 4, with their odd
//! forms) as one enum, shared by the card's dispatch, the transcript compiler, the trace, the
//! recorder and the disclosure rule. Card applications (OpenPGP, PIV) give some other bytes a
//! meaning of their own; those are theirs, not here.

use std::fmt;

macro_rules! instructions {
    ($($(#[$doc:meta])* $name:ident = $byte:literal, $label:literal;)*) => {
        /// An interindustry instruction.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Ins {
            $($(#[$doc])* $name,)*
        }

        impl Ins {
            /// Every instruction, in INS order.
            pub const ALL: &'static [Ins] = &[$(Ins::$name,)*];

            /// The INS byte.
            pub const fn byte(self) -> u8 {
                match self {
                    $(Ins::$name => $byte,)*
                }
            }

            /// The instruction an INS byte names, if it is an interindustry one.
            pub const fn from_byte(byte: u8) -> Option<Ins> {
                match byte {
                    $($byte => Some(Ins::$name),)*
                    _ => None,
                }
            }

            /// The name ISO 7816-4 gives it, e.g. `READ BINARY` (the odd form has the same name).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Ins::$name => $label,)*
                }
            }
        }
    };
}

instructions! {
    /// DEACTIVATE FILE.
    DeactivateFile = 0x04, "DEACTIVATE FILE";
    /// ERASE BINARY, offset in P1-P2.
    EraseBinary = 0x0E, "ERASE BINARY";
    /// ERASE BINARY, offset in the data.
    EraseBinaryOdd = 0x0F, "ERASE BINARY";
    /// VERIFY.
    Verify = 0x20, "VERIFY";
    /// VERIFY, odd form (data in BER-TLV).
    VerifyOdd = 0x21, "VERIFY";
    /// MANAGE SECURITY ENVIRONMENT.
    ManageSecurityEnvironment = 0x22, "MANAGE SECURITY ENVIRONMENT";
    /// CHANGE REFERENCE DATA.
    ChangeReferenceData = 0x24, "CHANGE REFERENCE DATA";
    /// PERFORM SECURITY OPERATION (compute a signature, decipher, …).
    PerformSecurityOperation = 0x2A, "PERFORM SECURITY OPERATION";
    /// RESET RETRY COUNTER.
    ResetRetryCounter = 0x2C, "RESET RETRY COUNTER";
    /// ACTIVATE FILE.
    ActivateFile = 0x44, "ACTIVATE FILE";
    /// GENERATE ASYMMETRIC KEY PAIR.
    GenerateAsymmetricKeyPair = 0x47, "GENERATE ASYMMETRIC KEY PAIR";
    /// MANAGE CHANNEL.
    ManageChannel = 0x70, "MANAGE CHANNEL";
    /// EXTERNAL AUTHENTICATE.
    ExternalAuthenticate = 0x82, "EXTERNAL AUTHENTICATE";
    /// GET CHALLENGE.
    GetChallenge = 0x84, "GET CHALLENGE";
    /// GENERAL AUTHENTICATE.
    GeneralAuthenticate = 0x86, "GENERAL AUTHENTICATE";
    /// GENERAL AUTHENTICATE, odd form (data in BER-TLV, as PIV sends it).
    GeneralAuthenticateOdd = 0x87, "GENERAL AUTHENTICATE";
    /// INTERNAL AUTHENTICATE.
    InternalAuthenticate = 0x88, "INTERNAL AUTHENTICATE";
    /// SELECT.
    Select = 0xA4, "SELECT";
    /// SELECT DATA (ISO 7816-4:2013; OpenPGP selects one of its certificates with it).
    SelectData = 0xA5, "SELECT DATA";
    /// READ BINARY, offset in P1-P2 (or a short EF identifier in P1).
    ReadBinary = 0xB0, "READ BINARY";
    /// READ BINARY, offset in the data.
    ReadBinaryOdd = 0xB1, "READ BINARY";
    /// READ RECORD(S).
    ReadRecord = 0xB2, "READ RECORD(S)";
    /// READ RECORD(S), odd form.
    ReadRecordOdd = 0xB3, "READ RECORD(S)";
    /// GET RESPONSE.
    GetResponse = 0xC0, "GET RESPONSE";
    /// ENVELOPE.
    Envelope = 0xC2, "ENVELOPE";
    /// GET DATA, tag in P1-P2.
    GetData = 0xCA, "GET DATA";
    /// GET DATA, odd form (a file in P1-P2, a tag list in the data).
    GetDataOdd = 0xCB, "GET DATA";
    /// WRITE BINARY.
    WriteBinary = 0xD0, "WRITE BINARY";
    /// WRITE RECORD.
    WriteRecord = 0xD2, "WRITE RECORD";
    /// UPDATE BINARY, offset in P1-P2 (or a short EF identifier in P1).
    UpdateBinary = 0xD6, "UPDATE BINARY";
    /// UPDATE BINARY, offset in the data.
    UpdateBinaryOdd = 0xD7, "UPDATE BINARY";
    /// PUT DATA, tag in P1-P2.
    PutData = 0xDA, "PUT DATA";
    /// PUT DATA, odd form (a file or an extended header list in P1-P2).
    PutDataOdd = 0xDB, "PUT DATA";
    /// UPDATE RECORD.
    UpdateRecord = 0xDC, "UPDATE RECORD";
    /// UPDATE RECORD, odd form.
    UpdateRecordOdd = 0xDD, "UPDATE RECORD";
    /// CREATE FILE.
    CreateFile = 0xE0, "CREATE FILE";
    /// APPEND RECORD.
    AppendRecord = 0xE2, "APPEND RECORD";
    /// DELETE FILE.
    DeleteFile = 0xE4, "DELETE FILE";
    /// TERMINATE DF.
    TerminateDf = 0xE6, "TERMINATE DF";
    /// TERMINATE EF.
    TerminateEf = 0xE8, "TERMINATE EF";
    /// TERMINATE CARD USAGE.
    TerminateCardUsage = 0xFE, "TERMINATE CARD USAGE";
}

impl Ins {
    /// Whether this is the odd form of an instruction (bit 1 set), whose data is BER-TLV.
    pub const fn is_odd(self) -> bool {
        self.byte() & 1 == 1
    }
}

impl fmt::Display for Ins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_instructions_agree() {
        for ins in Ins::ALL {
            assert_eq!(Ins::from_byte(ins.byte()), Some(*ins));
        }
        let known = (0..=255u8).filter_map(Ins::from_byte).count();
        assert_eq!(known, Ins::ALL.len(), "no INS byte named twice");
        assert!(Ins::ALL.windows(2).all(|w| w[0].byte() < w[1].byte()));
        assert_eq!(
            Ins::from_byte(0x60),
            None,
            "6x is not an INS (it is a status byte)"
        );
        assert_eq!(Ins::ReadBinaryOdd.name(), "READ BINARY");
        assert!(Ins::ReadBinaryOdd.is_odd() && !Ins::ReadBinary.is_odd());
    }
}
