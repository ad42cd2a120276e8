//! Named command builders: the commands a terminal sends to a VSC (and to standard card
//! applications), built from typed values, so that the transcript compiler, the station's
//! read-back and the tests say `commands::select_mf()` rather than `00A4000C023F00`.
//!
//! A builder returns a [`CommandBuf`], which owns its data (wiped on drop: a builder's data may
//! be a PIN or a key); [`CommandBuf::command`] is the borrowed [`Command`] view every encoder
//! takes.

use std::fmt;

use zeroize::Zeroizing;

use crate::apdu::{ApduError, Class, Command, Ins};
use crate::fs::{Aid, Fid, Sfi};

/// A built command APDU that owns its data.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandBuf {
    class: Class,
    ins: u8,
    p1: u8,
    p2: u8,
    data: Zeroizing<Vec<u8>>,
    ne: Option<usize>,
}

impl CommandBuf {
    /// `ins` with class `00`, P1, P2, no data and no Le.
    pub fn new(ins: Ins, p1: u8, p2: u8) -> CommandBuf {
        CommandBuf::raw(Class::PLAIN, ins.byte(), p1, p2)
    }

    /// Any class and INS byte (card applications give some INS bytes their own meaning).
    pub fn raw(class: Class, ins: u8, p1: u8, p2: u8) -> CommandBuf {
        CommandBuf {
            class,
            ins,
            p1,
            p2,
            data: Zeroizing::new(Vec::new()),
            ne: None,
        }
    }

    /// The same command with `data` as its data field.
    pub fn with_data(mut self, data: &[u8]) -> CommandBuf {
        self.data = Zeroizing::new(data.to_vec());
        self
    }

    /// The same command asking for `ne` response bytes (256 is short Le `00`).
    pub fn with_ne(mut self, ne: usize) -> CommandBuf {
        self.ne = Some(ne);
        self
    }

    /// The borrowed view, in the smallest length form that holds it.
    pub fn command(&self) -> Command<'_> {
        Command::new(self.class, self.ins, self.p1, self.p2)
            .with_data(&self.data)
            .with_ne(self.ne)
    }

    /// The encoded APDU.
    pub fn to_vec(&self) -> Result<Vec<u8>, ApduError> {
        self.command().to_vec()
    }
}

impl fmt::Debug for CommandBuf {
    /// The header and lengths only: the data may be secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CommandBuf({:02X}{:02X}{:02X}{:02X}, {} data bytes, Ne {:?})",
            self.class.byte(),
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.ne
        )
    }
}

/// P2 of SELECT: first occurrence, no response data.
const SELECT_NO_DATA: u8 = 0x0C;

/// SELECT the MF by its file identifier, no response data.
pub fn select_mf() -> CommandBuf {
    CommandBuf::new(Ins::Select, 0x00, SELECT_NO_DATA).with_data(&Fid::MF.to_bytes())
}

/// SELECT a DF by its path from the MF (P1 `08`), no response data.
pub fn select_path(path: &[Fid]) -> CommandBuf {
    let bytes: Vec<u8> = path.iter().flat_map(|fid| fid.to_bytes()).collect();
    CommandBuf::new(Ins::Select, 0x08, SELECT_NO_DATA).with_data(&bytes)
}

/// SELECT an EF under the current DF (P1 `02`), no response data.
pub fn select_ef(fid: Fid) -> CommandBuf {
    CommandBuf::new(Ins::Select, 0x02, SELECT_NO_DATA).with_data(&fid.to_bytes())
}

/// SELECT an application by its DF name (P1 `04`), first occurrence, FCI returned.
pub fn select_aid(aid: &[u8]) -> CommandBuf {
    CommandBuf::new(Ins::Select, 0x04, 0x00)
        .with_data(aid)
        .with_ne(256)
}

/// SELECT an application by its [`Aid`], no response data.
pub fn select_application(aid: &Aid) -> CommandBuf {
    CommandBuf::new(Ins::Select, 0x04, SELECT_NO_DATA).with_data(aid.as_bytes())
}

/// CREATE FILE with the file's control parameters (a `62` template).
pub fn create_file(fcp: &[u8]) -> CommandBuf {
    CommandBuf::new(Ins::CreateFile, 0x00, 0x00).with_data(fcp)
}

/// READ BINARY of the current EF at `offset` (below 32 768), `ne` bytes.
pub fn read_binary(offset: u16, ne: usize) -> CommandBuf {
    let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
    CommandBuf::new(Ins::ReadBinary, p1, p2).with_ne(ne)
}

/// UPDATE BINARY of the current EF at `offset` (below 32 768).
pub fn update_binary(offset: u16, data: &[u8]) -> CommandBuf {
    let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
    CommandBuf::new(Ins::UpdateBinary, p1, p2).with_data(data)
}

