//! PIV cards at the station (docs/piv.md, "Personalizing it"): a PIV VSC is known by its
//! EF.UID, confirmed by its CHUID's GUID (derived from the UID); before anything is written its
//! PIN, PUK and management key must still be the factory ones (asked with GET METADATA and
//! VERIFY's status, which cost no try); after the replay its CHUID, certificates and public
//! keys are read back and compared with what preparation made.

use vsc_core::apdu::Status;
use vsc_core::applications::piv::{DEFAULT_TRIES, objects};
use vsc_core::commands::{CommandBuf, piv as cmd};
use vsc_core::tlv;
use vsc_core::transcript::{Step, Transcript};

use super::readback::ReadbackError;
use crate::compile::piv::Exports;
use crate::replay::{CardLink, LinkError, ReplayError};
use crate::store::Uid;

/// The step of the transcript's VERIFY of the factory PIN.
const VERIFY_STEP: usize = 3;
/// The step of the live authentication with the factory management key.
const FACTORY_KEY_STEP: usize = 4;

/// Why a PIV card is refused before anything is written to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PivRefusal {
    /// It has no PIV application.
    #[error("it has no PIV application (SELECT answered {0})")]
    NoApplication(Status),
    /// Its CHUID's GUID is not the one of this job's UID.
    #[error("its CHUID's GUID is not the one of UID {0}: another card")]
    OtherCard(Uid),
    /// A password is blocked.
    #[error("its {0} is blocked: reset the card to its factory state first")]
    Blocked(&'static str),
    /// A password has had wrong tries: not tried, to spare the tries left.
    #[error(
        "its {what} has {left} of {total} tries left: the card has been used; reset it to its factory state first"
    )]
    Tried {
        /// PIN or PUK.
        what: &'static str,
        /// Tries left.
        left: u8,
        /// Tries in all.
        total: u8,
    },
    /// A password is not the factory value (GET METADATA says so; no try spent).
    #[error("its {0} is not the factory value: reset the card to its factory state first")]
    NotFactory(&'static str),
    /// The transcript's VERIFY of the factory PIN failed.
    #[error(
        "its PIN is not the factory value 123456 (that try counted, {left} left): reset the card to its factory state first"
    )]
    PinNotFactory {
        /// Tries left after the one the check cost.
        left: u8,
    },
    /// The factory management key does not authenticate.
    #[error(
        "its management key is not the factory default (the authentication failed; it has no retry counter): reset the card to its factory state first"
    )]
    ManagementKeyNotFactory,
}

/// The failure of a check before the replay.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The card could not be read.
    #[error("reading the PIV card: {0}")]
    Link(#[from] LinkError),
    /// The card is refused.
    #[error("the PIV card is refused, nothing was written: {0}")]
    Refused(#[from] PivRefusal),
}

/// What the checks before the replay found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// Factory-fresh: replay.
    Replay,
    /// Its PIN and management key are no longer the factory ones and it reads back as
    /// prepared: an earlier attempt finished it.
    Finished,
}

