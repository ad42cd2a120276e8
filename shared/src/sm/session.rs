//! What both ends of an open channel share: the keys, the send sequence counter, and the ICAO
//! rules for the IV, the padding and the MAC.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::ChannelKeys;
use crate::crypto::BLOCK_LEN;

/// The length of the MAC in DO`8E`: the first 8 bytes of the AES-CMAC.
pub(super) const MAC_LEN: usize = 8;

/// ISO/IEC 9797-1 padding method 2: `80`, then as many `00` as the block needs.
const PADDING: [u8; BLOCK_LEN] = {
    let mut padding = [0; BLOCK_LEN];
    padding[0] = 0x80;
    padding
};

/// The keys and the SSC of an open channel.
pub(super) struct Session {
    keys: ChannelKeys,
    /// The 16-byte SSC as a number: zero when the channel opens.
    ssc: u128,
}

/// The SSC value one command or response is protected with, as 16 big-endian bytes.
pub(super) type SscBlock = [u8; BLOCK_LEN];

impl Session {
    pub(super) fn new(keys: ChannelKeys) -> Session {
        Session { keys, ssc: 0 }
    }

    /// Increments the SSC (before every command MAC and every response MAC) and returns it.
    pub(super) fn next_ssc(&mut self) -> SscBlock {
        self.ssc = self.ssc.wrapping_add(1);
        self.ssc.to_be_bytes()
    }

    /// Appends `plain`, padded (method 2) and AES-CBC encrypted under `K_enc` with
    /// `IV = AES(K_enc, SSC)`, to `out`.
    pub(super) fn encrypt_into(&self, ssc: &SscBlock, plain: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plain);
        out.extend_from_slice(&PADDING[..padding_len(plain.len())]);
        let (blocks, rest) = out[start..].as_chunks_mut::<BLOCK_LEN>();
        debug_assert!(rest.is_empty(), "padding makes whole blocks");
        self.keys.enc.cbc_encrypt_blocks(&self.iv(ssc), blocks);
    }

    /// Decrypts a cryptogram and removes its padding; `None` if it is not whole blocks or not
    /// padded by method 2.
    pub(super) fn decrypt(&self, ssc: &SscBlock, cryptogram: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut plain = Zeroizing::new(cryptogram.to_vec());
        let (blocks, []) = plain.as_chunks_mut::<BLOCK_LEN>() else {
            return None;
        };
        self.keys.enc.cbc_decrypt_blocks(&self.iv(ssc), blocks);
        let marker = plain.iter().rposition(|&b| b != 0)?;
        if plain[marker] != 0x80 || plain.len() - marker > BLOCK_LEN {
            return None;
        }
        plain.truncate(marker);
        Some(plain)
    }

    /// The first 8 bytes of AES-CMAC under `K_mac` of `SSC || header || objects`, padded by
    /// method 2. `header` is the padded command header, or empty for a response.
    pub(super) fn mac(&self, ssc: &SscBlock, header: &[u8], objects: &[u8]) -> [u8; MAC_LEN] {
        let padding = &PADDING[..padding_len(BLOCK_LEN + header.len() + objects.len())];
        let tag = self.keys.mac.cmac_chunks(&[ssc, header, objects, padding]);
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(&tag[..MAC_LEN]);
        mac
    }

    /// Whether `mac` is the MAC of `SSC || header || objects`, compared in constant time.
    pub(super) fn verify_mac(
        &self,
        ssc: &SscBlock,
        header: &[u8],
        objects: &[u8],
        mac: &[u8],
    ) -> bool {
        self.mac(ssc, header, objects).ct_eq(mac).into()
    }

    fn iv(&self, ssc: &SscBlock) -> [u8; BLOCK_LEN] {
        let mut iv = *ssc;
        self.keys.enc.encrypt_block(&mut iv);
        iv
    }
}

/// The number of padding bytes (1 to 16) method 2 adds to `len` bytes.
pub(super) fn padding_len(len: usize) -> usize {
    BLOCK_LEN - len % BLOCK_LEN
}

