//! The transcript header: what the steps are for and which card they belong to.

use std::fmt;
use std::str::FromStr;

use super::ValueError;
pub use crate::uid::Uid;

/// The header of a transcript.
///
/// `profile` is present exactly when `kind` is not [`Kind::Session`]; parsing enforces it, and
/// [`super::Transcript::check`] tells whether a header built in code keeps to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the transcript does.
    pub kind: Kind,
    /// The card's UID (EF.UID).
    pub uid: Uid,
    /// The card's answer to reset; a replay checks it after every reset.
    pub atr: Atr,
    /// The profile the transcript was compiled from; `None` for sessions.
    pub profile: Option<ProfileRef>,
    /// Whether the steps travel through the personalization channel.
    pub channel: Channel,
    /// `x-` lines: kept and printed back, never interpreted.
    pub extensions: Vec<Extension>,
}

/// What a transcript does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Builds the structure, UID and channel keys on a blank chip (the card maker's part).
    PreInitialization,
    /// Writes the holder's data, PINs and keys, and activates the card.
    Personalization,
    /// A live session recorded by the emulator.
    Session,
}

/// Whether the steps use the personalization channel (secure messaging).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// ISO 7816-4 secure messaging under the per-card channel keys.
    SecureMessaging,
    /// No secure messaging: secrets in the steps are in clear.
    Plain,
}

/// An answer to reset: 2 to 33 bytes starting with TS = `3B` or `3F`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Atr(Vec<u8>);

/// The profile a transcript was compiled from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProfileRef {
    /// The profile's id.
    pub id: ProfileId,
    /// The profile's version.
    pub version: u32,
}

/// A profile id: 1 to 64 characters out of `A-Z a-z 0-9 . _ -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProfileId(String);

/// A header line `x-<key> <value>` that readers keep but do not interpret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Extension {
    key: String,
    value: String,
}

impl Kind {
    /// The name in the `kind` line.
    pub fn label(self) -> &'static str {
        match self {
            Kind::PreInitialization => "pre-initialization",
            Kind::Personalization => "personalization",
            Kind::Session => "session",
        }
    }
}

