//! What can be wrong with a transcript, a value in it, or a recording being written.

use std::io;

use crate::apdu::ApduError;

use super::Digest;

/// Why a value cannot go into a transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not one of `pre-initialization`, `personalization`, `session`.
    #[error("the kind is pre-initialization, personalization or session")]
    UnknownKind,
    /// Not one of `secure-messaging`, `plain`.
    #[error("the channel is secure-messaging or plain")]
    UnknownChannel,
    /// Not one of `cold`, `warm`.
    #[error("a reset is cold or warm")]
    UnknownReset,
    /// Not a live step this format defines.
    #[error(
        "a live step is `piv-management-key <03|08|0A|0C> card <16 hex digits>` or \
         `piv-management-key 03 factory`"
    )]
    LiveStep,
    /// An ATR is 2 to 33 bytes long.
    #[error("an ATR has 2 to 33 bytes, not {0}")]
    AtrLength(usize),
    /// An ATR starts with TS = `3B` (direct) or `3F` (inverse convention).
    #[error("an ATR starts with 3B or 3F, not {0:02X}")]
    AtrConvention(u8),
    /// A UID is 8 bytes.
    #[error("a UID has 8 bytes, not {0}")]
    UidLength(usize),
    /// A profile id is 1 to 64 characters out of `A-Z a-z 0-9 . _ -`.
    #[error("a profile id has 1 to 64 characters out of A-Z a-z 0-9 . _ -")]
    ProfileId,
    /// A profile version is a decimal `u32` without sign or leading zero.
    #[error("a profile version is a decimal number up to 4294967295 without leading zero")]
    ProfileVersion,
    /// The profile line is `profile <id> <version>`.
    #[error("the profile line is `profile <id> <version>`")]
    ProfileShape,
    /// An extension key is `x-` and 1 to 62 characters out of `a-z 0-9 -`.
    #[error("an extension key is x- followed by 1 to 62 characters out of a-z 0-9 -")]
    ExtensionKey,
    /// Comments and extension values are non-empty, without control characters and without
    /// whitespace at either end.
    #[error("text must be non-empty, without control characters or whitespace at either end")]
    Text,
    /// A response ends in its two status bytes.
    #[error("a response has at least its 2 status bytes, not {0}")]
    NoStatusWord(usize),
    /// A mask's value and care bytes differ in length.
    #[error("a mask's value has {value} bytes but its care mask {care}")]
    MaskLength {
        /// The length of the value.
        value: usize,
        /// The length of the care mask.
        care: usize,
    },
    /// Care masks work per nibble: each care byte is `00`, `0F`, `F0` or `FF`.
    #[error("a care mask byte is 00, 0F, F0 or FF, not {0:02X}")]
    MaskNibble(u8),
}

