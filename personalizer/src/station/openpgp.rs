//! OpenPGP tokens at the station (docs/openpgp.md, "Personalization"): a token is known by its
//! AID (`0000`, manufacturer and serial make its UID in the store); before anything is written
//! it must still have its factory admin PIN; after the replay its application data, cardholder
//! data, URL and public keys are read back and compared with what preparation made.

use vsc_core::apdu::{Command, Ins, Status};
use vsc_core::applications::PublicPart;
use vsc_core::applications::openpgp::{DEFAULT_PW3, Slot};
use vsc_core::commands::{CommandBuf, openpgp as op};
use vsc_core::image::ClearView;
use vsc_core::transcript::{Step, Transcript};

use super::readback::ReadbackError;
use crate::compile::openpgp::Exports;
use crate::replay::{CardLink, LinkError, ReplayError};
use crate::store::Uid;

/// The retry counter of a factory-fresh token's PW3.
const FACTORY_TRIES: u8 = 3;

/// Why a token is refused before anything is written to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// Its AID names another token.
    #[error("its OpenPGP AID names token {0}, not this job's")]
    OtherToken(Uid),
    /// It has no (readable) OpenPGP application.
    #[error("it has no OpenPGP application (SELECT answered {0})")]
    NoApplication(Status),
    /// Its admin PIN is blocked.
    #[error("its admin PIN (PW3) is blocked: reset the token to its factory state first")]
    AdminPinBlocked,
    /// Its admin PIN has had wrong tries, so it was used: not tried, to spare its last tries.
    #[error(
        "its admin PIN (PW3) has {0} of 3 tries left: the token has been used; reset it to its factory state first"
    )]
    AdminPinTried(u8),
    /// Its admin PIN is not the factory default.
    #[error(
        "its admin PIN (PW3) is not the factory default 12345678 (that try counted, {left} left): reset the token to its factory state first"
    )]
    AdminPinNotDefault {
        /// Tries left after the one the check cost.
        left: u8,
    },
}

/// What the checks before the replay found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// A factory-fresh token (or one interrupted before its PW3 changed): replay.
    Replay,
    /// It already holds everything the transcript writes and its PW3 is no longer the
    /// default: an earlier attempt finished it.
    Finished,
}

/// Whether a transcript personalizes an OpenPGP token: its first step selects the application.
pub fn is_openpgp(transcript: &Transcript) -> bool {
    let select = op::select().to_vec().unwrap_or_default();
    matches!(transcript.steps.first(), Some(Step::Command { command, .. }) if command.as_bytes() == select)
}

/// A token's UID from its OpenPGP AID: `0000`, the manufacturer and the serial number; `None`
/// when the card has no OpenPGP application.
pub fn token_uid(link: &mut impl CardLink) -> Result<Option<Uid>, LinkError> {
    let (status, _) = send(link, &op::select())?;
    if status != Status::Success {
        return Ok(None);
    }
    let (status, aid) = send(link, &op::get_data(0x004F))?;
    Ok(match (status, aid.as_slice()) {
        (Status::Success, aid) if aid.len() == 16 => Some(uid_of_aid(aid)),
        _ => None,
    })
}

fn uid_of_aid(aid: &[u8]) -> Uid {
    let mut uid = [0u8; 8];
    uid[2..].copy_from_slice(&aid[8..14]);
    Uid(uid)
}

/// Sends a command: its status and data.
fn send(link: &mut impl CardLink, command: &CommandBuf) -> Result<(Status, Vec<u8>), LinkError> {
    let bytes = command.to_vec().map_err(|_| LinkError::NoResponse)?;
    let mut response = Vec::new();
    link.transmit(&bytes, &mut response)?;
    match response.as_slice() {
        [data @ .., sw1, sw2] => Ok((
            Status::from(u16::from_be_bytes([*sw1, *sw2])),
            data.to_vec(),
        )),
        _ => Err(LinkError::NoResponse),
    }
}

/// The failure of a check before the replay.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The card could not be read.
    #[error("reading the token: {0}")]
    Link(#[from] LinkError),
    /// The token is refused.
    #[error("the token is refused, nothing was written: {0}")]
    Refused(#[from] TokenRefusal),
    /// The store lacks what the read-back compares the token's keys with.
    #[error("the job is refused, nothing was written: {0}")]
    Exports(#[from] ExportsProblem),
}

/// Why the stored exports cannot serve the read-back of a token whose transcript imports keys:
/// without them its public keys could not be compared after the replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportsProblem {
    /// The store holds no exports of the card.
    #[error(
        "the store holds no exports of this token, whose transcript imports its {0} key: its public keys could not be read back; prepare the token again"
    )]
    Missing(&'static str),
    /// The stored exports do not parse.
    #[error(
        "the store's exports of this token do not parse: its public keys could not be read back; prepare the token again"
    )]
    Malformed,
    /// The exports have no public key (or an unreadable one) for a slot the transcript fills.
    #[error(
        "the store's exports of this token have no {0} public key, which its transcript imports: it could not be read back; prepare the token again"
    )]
    NoKey(&'static str),
}

