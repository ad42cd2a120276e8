//! Transcripts at rest, compressed: a zstd frame (RFC 8878) of the transcript's text, against a
//! dictionary where the store has one. A dictionary is the personalization transcript of an
//! earlier card of the same profile (its raw text, a zstd "raw content" dictionary): cards of
//! one profile share their structure, comments and headers, so a card then costs little more
//! than its own keys, MACs and ciphertext. See docs/store.md, *Stored transcripts*.
//!
//! Packed bytes are told apart from the text of older stores by zstd's magic number
//! (`28 B5 2F FD`): a transcript's text starts with `VSC-TRANSCRIPT`.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use zstd::zstd_safe::{CCtx, CDict};

/// The zstd frame's magic number, little-endian as it is written.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The compression level: with a dictionary, level 1 gives the smallest cards of the levels
/// measured (1, 3, 9, 19) and is the fastest.
const LEVEL: i32 = 1;

/// The most a packed transcript may unpack to: a bound on what a corrupt or hostile row can
/// make this program allocate. Transcripts are tens of kilobytes.
pub const MAX_UNPACKED: usize = 16 << 20;

thread_local! {
    /// One compression context per thread (a context costs more to make than a card to
    /// compress).
    static CONTEXT: RefCell<CCtx<'static>> = RefCell::new(CCtx::create());
}

/// A compression dictionary as the store keeps it: its id in the store and its text.
#[derive(Clone)]
pub struct Dictionary {
    id: i64,
    text: Arc<Vec<u8>>,
    prepared: Arc<CDict<'static>>,
}

impl Dictionary {
    /// The dictionary `text`, stored under `id`.
    pub fn new(id: i64, text: Vec<u8>) -> Dictionary {
        let prepared = Arc::new(CDict::create(&text, LEVEL));
        Dictionary {
            id,
            text: Arc::new(text),
            prepared,
        }
    }

    /// Its id in the store.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Its text.
    pub fn text(&self) -> &[u8] {
        &self.text
    }
}

impl PartialEq for Dictionary {
    fn eq(&self, other: &Dictionary) -> bool {
        self.id == other.id && self.text == other.text
    }
}

impl Eq for Dictionary {}

impl fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dictionary({}, {} bytes)", self.id, self.text.len())
    }
}

/// Why packed bytes do not unpack.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    /// Not a zstd frame, a damaged one, another dictionary's, or larger than
    /// [`MAX_UNPACKED`].
    #[error("the packed transcript does not unpack ({0})")]
    Corrupt(String),
    /// It names a dictionary the store does not have.
    #[error("the packed transcript needs dictionary {0}, which the store does not have")]
    MissingDictionary(i64),
}

/// A dictionary's SHA-256 digest, hex, as the store keeps it beside the dictionary.
pub fn digest(text: &[u8]) -> String {
    use sha2::Digest;
    hex::encode_upper(sha2::Sha256::digest(text))
}

/// Whether `bytes` are packed (a zstd frame), not a transcript's text.
pub fn is_packed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Compresses `text`, against `dictionary` when given.
pub fn pack(text: &[u8], dictionary: Option<&Dictionary>) -> Vec<u8> {
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(text.len()));
    let packed = CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        match dictionary {
            Some(dictionary) => context.compress_using_cdict(&mut out, text, &dictionary.prepared),
            None => context.compress(&mut out, text, LEVEL),
        }
    });
    match packed {
        Ok(_) => out,
        // The output buffer is zstd's own bound for the input, so compression cannot run
        // out of room; were it to fail anyway, a frame of the raw text (zstd's own
        // fallback) keeps the card storable.
        Err(_) => zstd::bulk::compress(text, 0).unwrap_or_else(|_| text.to_vec()),
    }
}

/// Decompresses packed bytes, with the dictionary they were packed against.
pub fn unpack(bytes: &[u8], dictionary: Option<&Dictionary>) -> Result<Vec<u8>, UnpackError> {
    let corrupt = |e: std::io::Error| UnpackError::Corrupt(e.to_string());
    let mut decompressor = match dictionary {
        Some(dictionary) => {
            zstd::bulk::Decompressor::with_dictionary(dictionary.text()).map_err(corrupt)?
        }
        None => zstd::bulk::Decompressor::new().map_err(corrupt)?,
    };
    decompressor
        .decompress(bytes, MAX_UNPACKED)
        .map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "VSC-TRANSCRIPT 2\nkind personalization\nuid 5653434400001001\n\
                        # select DF.PUBLIC (5000)\n> 0CA4080C1D871101F8FA44EDDFB355FD\n< 9000\n";

    #[test]
    fn packed_text_unpacks_with_its_dictionary_only() {
        let dictionary = Dictionary::new(1, TEXT.replace("1001", "1002").into_bytes());
        for with in [None, Some(&dictionary)] {
            let packed = pack(TEXT.as_bytes(), with);
            assert!(is_packed(&packed));
            assert_eq!(unpack(&packed, with).unwrap(), TEXT.as_bytes());
        }
        let packed = pack(TEXT.as_bytes(), Some(&dictionary));
        assert!(
            packed.len() < pack(TEXT.as_bytes(), None).len(),
            "the dictionary helps"
        );
        assert!(unpack(&packed, None).is_err(), "not without its dictionary");
        let other = Dictionary::new(2, b"something else entirely".to_vec());
        assert_ne!(unpack(&packed, Some(&other)).ok(), Some(TEXT.into()));
        assert!(!is_packed(TEXT.as_bytes()));
    }

    #[test]
    fn damaged_and_oversized_frames_are_errors_not_panics() {
        let packed = pack(TEXT.as_bytes(), None);
        for cut in 0..packed.len() {
            let _ = unpack(&packed[..cut], None);
        }
        let mut flipped = packed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        let _ = unpack(&flipped, None);
        let huge = zstd::bulk::compress(&vec![b'A'; MAX_UNPACKED + 1], 3).unwrap();
        assert!(matches!(unpack(&huge, None), Err(UnpackError::Corrupt(_))));
    }

    /// A committed vector (docs/store.md): a frame written by zstd 1.5 at level 1 against the
    /// dictionary `VSC-TRANSCRIPT 2\nkind personalization\n`, which must keep unpacking.
    #[test]
    fn the_committed_vector_unpacks() {
        let dictionary = Dictionary::new(7, b"VSC-TRANSCRIPT 2\nkind personalization\n".to_vec());
        let frame = hex::decode(VECTOR).unwrap();
        assert_eq!(
            unpack(&frame, Some(&dictionary)).unwrap(),
            b"VSC-TRANSCRIPT 2\nkind personalization\nuid 5653434400001001\n"
        );
    }

    const VECTOR: &str = "28B52FFD203BDD0000A875696420353635333433343430303030313030310A0100D3A380";
}