/// UPDATE BINARY of the EF `sfi` of the current DF from its start (it becomes the current EF).
pub fn update_binary_sfi(sfi: Sfi, data: &[u8]) -> CommandBuf {
    CommandBuf::new(Ins::UpdateBinary, 0x80 | sfi.value(), 0x00).with_data(data)
}

/// APPEND RECORD to the current EF.
pub fn append_record(data: &[u8]) -> CommandBuf {
    CommandBuf::new(Ins::AppendRecord, 0x00, 0x00).with_data(data)
}

/// UPDATE RECORD `number` of the EF `sfi` (or of the current EF).
pub fn update_record(number: u8, sfi: Option<Sfi>, data: &[u8]) -> CommandBuf {
    let sfi_bits = sfi.map_or(0, Sfi::value) << 3;
    CommandBuf::new(Ins::UpdateRecord, number, sfi_bits | 0x04).with_data(data)
}

/// READ RECORD `number` of the EF `sfi` (or of the current EF), `ne` bytes.
pub fn read_record(number: u8, sfi: Option<Sfi>, ne: usize) -> CommandBuf {
    let sfi_bits = sfi.map_or(0, Sfi::value) << 3;
    CommandBuf::new(Ins::ReadRecord, number, sfi_bits | 0x04).with_ne(ne)
}

/// GET DATA of the data object `tag`, `ne` bytes.
pub fn get_data(tag: u16, ne: usize) -> CommandBuf {
    let [p1, p2] = tag.to_be_bytes();
    CommandBuf::new(Ins::GetData, p1, p2).with_ne(ne)
}

/// PUT DATA of the data object `tag` (in the VSC card OS, tags `0101`–`0104` define and load
/// password and key objects).
pub fn put_data(tag: u16, data: &[u8]) -> CommandBuf {
    let [p1, p2] = tag.to_be_bytes();
    CommandBuf::new(Ins::PutData, p1, p2).with_data(data)
}

/// VERIFY the password `reference` with `padded` reference data (empty: ask its state).
pub fn verify(reference: u8, padded: &[u8]) -> CommandBuf {
    CommandBuf::new(Ins::Verify, 0x00, reference).with_data(padded)
}

/// CHANGE REFERENCE DATA of `reference` with the new value only (P1 `01`).
pub fn set_reference_data(reference: u8, padded: &[u8]) -> CommandBuf {
    CommandBuf::new(Ins::ChangeReferenceData, 0x01, reference).with_data(padded)
}

/// ACTIVATE FILE on the MF: the last step of personalization.
pub fn activate_mf() -> CommandBuf {
    CommandBuf::new(Ins::ActivateFile, 0x00, 0x00).with_data(&Fid::MF.to_bytes())
}

/// GET CHALLENGE of `len` bytes.
pub fn get_challenge(len: usize) -> CommandBuf {
    CommandBuf::new(Ins::GetChallenge, 0x00, 0x00).with_ne(len)
}

/// The OpenPGP card 3.4 application's commands (docs/openpgp.md).
pub mod openpgp {
    use super::{CommandBuf, Ins};
    use crate::applications::openpgp::{RID_PIX, Slot};

    /// SELECT of the OpenPGP application by its registered AID, without Le, as GnuPG sends it
    /// (the card answers a plain `9000`).
    pub fn select() -> CommandBuf {
        CommandBuf::new(Ins::Select, 0x04, 0x00).with_data(&RID_PIX)
    }

    /// VERIFY of PW1 for signing (`81`), PW1 for the other commands (`82`) or PW3 (`83`);
    /// empty `value`: ask the status (costs no try).
    pub fn verify(reference: u8, value: &[u8]) -> CommandBuf {
        CommandBuf::new(Ins::Verify, 0x00, reference).with_data(value)
    }

    /// CHANGE REFERENCE DATA of PW1 (`81`) or PW3 (`83`): the current value, then the new one.
    pub fn change_reference_data(reference: u8, current_and_new: &[u8]) -> CommandBuf {
        CommandBuf::new(Ins::ChangeReferenceData, 0x00, reference).with_data(current_and_new)
    }

    /// RESET RETRY COUNTER of PW1 after PW3 (P1 `02`): the new PW1.
    pub fn reset_pw1_after_pw3(new_pw1: &[u8]) -> CommandBuf {
        CommandBuf::new(Ins::ResetRetryCounter, 0x02, 0x81).with_data(new_pw1)
    }

    /// PUT DATA (even INS) of the data object `tag`.
    pub fn put_data(tag: u16, data: &[u8]) -> CommandBuf {
        super::put_data(tag, data)
    }

    /// Key import: PUT DATA odd (`DB`, P1-P2 `3FFF`) with the extended header list `4D`.
    pub fn import_key(template: &[u8]) -> CommandBuf {
        CommandBuf::new(Ins::PutDataOdd, 0x3F, 0xFF).with_data(template)
    }