/// The public keys a token must answer after its replay, one per slot its transcript imports a
/// key into, as `7F49` templates (from the exports preparation stored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenKeys(Vec<(Slot, Vec<u8>)>);

impl TokenKeys {
    /// The keys of `transcript`'s token from the stored `exports` (JSON): every slot the
    /// transcript imports a key into must have its public key there, or the job is refused
    /// before anything is written. A transcript without key imports needs no exports.
    pub fn from_store(
        transcript: &Transcript,
        exports: Option<&str>,
    ) -> Result<TokenKeys, ExportsProblem> {
        let slots = imported_slots(transcript);
        let Some(&first) = slots.first() else {
            return Ok(TokenKeys::default());
        };
        let exports = exports.ok_or(ExportsProblem::Missing(first.name()))?;
        let exports = Exports::from_json(exports).ok_or(ExportsProblem::Malformed)?;
        let mut keys = Vec::with_capacity(slots.len());
        for slot in slots {
            let template = exports
                .keys
                .iter()
                .find(|key| key.slot == slot.name())
                .and_then(|key| hex::decode(&key.card_public_key).ok())
                .filter(|template| !public_values(template).is_empty())
                .ok_or(ExportsProblem::NoKey(slot.name()))?;
            keys.push((slot, template));
        }
        Ok(TokenKeys(keys))
    }
}

/// The slots whose key `transcript` imports (PUT DATA odd `3FFF` of a `4D` extended header
/// list, the slot named by its control reference template), in transcript order.
fn imported_slots(transcript: &Transcript) -> Vec<Slot> {
    let mut slots = Vec::new();
    for step in &transcript.steps {
        let Step::Command { command, .. } = step else {
            continue;
        };
        let Ok(command) = Command::parse(command.as_bytes()) else {
            continue;
        };
        if command.ins != Ins::PutDataOdd.byte() || (command.p1, command.p2) != (0x3F, 0xFF) {
            continue;
        }
        let crt = split(command.data)
            .filter(|(tag, _)| *tag == 0x4D)
            .and_then(|(_, list)| split(list))
            .map(|(tag, _)| tag);
        if let Some(slot) = Slot::ALL
            .into_iter()
            .find(|slot| crt == Some(u16::from(op::crt(*slot)[0])))
            && !slots.contains(&slot)
        {
            slots.push(slot);
        }
    }
    slots
}

/// The checks before the replay, none of which writes: the token's identity from its AID; its
/// PW3 status (which costs no try): blocked or tried tokens are refused; and whether it already
/// holds what the transcript writes (its `6E` answers the transcript's last expectation), in
/// which case a VERIFY of the factory PW3 tells a finished token (refused: its PW3 changed) from
/// one interrupted before that (accepted: the replay starts over).
pub fn check_before(
    link: &mut impl CardLink,
    transcript: &Transcript,
    uid: Uid,
) -> Result<Before, CheckError> {
    let (status, _) = send(link, &op::select())?;
    if status != Status::Success {
        return Err(TokenRefusal::NoApplication(status).into());
    }
    let (status, aid) = send(link, &op::get_data(0x004F))?;
    if status == Status::Success && aid.len() == 16 && uid_of_aid(&aid) != uid {
        return Err(TokenRefusal::OtherToken(uid_of_aid(&aid)).into());
    }
    let tries = match send(link, &op::verify(0x83, &[]))?.0 {
        Status::TriesLeft(left) => left,
        Status::AuthenticationMethodBlocked => 0,
        _ => FACTORY_TRIES,
    };
    if tries == 0 {
        return Err(TokenRefusal::AdminPinBlocked.into());
    }
    if tries < FACTORY_TRIES {
        return Err(TokenRefusal::AdminPinTried(tries).into());
    }
    let holds_everything = match transcript.steps.last() {
        Some(Step::Command {
            command, expect, ..
        }) => {
            let mut response = Vec::new();
            link.transmit(command.as_bytes(), &mut response)?;
            expect.matches(&response)
        }
        _ => false,
    };
    if !holds_everything {
        return Ok(Before::Replay);
    }
    match send(link, &op::verify(0x83, DEFAULT_PW3))?.0 {
        Status::Success => Ok(Before::Replay),
        _ => Ok(Before::Finished),
    }
}