/// Whether a transcript personalizes a PIV card: its first step selects the application.
pub fn is_piv(transcript: &Transcript) -> bool {
    let select = cmd::select().to_vec().unwrap_or_default();
    matches!(transcript.steps.first(), Some(Step::Command { command, .. }) if command.as_bytes() == select)
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

/// A password's state from GET METADATA (`05` factory flag, `06` tries in all and left), or
/// from VERIFY's status (no try spent) on a card without GET METADATA.
struct PasswordState {
    factory: Option<bool>,
    total: u8,
    left: u8,
}

fn password_state(link: &mut impl CardLink, reference: u8) -> Result<PasswordState, LinkError> {
    let (status, data) = send(link, &cmd::get_metadata(reference))?;
    if status == Status::Success
        && let Ok(objects) = tlv::parse_all(&data)
        && let Some([total, left]) = tlv::find_primitive(&objects, 0x06)
    {
        return Ok(PasswordState {
            factory: tlv::find_primitive(&objects, 0x05).map(|flag| flag == [0x01]),
            total: *total,
            left: *left,
        });
    }
    let left = match send(link, &cmd::verify(reference, &[]))?.0 {
        Status::TriesLeft(left) => left,
        Status::AuthenticationMethodBlocked => 0,
        _ => DEFAULT_TRIES,
    };
    Ok(PasswordState {
        factory: None,
        total: DEFAULT_TRIES,
        left,
    })
}

/// The checks before the replay, none of which writes or spends a try: the PIV application;
/// the CHUID's GUID against the job's UID; the PIN's and PUK's counters and factory flags; the
/// management key's factory flag. A card whose PIN and management key are no longer the
/// factory ones and which reads back as prepared is [`Before::Finished`].
pub fn check_before(
    link: &mut impl CardLink,
    uid: Uid,
    exports: Option<&Exports>,
) -> Result<Before, CheckError> {
    let (status, _) = send(link, &cmd::select())?;
    if status != Status::Success {
        return Err(PivRefusal::NoApplication(status).into());
    }
    if let (Status::Success, chuid) = send(link, &cmd::get_data(objects::CHUID))?
        && let Ok(object) = tlv::parse_one(&chuid)
        && let Some(value) = tlv::primitive(&object)
        && objects::chuid_guid(value) != Some(objects::guid(uid))
    {
        return Err(PivRefusal::OtherCard(uid).into());
    }
    let pin = password_state(link, 0x80)?;
    let puk = password_state(link, 0x81)?;
    for (what, state) in [("PIN", &pin), ("PUK", &puk)] {
        if state.left == 0 {
            return Err(PivRefusal::Blocked(what).into());
        }
        if state.left < state.total {
            return Err(PivRefusal::Tried {
                what,
                left: state.left,
                total: state.total,
            }
            .into());
        }
    }
    let (status, data) = send(link, &cmd::get_metadata(0x9B))?;
    let key_factory = match (status, tlv::parse_all(&data)) {
        (Status::Success, Ok(objects)) => {
            tlv::find_primitive(&objects, 0x05).map(|flag| flag == [0x01])
        }
        _ => None,
    };
    if pin.factory == Some(false) && key_factory == Some(false) {
        send(link, &cmd::select())?;
        if read_back(link, uid, exports).is_ok() {
            return Ok(Before::Finished);
        }
    }
    if pin.factory == Some(false) {
        return Err(PivRefusal::NotFactory("PIN").into());
    }
    if puk.factory == Some(false) {
        return Err(PivRefusal::NotFactory("PUK").into());
    }
    if key_factory == Some(false) {
        return Err(PivRefusal::ManagementKeyNotFactory.into());
    }
    Ok(Before::Replay)
}

/// The refusal a replay error means: a wrong factory PIN at the transcript's VERIFY, or a
/// failed authentication with the factory management key, both before anything was written.
pub fn refusal(error: &ReplayError) -> Option<PivRefusal> {
    match (error, error.step()?) {
        (ReplayError::Live { .. }, FACTORY_KEY_STEP) => Some(PivRefusal::ManagementKeyNotFactory),
        (_, VERIFY_STEP) => match error.status()? {
            Status::TriesLeft(left) => Some(PivRefusal::PinNotFactory { left }),
            Status::AuthenticationMethodBlocked => Some(PivRefusal::Blocked("PIN")),
            _ => None,
        },
        _ => None,
    }
}

/// Reads the card back and compares it with what preparation made: the CHUID (the UID's), each
/// certificate object (GET DATA) and each public key (GET METADATA, where the card has it).
/// Returns how many objects were compared.
pub fn read_back(
    link: &mut impl CardLink,
    uid: Uid,
    exports: Option<&Exports>,
) -> Result<usize, ReadbackError> {
    let differs = |what: &str| ReadbackError::Differs {
        what: what.to_string(),
    };
    read(link, &cmd::select(), "the PIV application")?;
    let chuid = read(link, &cmd::get_data(objects::CHUID), "the CHUID (5FC102)")?;
    let mut expected = Vec::new();
    tlv::push_primitive(&mut expected, &[0x53], &objects::factory_chuid(uid));
    if chuid != expected {
        return Err(differs("the CHUID (5FC102)"));
    }
    let mut compared = 1;
    for slot in exports.map(|e| e.piv.as_slice()).unwrap_or_default() {
        let Some(reference) = u8::from_str_radix(&slot.slot, 16)
            .ok()
            .and_then(vsc_core::applications::piv::Slot::new)
        else {
            continue;
        };
        if let Some(object) = &slot.certificate_object {
            let what = format!("the {} certificate", slot.slot);
            let read = read(link, &cmd::get_data(reference.certificate_tag()), &what)?;
            if hex::encode_upper(read) != *object {
                return Err(differs(&what));
            }
            compared += 1;
        }
        let what = format!("the {} public key (GET METADATA)", slot.slot);
        match send(link, &cmd::get_metadata(reference.byte()))? {
            (Status::Success, data) => {
                let public = tlv::parse_all(&data)
                    .ok()
                    .and_then(|objects| tlv::find_primitive(&objects, 0x04).map(hex::encode_upper));
                if public.as_deref() != Some(slot.metadata_public.as_str()) {
                    return Err(differs(&what));
                }
                compared += 1;
            }
            // A card without the Yubico extension: the certificate was compared.
            (Status::InstructionNotSupported, _) => {}
            (status, _) => {
                return Err(ReadbackError::Status {
                    what,
                    status: Some(status),
                });
            }
        }
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

#[cfg(test)]
mod tests {
    use vsc_core::card::Card;
    use vsc_core::crypto::MasterKey;

    use super::*;
    use crate::replay::{self, CardOsLink, LiveKeys, Unchecked};

    const UID: [u8; 8] = [0x56, 0x53, 0x43, 0x44, 0x00, 0x00, 0x50, 0x01];

    fn link() -> CardOsLink {
        CardOsLink::new(vsc_core::sample::piv_token(UID))
    }

    fn send_hex(link: &mut CardOsLink, apdu: &str) -> String {
        let mut response = Vec::new();
        link.transmit(&hex::decode(apdu).unwrap(), &mut response)
            .unwrap();
        hex::encode_upper(response)
    }

    fn refused(result: Result<Before, CheckError>) -> PivRefusal {
        match result {
            Err(CheckError::Refused(refusal)) => refusal,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_factory_fresh_card_is_replayed() {
        let mut link = link();
        assert_eq!(
            check_before(&mut link, Uid(UID), None).unwrap(),
            Before::Replay
        );
        // The checks spent no try.
        assert_eq!(send_hex(&mut link, "0020008000"), "63C3");
        assert_eq!(send_hex(&mut link, "0020008100"), "63C3");
    }

    #[test]
    fn another_cards_chuid_is_refused() {
        let mut link = link();
        let mut other = UID;
        other[7] = 0x02;
        assert_eq!(
            refused(check_before(&mut link, Uid(other), None)),
            PivRefusal::OtherCard(Uid(other))
        );
    }

    #[test]
    fn used_or_changed_passwords_are_refused_without_a_try() {
        let mut link = link();
        assert_eq!(send_hex(&mut link, "00A4040005A000000308"), "9000");
        assert_eq!(send_hex(&mut link, "0020008008313131313131FFFF"), "63C2");
        assert!(matches!(
            refused(check_before(&mut link, Uid(UID), None)),
            PivRefusal::Tried {
                what: "PIN",
                left: 2,
                total: 3
            }
        ));
        let mut link = self::link();
        // CHANGE REFERENCE DATA of the PUK: 12345678 -> 87654321.
        assert_eq!(send_hex(&mut link, "00A4040005A000000308"), "9000");
        assert_eq!(
            send_hex(&mut link, "002400811031323334353637383837363534333231"),
            "9000"
        );
        assert_eq!(
            refused(check_before(&mut link, Uid(UID), None)),
            PivRefusal::NotFactory("PUK")
        );
        assert_eq!(send_hex(&mut link, "0020008100"), "63C3");
    }

    #[test]
    fn a_finished_card_is_confirmed_and_a_replay_onto_it_is_refused_at_the_pin() {
        // A personalized card, as after an interruption between its last write and its audit.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let profile = crate::profile::Profile::load(&dir.join("piv.toml")).unwrap();
        let master = MasterKey::from_bytes(&[5; 32]);
        let mut source =
            crate::records::open(dir.join("piv-records.csv").to_str().unwrap()).unwrap();
        let mut resolver = crate::content::Resolver::new(
            &profile,
            source.header(),
            crate::content::system_rng().unwrap(),
        )
        .unwrap();
        let mut record = crate::records::Record::default();
        source.next_record(&mut record).unwrap();
        let content = resolver
            .resolve(&record, &crate::keys::MasterKeyDeriver(&master))
            .unwrap();
        let compiled =
            crate::compile::compile(&profile, &content, &master, crate::compile::Mode::Channel)
                .unwrap();
        let card: Card = crate::prepare::run_on_blank(&compiled, &master).unwrap();
        let mut link = CardOsLink::new(card);
        // As after an interruption between the last write and the audit: it reads back.
        let exports = compiled.piv_exports.as_ref();
        assert_eq!(
            check_before(&mut link, content.uid, exports).unwrap(),
            Before::Finished
        );
        assert!(read_back(&mut link, content.uid, exports).unwrap() >= 9);
        // Replayed anyway, its transcript stops at the VERIFY of the factory PIN, a refusal.
        let error = replay::replay_live(
            &mut link,
            &compiled.perso,
            Unchecked::default(),
            LiveKeys::issuer(&master),
            |_| {},
        )
        .unwrap_err();
        assert_eq!(
            refusal(&error),
            Some(PivRefusal::PinNotFactory { left: 2 }),
            "{error}"
        );
    }

    #[test]
    fn a_changed_management_key_is_refused() {
        let mut link = link();
        assert_eq!(send_hex(&mut link, "00A4040005A000000308"), "9000");
        let factory = vsc_core::transcript::LiveStep::factory_management_key();
        let key = factory.key(None, &UID).unwrap();
        let mut response = Vec::new();
        replay::run_live_step(&mut link, &factory, &key, &mut response).unwrap();
        // SET MANAGEMENT KEY: AES-128, 16 bytes of 11.
        let set = format!("00FFFFFF13089B10{}", "11".repeat(16));
        assert_eq!(send_hex(&mut link, &set), "9000");
        assert_eq!(
            refused(check_before(&mut link, Uid(UID), None)),
            PivRefusal::ManagementKeyNotFactory
        );
        // And the factory key's live step (step 4) fails on it: a refusal.
        let error = ReplayError::Live {
            step: FACTORY_KEY_STEP,
            comment: None,
            cause: crate::replay::LiveFailure::Malformed,
        };
        assert_eq!(refusal(&error), Some(PivRefusal::ManagementKeyNotFactory));
    }
}