    /// GET DATA of `tag`, as much as the card has (extended Le when the answer may be long).
    pub fn get_data(tag: u16) -> CommandBuf {
        super::get_data(tag, 256)
    }

    /// The control reference template naming a slot's key: `B6`, `B8` or `A4`, empty.
    pub fn crt(slot: Slot) -> [u8; 2] {
        match slot {
            Slot::Signature => [0xB6, 0x00],
            Slot::Decryption => [0xB8, 0x00],
            Slot::Authentication => [0xA4, 0x00],
        }
    }

    /// GENERATE ASYMMETRIC KEY PAIR P1 `81`: read the public key of `slot` (`7F49`).
    pub fn read_public_key(slot: Slot) -> CommandBuf {
        CommandBuf::new(Ins::GenerateAsymmetricKeyPair, 0x81, 0x00)
            .with_data(&crt(slot))
            .with_ne(65_536)
    }

    /// SELECT DATA of the cardholder certificate (`7F21`) of `slot`: occurrence 0 is the
    /// authentication key's, 1 the decryption key's, 2 the signature key's.
    pub fn select_certificate(slot: Slot) -> CommandBuf {
        let occurrence = match slot {
            Slot::Authentication => 0,
            Slot::Decryption => 1,
            Slot::Signature => 2,
        };
        CommandBuf::new(Ins::SelectData, occurrence, 0x04)
            .with_data(&[0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21])
    }
}

/// The PIV application's commands (docs/piv.md), the Yubico extensions among them.
pub mod piv {
    use zeroize::Zeroizing;

    use super::CommandBuf;
    use crate::apdu::Class;
    use crate::applications::piv::{AID, Slot};

    /// The length PINs and PUKs travel in, padded with `FF`.
    pub const PADDED_LEN: usize = 8;

    fn raw(ins: u8, p1: u8, p2: u8) -> CommandBuf {
        CommandBuf::raw(Class::PLAIN, ins, p1, p2)
    }

    /// SELECT of PIV by its RID `A000000308`, without Le, as yubico-piv-tool sends it.
    pub fn select() -> CommandBuf {
        raw(0xA4, 0x04, 0x00).with_data(&AID[..5])
    }

    /// A PIN or PUK padded with `FF` to 8 bytes (longer values are cut; profiles allow 8 at
    /// most).
    pub fn padded(value: &[u8]) -> Zeroizing<[u8; PADDED_LEN]> {
        let mut out = Zeroizing::new([0xFF; PADDED_LEN]);
        let len = value.len().min(PADDED_LEN);
        out[..len].copy_from_slice(&value[..len]);
        out
    }

    /// VERIFY of the PIN (`80`) with its value (padded here); empty `value`: ask the status,
    /// which costs no try (`81`: the PUK's status).
    pub fn verify(reference: u8, value: &[u8]) -> CommandBuf {
        if value.is_empty() {
            raw(0x20, 0x00, reference)
        } else {
            raw(0x20, 0x00, reference).with_data(&padded(value)[..])
        }
    }

    /// CHANGE REFERENCE DATA of the PIN (`80`) or the PUK (`81`): the current value and the new
    /// one, each padded.
    pub fn change_reference_data(reference: u8, current: &[u8], new: &[u8]) -> CommandBuf {
        let mut data = Zeroizing::new(Vec::with_capacity(2 * PADDED_LEN));
        data.extend_from_slice(&padded(current)[..]);
        data.extend_from_slice(&padded(new)[..]);
        raw(0x24, 0x00, reference).with_data(&data)
    }

    /// The three bytes of a PIV object tag (`5FC1xx`), or the one of `7E`.
    fn tag_bytes(tag: u32) -> Vec<u8> {
        let bytes = tag.to_be_bytes();
        match tag {
            0..=0xFF => vec![bytes[3]],
            0x100..=0xFFFF => bytes[2..].to_vec(),
            _ => bytes[1..].to_vec(),
        }
    }

    /// PUT DATA `5C <tag> 53 <value>`.
    pub fn put_data(tag: u32, value: &[u8]) -> CommandBuf {
        let mut data = Vec::with_capacity(value.len() + 10);
        crate::tlv::push_primitive(&mut data, &[0x5C], &tag_bytes(tag));
        crate::tlv::push_primitive(&mut data, &[0x53], value);
        raw(0xDB, 0x3F, 0xFF).with_data(&data)
    }

    /// GET DATA `5C <tag>`, as much as the card has (extended Le).
    pub fn get_data(tag: u32) -> CommandBuf {
        let mut data = Vec::with_capacity(5);
        crate::tlv::push_primitive(&mut data, &[0x5C], &tag_bytes(tag));
        raw(0xCB, 0x3F, 0xFF).with_data(&data).with_ne(65_536)
    }