impl FromStr for Kind {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, ValueError> {
        match text {
            "pre-initialization" => Ok(Kind::PreInitialization),
            "personalization" => Ok(Kind::Personalization),
            "session" => Ok(Kind::Session),
            _ => Err(ValueError::UnknownKind),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Channel {
    /// The name in the `channel` line.
    pub fn label(self) -> &'static str {
        match self {
            Channel::SecureMessaging => "secure-messaging",
            Channel::Plain => "plain",
        }
    }
}

impl FromStr for Channel {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, ValueError> {
        match text {
            "secure-messaging" => Ok(Channel::SecureMessaging),
            "plain" => Ok(Channel::Plain),
            _ => Err(ValueError::UnknownChannel),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Atr {
    /// Checks the length and the initial character.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ValueError> {
        let bytes = bytes.into();
        if !(2..=33).contains(&bytes.len()) {
            return Err(ValueError::AtrLength(bytes.len()));
        }
        match bytes[0] {
            0x3B | 0x3F => Ok(Atr(bytes)),
            other => Err(ValueError::AtrConvention(other)),
        }
    }

    /// The ATR bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl ProfileId {
    /// Checks the characters and the length.
    pub fn new(id: impl Into<String>) -> Result<Self, ValueError> {
        let id = id.into();
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if (1..=64).contains(&id.len()) && id.as_bytes().iter().all(allowed) {
            Ok(ProfileId(id))
        } else {
            Err(ValueError::ProfileId)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ProfileRef {
    /// Parses the value of a `profile` line: `<id> <version>`.
    pub(super) fn parse(text: &str) -> Result<Self, ValueError> {
        let (id, version) = text.split_once(' ').ok_or(ValueError::ProfileShape)?;
        Ok(ProfileRef {
            id: ProfileId::new(id)?,
            version: parse_version(version)?,
        })
    }
}

fn parse_version(text: &str) -> Result<u32, ValueError> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(ValueError::ProfileVersion);
    }
    text.parse().map_err(|_| ValueError::ProfileVersion)
}

impl Extension {
    /// An extension line. The key starts with `x-`; the value is text without control
    /// characters or whitespace at either end.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Result<Self, ValueError> {
        let key = key.into();
        let value = value.into();
        let name = key.strip_prefix("x-").ok_or(ValueError::ExtensionKey)?;
        let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        if !(1..=62).contains(&name.len()) || !name.as_bytes().iter().all(allowed) {
            return Err(ValueError::ExtensionKey);
        }
        check_text(&value)?;
        Ok(Extension { key, value })
    }

    /// The key, `x-` included.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The rule for free text (comments, extension values): it must survive a print and a parse
/// unchanged, and an editor that strips trailing blanks must not silently alter it.
pub(super) fn check_text(text: &str) -> Result<(), ValueError> {
    let bytes = text.as_bytes();
    let printable_ascii = bytes.iter().all(|b| (0x20..0x7F).contains(b));
    if printable_ascii && bytes.first().is_some_and(|b| *b != b' ') && bytes.last() != Some(&b' ') {
        return Ok(());
    }
    let clean = !text.is_empty() && !text.chars().any(char::is_control) && text.trim() == text;
    if clean { Ok(()) } else { Err(ValueError::Text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_needs_ts_and_length() {
        assert!(Atr::new(vec![0x3B, 0x00]).is_ok());
        assert_eq!(Atr::new(vec![0x3B]), Err(ValueError::AtrLength(1)));
        assert_eq!(Atr::new(vec![0x3B; 34]), Err(ValueError::AtrLength(34)));
        assert_eq!(
            Atr::new(vec![0x3C, 0]),
            Err(ValueError::AtrConvention(0x3C))
        );
    }

    #[test]
    fn profile_values() {
        let profile = ProfileRef::parse("eid-demo_1.x 12").unwrap();
        assert_eq!((profile.id.as_str(), profile.version), ("eid-demo_1.x", 12));
        assert_eq!(ProfileRef::parse("eid"), Err(ValueError::ProfileShape));
        assert_eq!(ProfileRef::parse("e d 1"), Err(ValueError::ProfileVersion));
        assert_eq!(ProfileRef::parse("eid 01"), Err(ValueError::ProfileVersion));
        assert_eq!(ProfileRef::parse("eid +1"), Err(ValueError::ProfileVersion));
        assert_eq!(
            ProfileRef::parse("eid 4294967296"),
            Err(ValueError::ProfileVersion)
        );
        assert_eq!(ProfileRef::parse("é 1"), Err(ValueError::ProfileId));
        assert_eq!(ProfileRef::parse("eid 0").unwrap().version, 0);
    }

    #[test]
    fn extension_keys_and_values() {
        assert!(Extension::new("x-station", "bureau 3").is_ok());
        assert_eq!(
            Extension::new("station", "a"),
            Err(ValueError::ExtensionKey)
        );
        assert_eq!(Extension::new("x-", "a"), Err(ValueError::ExtensionKey));
        assert_eq!(Extension::new("x-Big", "a"), Err(ValueError::ExtensionKey));
        assert_eq!(Extension::new("x-a", ""), Err(ValueError::Text));
        assert_eq!(Extension::new("x-a", "a "), Err(ValueError::Text));
        assert_eq!(Extension::new("x-a", "a\tb"), Err(ValueError::Text));
    }

    #[test]
    fn names_round_trip() {
        for kind in [
            Kind::PreInitialization,
            Kind::Personalization,
            Kind::Session,
        ] {
            assert_eq!(kind.label().parse(), Ok(kind));
        }
        for channel in [Channel::SecureMessaging, Channel::Plain] {
            assert_eq!(channel.label().parse(), Ok(channel));
        }
        assert_eq!("Session".parse::<Kind>(), Err(ValueError::UnknownKind));
        assert_eq!("sm".parse::<Channel>(), Err(ValueError::UnknownChannel));
    }
}