/// Why text is not a transcript. Every variant names the 1-based line; columns are 1-based
/// characters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    /// The text is not UTF-8 (only from [`super::Transcript::parse_bytes`]).
    #[error("line {line}: not UTF-8")]
    NotUtf8 {
        /// The line.
        line: usize,
    },
    /// The first line is not `VSC-TRANSCRIPT <version>`.
    #[error(
        "line {line}: not a VSC transcript (the first line must be `VSC-TRANSCRIPT 1` or `VSC-TRANSCRIPT 2`)"
    )]
    BadMagic {
        /// The line (always 1).
        line: usize,
    },
    /// A format version this reader does not know.
    #[error("line {line}: format version {version} is not supported (this reader knows 1 and 2)")]
    UnsupportedVersion {
        /// The line (always 1).
        line: usize,
        /// The version the text claims.
        version: String,
    },
    /// A carriage return: lines end in LF only.
    #[error("line {line}: carriage return found; lines end in LF only")]
    CarriageReturn {
        /// The line.
        line: usize,
    },
    /// The text does not end in LF.
    #[error("line {line}: the last line has no newline")]
    MissingNewline {
        /// The line.
        line: usize,
    },
    /// An empty line, whitespace at either end, or not exactly one space between tokens.
    #[error(
        "line {line}: empty line, whitespace at an end, or not exactly one space after a marker"
    )]
    BadWhitespace {
        /// The line.
        line: usize,
    },
    /// A header field is missing (or not in its place: the order is fixed).
    #[error("line {line}: header field `{field}` expected here")]
    MissingHeaderField {
        /// The line where the field should be.
        line: usize,
        /// The field's key.
        field: &'static str,
    },
    /// A header key this version does not define and that is not an `x-` extension.
    #[error("line {line}: unknown header field `{key}`")]
    UnknownHeaderField {
        /// The line.
        line: usize,
        /// The key.
        key: String,
    },
    /// A header field again, or after the fields that follow it.
    #[error(
        "line {line}: header field `{key}` out of place (the order is kind, uid, atr, profile, channel)"
    )]
    HeaderFieldOutOfPlace {
        /// The line.
        line: usize,
        /// The key.
        key: String,
    },
    /// A session transcript names a profile.
    #[error("line {line}: a session transcript has no profile")]
    UnexpectedProfile {
        /// The line.
        line: usize,
    },
    /// An extension key given twice.
    #[error("line {line}: extension `{key}` given twice")]
    DuplicateExtension {
        /// The line of the second one.
        line: usize,
        /// The key.
        key: String,
    },
    /// A header value, comment or reset kind that is not valid.
    #[error("line {line}: {source}")]
    BadValue {
        /// The line.
        line: usize,
        /// What is wrong.
        source: ValueError,
    },
    /// A character that is no hex digit.
    #[error("line {line}, column {column}: {found:?} is not a hex digit")]
    BadHex {
        /// The line.
        line: usize,
        /// The column.
        column: usize,
        /// The character.
        found: char,
    },
    /// A lowercase hex digit: transcripts use uppercase.
    #[error("line {line}, column {column}: lowercase hex digit; transcripts use uppercase")]
    LowercaseHex {
        /// The line.
        line: usize,
        /// The column.
        column: usize,
    },
    /// An odd number of hex digits.
    #[error("line {line}: {nibbles} hex digits is not a whole number of bytes")]
    OddNibbleCount {
        /// The line.
        line: usize,
        /// The number of digits.
        nibbles: usize,
    },
    /// A `?` outside a response pattern.
    #[error("line {line}, column {column}: `?` is allowed only in an expected response")]
    WildcardNotAllowed {
        /// The line.
        line: usize,
        /// The column.
        column: usize,
    },
    /// The command bytes are not a command APDU.
    #[error("line {line}: malformed command APDU: {source}")]
    ApduMalformed {
        /// The line.
        line: usize,
        /// What the APDU codec says.
        source: ApduError,
    },
    /// An expected response shorter than a status word.
    #[error("line {line}: an expected response ends in a status word (2 bytes), it has {len}")]
    NoStatusWord {
        /// The line.
        line: usize,
        /// The number of bytes.
        len: usize,
    },
    /// `< *` (response not checked) outside a session transcript.
    #[error("line {line}: `*` (response not checked) is allowed only in session transcripts")]
    UncheckedNotAllowed {
        /// The line.
        line: usize,
    },
    /// A command line not followed by its expected response line.
    #[error("line {line}: command without expected response on the next line")]
    CommandWithoutExpectation {
        /// The command's line.
        line: usize,
    },
    /// An expected response line that does not follow a command line.
    #[error("line {line}: expected response without a command before it")]
    ExpectationWithoutCommand {
        /// The line.
        line: usize,
    },
    /// A comment not followed by a command or reset.
    #[error("line {line}: comment not followed by a command or reset")]
    CommentWithoutStep {
        /// The comment's line.
        line: usize,
    },
    /// A live step in a transcript that is not a personalization.
    #[error("line {line}: a live step outside a personalization transcript")]
    LiveNotAllowed {
        /// The line.
        line: usize,
    },
    /// A line that is not a step.
    #[error("line {line}: not a step (`# `, `> `, `< `, `live `, `reset `, `sha256 `)")]
    UnknownLine {
        /// The line.
        line: usize,
    },
    /// The text ends without the `sha256` trailer.
    #[error("line {line}: the sha256 trailer is missing (truncated or unfinished transcript)")]
    DigestMissing {
        /// The line after the last one.
        line: usize,
    },
    /// The trailer's digest is not 64 hex digits.
    #[error("line {line}: a SHA-256 digest has 64 hex digits, not {nibbles}")]
    DigestLength {
        /// The line.
        line: usize,
        /// The number of digits.
        nibbles: usize,
    },
    /// The text above the trailer is not what the digest was made over.
    #[error(
        "line {line}: digest mismatch: the trailer says {recorded}, the text hashes to {computed}"
    )]
    DigestMismatch {
        /// The trailer's line.
        line: usize,
        /// The digest in the trailer.
        recorded: Digest,
        /// The digest of the text above the trailer.
        computed: Digest,
    },
    /// Anything after the trailer (after the signature, in version 2).
    #[error("line {line}: content after the end of the transcript")]
    TrailingContent {
        /// The first line after the trailer.
        line: usize,
    },
    /// A version-2 transcript without its signature line after the trailer.
    #[error("line {line}: the signature line is missing (version 2 transcripts are signed)")]
    SignatureMissing {
        /// The line after the trailer.
        line: usize,
    },
    /// A signature line that is not `ed25519 <key id> <signature>`.
    #[error("line {line}: a signature line is `ed25519 <16 hex digits> <128 hex digits>`")]
    BadSignatureLine {
        /// The line.
        line: usize,
    },
}