    /// IMPORT ASYMMETRIC KEY (Yubico, INS `FE`) of `algorithm` (`07`, `11`, `14`) into
    /// `slot`: the template of the key's parts and policies.
    pub fn import_key(algorithm: u8, slot: Slot, template: &[u8]) -> CommandBuf {
        raw(0xFE, algorithm, slot.byte()).with_data(template)
    }

    /// SET MANAGEMENT KEY (Yubico, INS `FF`, no touch): `<algorithm> 9B <length> <key>`.
    pub fn set_management_key(algorithm: u8, key: &[u8]) -> CommandBuf {
        let mut data = Zeroizing::new(Vec::with_capacity(key.len() + 3));
        data.extend_from_slice(&[algorithm, 0x9B, key.len() as u8]);
        data.extend_from_slice(key);
        raw(0xFF, 0xFF, 0xFF).with_data(&data)
    }

    /// GET SERIAL (Yubico, INS `F8`): the card's serial number (a VSC's: its UID's last four
    /// bytes), without Le as yubico-piv-tool sends it.
    pub fn get_serial() -> CommandBuf {
        raw(0xF8, 0x00, 0x00)
    }

    /// GET METADATA (Yubico, INS `F7`) of a key slot, `9B`, the PIN `80` or the PUK `81`.
    pub fn get_metadata(reference: u8) -> CommandBuf {
        raw(0xF7, 0x00, reference).with_ne(65_536)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openpgp_builders_give_the_bytes_of_the_specification() {
        use crate::applications::openpgp::Slot;
        assert_eq!(hex(openpgp::select()), "00A4040006D27600012401");
        assert_eq!(hex(openpgp::verify(0x83, &[])), "00200083");
        assert_eq!(
            hex(openpgp::verify(0x83, b"12345678")),
            "002000830831323334353637 38".replace(' ', "")
        );
        assert_eq!(
            hex(openpgp::change_reference_data(0x83, b"12")),
            "00240083023132"
        );
        assert_eq!(hex(openpgp::reset_pw1_after_pw3(b"1")), "002C02810131");
        assert_eq!(hex(openpgp::put_data(0x5F50, b"u")), "00DA5F500175");
        assert_eq!(hex(openpgp::import_key(&[0x4D, 0x00])), "00DB3FFF024D00");
        assert_eq!(hex(openpgp::get_data(0x6E)), "00CA006E00");
        assert_eq!(
            hex(openpgp::read_public_key(Slot::Decryption)),
            "0047810000 0002B800 0000".replace(' ', "")
        );
        assert_eq!(
            hex(openpgp::select_certificate(Slot::Signature)),
            "00A5020406 60045C027F21".replace(' ', "")
        );
    }

    fn hex(command: CommandBuf) -> String {
        hex::encode_upper(command.to_vec().unwrap())
    }

    #[test]
    fn builders_give_the_bytes_iso_7816_4_says() {
        assert_eq!(hex(select_mf()), "00A4000C023F00");
        assert_eq!(
            hex(select_path(&[Fid::DF_PUBLIC, Fid::new(0x5001).unwrap()])),
            "00A4080C0450005001"
        );
        assert_eq!(hex(select_ef(Fid::EF_UID)), "00A4020C022F02");
        assert_eq!(
            hex(select_aid(&[0xD2, 0x76, 0x00, 0x01, 0x24, 0x01])),
            "00A4040006D2760001240100"
        );
        assert_eq!(hex(read_binary(0x10, 8)), "00B0001008");
        assert_eq!(hex(read_binary(0, 65_536)), "00B00000000000");
        assert_eq!(hex(read_record(1, None, 256)), "00B2010400");
        assert_eq!(hex(read_record(2, Sfi::new(1).ok(), 256)), "00B2020C00");
        assert_eq!(
            hex(update_binary_sfi(Sfi::new(1).unwrap(), b"A")),
            "00D681000141"
        );
        assert_eq!(
            hex(update_record(2, Sfi::new(3).ok(), b"B")),
            "00DC021C0142"
        );
        assert_eq!(hex(get_data(0x006E, 256)), "00CA006E00");
        assert_eq!(hex(put_data(0x0101, &[1])), "00DA01010101");
        assert_eq!(hex(verify(0x81, &[])), "00200081");
        assert_eq!(
            hex(set_reference_data(1, b"12")),
            "002401010231 32".replace(' ', "")
        );
        assert_eq!(hex(activate_mf()), "00440000023F00");
        assert_eq!(hex(get_challenge(8)), "0084000008");
    }

    #[test]
    fn debug_never_shows_the_data() {
        let command = verify(0x01, b"123456\xFF\xFF");
        let debug = format!("{command:?}");
        assert_eq!(debug, "CommandBuf(00200001, 8 data bytes, Ne None)");
    }
}