/// The refusal a replay error means: a wrong factory PW3 at the transcript's VERIFY (its second
/// step), before anything was written.
pub fn refusal(error: &ReplayError) -> Option<TokenRefusal> {
    if error.step() != Some(2) {
        return None;
    }
    match error.status()? {
        Status::SecurityStatusNotSatisfied => Some(TokenRefusal::AdminPinNotDefault {
            left: FACTORY_TRIES - 1,
        }),
        Status::TriesLeft(left) => Some(TokenRefusal::AdminPinNotDefault { left }),
        Status::AuthenticationMethodBlocked => Some(TokenRefusal::AdminPinBlocked),
        _ => None,
    }
}

/// Reads the token back and compares it with what preparation made: `6E` against the
/// transcript's last expectation (fingerprints, dates, attributes, key status); the cardholder
/// data `65`, the URL `5F50` and the login data `5E` against the VSC image; each public key
/// (`47 81`) against the exported one. Returns how many objects were compared.
pub fn read_back(
    link: &mut impl CardLink,
    transcript: &Transcript,
    view: &ClearView,
    keys: &TokenKeys,
) -> Result<usize, ReadbackError> {
    let differs = |what: &str| ReadbackError::Differs {
        what: what.to_string(),
    };
    let mut compared = 0;
    read(link, &op::select(), "the OpenPGP application")?;
    if let Some(Step::Command {
        command, expect, ..
    }) = transcript.steps.last()
    {
        let mut response = Vec::new();
        link.transmit(command.as_bytes(), &mut response)?;
        if !expect.matches(&response) {
            return Err(differs("the application related data (6E)"));
        }
        compared += 1;
    }
    let Some(PublicPart::OpenPgp(public)) = view.applications.first() else {
        return Err(differs("the OpenPGP application (not in the VSC image)"));
    };
    let cardholder = read(link, &op::get_data(0x0065), "the cardholder data (65)")?;
    for (tag, expected, what) in [
        (0x5Bu16, &public.name, "the name (5B)"),
        (0x5F2D, &public.language, "the language (5F2D)"),
        (0x5F35, &public.sex, "the salutation (5F35)"),
    ] {
        if find(&cardholder, tag).unwrap_or_default() != expected.as_slice() {
            return Err(differs(what));
        }
        compared += 1;
    }
    for (tag, expected, what) in [
        (0x5F50u16, &public.url, "the URL (5F50)"),
        (0x005E, &public.login, "the login data (5E)"),
    ] {
        if read(link, &op::get_data(tag), what)? != *expected {
            return Err(differs(what));
        }
        compared += 1;
    }
    for (slot, expected) in &keys.0 {
        let what = format!("the {} public key (47 81)", slot.name());
        let read = read(link, &op::read_public_key(*slot), &what)?;
        if public_values(&read) != public_values(expected) {
            return Err(differs(&what));
        }
        compared += 1;
    }
    Ok(compared)
}

/// A command's data, `9000` required.
fn read(
    link: &mut impl CardLink,
    command: &CommandBuf,
    what: &str,
) -> Result<Vec<u8>, ReadbackError> {
    match send(link, command)? {
        (Status::Success, data) => Ok(data),
        (status, _) => Err(ReadbackError::Status {
            what: what.to_string(),
            status: Some(status),
        }),
    }
}

/// The value of the first data object `tag` inside a constructed object (one level).
fn find(bytes: &[u8], tag: u16) -> Option<&[u8]> {
    let (_, value) = split(bytes)?;
    let mut rest = value;
    while !rest.is_empty() {
        let (header, value) = split(rest)?;
        if header == tag {
            return Some(value);
        }
        rest = remainder(rest)?;
    }
    None
}