impl TranscriptError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> usize {
        use TranscriptError::*;
        match self {
            NotUtf8 { line }
            | BadMagic { line }
            | UnsupportedVersion { line, .. }
            | CarriageReturn { line }
            | MissingNewline { line }
            | BadWhitespace { line }
            | MissingHeaderField { line, .. }
            | UnknownHeaderField { line, .. }
            | HeaderFieldOutOfPlace { line, .. }
            | UnexpectedProfile { line }
            | DuplicateExtension { line, .. }
            | BadValue { line, .. }
            | BadHex { line, .. }
            | LowercaseHex { line, .. }
            | OddNibbleCount { line, .. }
            | WildcardNotAllowed { line, .. }
            | ApduMalformed { line, .. }
            | NoStatusWord { line, .. }
            | UncheckedNotAllowed { line }
            | CommandWithoutExpectation { line }
            | ExpectationWithoutCommand { line }
            | CommentWithoutStep { line }
            | UnknownLine { line }
            | LiveNotAllowed { line }
            | DigestMissing { line }
            | DigestLength { line, .. }
            | DigestMismatch { line, .. }
            | TrailingContent { line }
            | SignatureMissing { line }
            | BadSignatureLine { line } => *line,
        }
    }
}

/// Why a [`super::Transcript`] built in code breaks a rule that parsing enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistency {
    /// A pre-initialization or personalization transcript without its profile.
    #[error("a {0} transcript names its profile")]
    ProfileMissing(&'static str),
    /// A session transcript with a profile.
    #[error("a session transcript has no profile")]
    ProfileInSession,
    /// A step whose response is not checked, outside a session transcript.
    #[error("step {step}: an unchecked response is allowed only in session transcripts")]
    UncheckedStep {
        /// The step's index (0-based).
        step: usize,
    },
    /// A live step outside a personalization transcript.
    #[error("step {} is a live step, which only personalization transcripts hold", step + 1)]
    LiveStepOutOfPlace {
        /// The step's index (0-based).
        step: usize,
    },
}

/// Why a [`super::TranscriptWriter`] could not write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The header or a step breaks a transcript rule; nothing of it was written.
    #[error(transparent)]
    Inconsistent(#[from] Inconsistency),
    /// The underlying writer failed.
    #[error("writing the transcript: {0}")]
    Io(#[from] io::Error),
}