/// The command header `CLA INS P1 P2`, padded to one block, as the command MAC covers it.
pub(super) fn padded_header(header: [u8; 4]) -> [u8; BLOCK_LEN] {
    let mut block = [0; BLOCK_LEN];
    block[..4].copy_from_slice(&header);
    block[4] = 0x80;
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AesKey;

    fn session() -> Session {
        Session::new(ChannelKeys::from_keys(
            AesKey::aes256(&[1; 32]),
            AesKey::aes256(&[2; 32]),
        ))
    }

    #[test]
    fn ssc_counts_from_one_as_sixteen_big_endian_bytes() {
        let mut session = session();
        assert_eq!(session.next_ssc(), 1u128.to_be_bytes());
        assert_eq!(session.next_ssc()[15], 2);
        session.ssc = 0xFF;
        assert_eq!(
            hex::encode(session.next_ssc()),
            "00000000000000000000000000000100"
        );
    }

    #[test]
    fn padding_method_2() {
        assert_eq!(padding_len(0), 16);
        assert_eq!(padding_len(15), 1);
        assert_eq!(padding_len(16), 16);
        assert_eq!(padding_len(17), 15);
        assert_eq!(
            hex::encode(padded_header([0x0C, 0xD6, 0x01, 0x02])),
            "0cd60102800000000000000000000000"
        );
    }

    #[test]
    fn encrypt_then_decrypt() {
        let session = session();
        let ssc = [7; 16];
        for len in 0..40 {
            let plain: Vec<u8> = (0..len as u8).collect();
            let mut out = vec![0xEE];
            session.encrypt_into(&ssc, &plain, &mut out);
            assert_eq!(out.len(), 1 + len + padding_len(len));
            assert_eq!(*session.decrypt(&ssc, &out[1..]).unwrap(), plain);
            // Another SSC means another IV: the first block decrypts to something else.
            assert_ne!(
                session.decrypt(&[8; 16], &out[1..]).as_deref(),
                Some(&plain)
            );
        }
    }

    #[test]
    fn decrypt_refuses_bad_padding() {
        let session = session();
        let ssc = [0; 16];
        let encrypt = |plain: &[u8]| {
            let mut blocks = plain.to_vec();
            session
                .keys
                .enc
                .cbc_encrypt(&session.iv(&ssc), &mut blocks)
                .unwrap();
            blocks
        };
        assert!(session.decrypt(&ssc, &encrypt(&[0; 16])).is_none());
        assert!(session.decrypt(&ssc, &encrypt(&[0x41; 16])).is_none());
        // `80` followed by more than a block of zeros.
        let mut long = vec![0x80];
        long.extend([0; 31]);
        assert!(session.decrypt(&ssc, &encrypt(&long)).is_none());
        assert!(session.decrypt(&ssc, &[0; 15]).is_none());
        assert!(session.decrypt(&ssc, &[]).is_none());
        let mut exact = vec![0x41; 15];
        exact.push(0x80);
        assert_eq!(
            *session.decrypt(&ssc, &encrypt(&exact)).unwrap(),
            [0x41; 15]
        );
    }

    #[test]
    fn mac_covers_ssc_and_parts_with_padding() {
        let session = session();
        let ssc = [0; 16];
        let direct = session.keys.mac.cmac(&{
            let mut m = ssc.to_vec();
            m.extend_from_slice(b"abc");
            m.extend_from_slice(&PADDING[..13]);
            m
        });
        assert_eq!(session.mac(&ssc, b"a", b"bc"), direct[..8]);
        assert_eq!(session.mac(&ssc, b"", b"abc"), direct[..8]);
        assert!(session.verify_mac(&ssc, b"", b"abc", &direct[..8]));
        assert!(!session.verify_mac(&ssc, b"", b"abd", &direct[..8]));
        assert!(!session.verify_mac(&ssc, b"", b"abc", &direct[..7]));
    }
}