/// The tag and value of the first object in `bytes`.
fn split(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (tag, rest) = match bytes {
        [first, second, rest @ ..] if first & 0x1F == 0x1F => {
            (u16::from_be_bytes([*first, *second]), rest)
        }
        [first, rest @ ..] => (u16::from(*first), rest),
        [] => return None,
    };
    let (len, rest) = match rest {
        [n @ 0x00..=0x7F, rest @ ..] => (usize::from(*n), rest),
        [0x81, n, rest @ ..] => (usize::from(*n), rest),
        [0x82, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        _ => return None,
    };
    Some((tag, rest.get(..len)?))
}

/// What follows the first object in `bytes`.
fn remainder(bytes: &[u8]) -> Option<&[u8]> {
    let (_, value) = split(bytes)?;
    let end = value.as_ptr() as usize - bytes.as_ptr() as usize + value.len();
    bytes.get(end..)
}

/// The values of a `7F49` public key template: RSA n and e, or the point (a leading `40` of
/// the 25519 curves dropped), whatever length encoding the card chose.
fn public_values(template: &[u8]) -> Vec<Vec<u8>> {
    let Some((0x7F49, mut rest)) = split(template) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Some((tag, value)) = split(rest) {
        let value = match (tag, value) {
            (0x86, [0x40, point @ ..]) if point.len() == 32 => point,
            _ => value,
        };
        out.push(value.to_vec());
        match remainder(rest) {
            Some(next) => rest = next,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{Compiled, Mode, compile};
    use crate::content::Resolver;
    use crate::keys::MasterKeyDeriver;
    use crate::profile::Profile;
    use crate::records::{self, Record};
    use vsc_core::crypto::MasterKey;

    /// The demo token's first card, compiled from `profile` (the demo profile's text).
    fn demo_token(profile: &str) -> Compiled {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let profile = Profile::from_toml(profile).unwrap();
        let records = dir.join("openpgp-records.csv");
        let mut source = records::open(records.to_str().unwrap()).unwrap();
        let rng = crate::content::system_rng().unwrap();
        let mut resolver = Resolver::new(&profile, source.header(), rng).unwrap();
        let master = MasterKey::from_bytes(&[5; 32]);
        let mut record = Record::default();
        source.next_record(&mut record).unwrap();
        let content = resolver
            .resolve(&record, &MasterKeyDeriver(&master))
            .unwrap();
        compile(&profile, &content, &master, Mode::Channel).unwrap()
    }

    fn demo_profile() -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        std::fs::read_to_string(dir.join("openpgp.toml")).unwrap()
    }

    #[test]
    fn a_token_with_keys_needs_every_imported_key_in_the_stored_exports() {
        let compiled = demo_token(&demo_profile());
        let transcript = &compiled.perso;
        assert_eq!(
            imported_slots(transcript),
            [Slot::Signature, Slot::Decryption, Slot::Authentication]
        );
        let exports = compiled.exports.clone().unwrap();
        let keys = TokenKeys::from_store(transcript, Some(&exports.to_json())).unwrap();
        assert_eq!(keys.0.len(), 3);
        assert_eq!(
            TokenKeys::from_store(transcript, None),
            Err(ExportsProblem::Missing("signature"))
        );
        assert_eq!(
            TokenKeys::from_store(transcript, Some("{\"certificate\": 1}")),
            Err(ExportsProblem::Malformed)
        );
        let mut partial = exports.clone();
        partial.keys.retain(|key| key.slot != "decryption");
        assert_eq!(
            TokenKeys::from_store(transcript, Some(&partial.to_json())),
            Err(ExportsProblem::NoKey("decryption"))
        );
        let mut empty_key = exports.clone();
        empty_key.keys[2].card_public_key = "7F4900".into();
        assert_eq!(
            TokenKeys::from_store(transcript, Some(&empty_key.to_json())),
            Err(ExportsProblem::NoKey("authentication"))
        );
        // The message says what is wrong and what to do, and the job, not the token, is refused.
        let message = CheckError::from(ExportsProblem::Missing("signature")).to_string();
        assert!(message.contains("nothing was written"), "{message}");
        assert!(message.contains("no exports"), "{message}");
    }

    #[test]
    fn a_token_without_keys_needs_no_exports() {
        let mut profile = String::new();
        let mut skipping = false;
        for line in demo_profile().lines() {
            if line.starts_with("[openpgp.signature]")
                || line.starts_with("[openpgp.decryption]")
                || line.starts_with("[openpgp.authentication]")
            {
                skipping = true;
            } else if line.starts_with('[') {
                skipping = false;
            }
            if !skipping {
                profile.push_str(line);
                profile.push('\n');
            }
        }
        let compiled = demo_token(&profile);
        assert!(imported_slots(&compiled.perso).is_empty());
        assert_eq!(
            TokenKeys::from_store(&compiled.perso, None),
            Ok(TokenKeys::default())
        );
    }

    #[test]
    fn templates_compare_by_value() {
        let short = hex::decode("7F4903860140").unwrap();
        assert_eq!(public_values(&short).len(), 1);
        let a = hex::decode("7F490A81030102038203010001").unwrap();
        // The same key with two-byte length fields: the same values.
        let b = hex::decode("7F49810B8181030102038203010001").unwrap();
        assert_eq!(public_values(&a), vec![vec![1, 2, 3], vec![1, 0, 1]]);
        assert_eq!(public_values(&b), public_values(&a));
        let cardholder = hex::decode("650A5B03414243 5F2D02656E".replace(' ', "")).unwrap();
        assert_eq!(find(&cardholder, 0x5B), Some(&b"ABC"[..]));
        assert_eq!(find(&cardholder, 0x5F2D), Some(&b"en"[..]));
        assert_eq!(find(&cardholder, 0x5F35), None);
    }
}
