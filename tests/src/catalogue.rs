//! The cards the status-word sweep and the fuzzers run on: one or more in every life cycle
//! state (blank chip, pre-initialized, operational, terminated), and every application the card
//! OS knows.
//!
//! Applications join by themselves: every code for which
//! [`ApplicationKind::from_code`] names a kind is installed on the "every application" cards,
//! so a new application kind is swept and fuzzed without a change here.

use rand::SeedableRng;
use rand::rngs::StdRng;
use vsc_core::apdu::Command;
use vsc_core::applications::{ApplicationKind, install_fcp};
use vsc_core::card::{Card, CardState, LifeCycle};
use vsc_core::crypto::MasterKey;
use vsc_core::sample;
use vsc_core::security::PasswordRef;
use vsc_personalizer::compile::{self, Mode};
use vsc_personalizer::content::Resolver;
use vsc_personalizer::keys::MasterKeyDeriver;
use vsc_personalizer::profile::Profile;
use vsc_personalizer::records::{CsvSource, Record, RecordSource, Step};

use crate::{HarnessError, Result};

/// The demo profile and its records, as the repository ships them.
const DEMO_PROFILE: &str = include_str!("../../personalizer/profiles/demo.toml");
const DEMO_RECORDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../personalizer/profiles/demo-records.csv"
);

/// A card of the catalogue.
#[derive(Clone, Debug)]
pub struct CatalogueCard {
    /// What it is, e.g. `sample with every application, operational`.
    pub name: String,
    /// Its persistent state, as a card is powered on with it.
    pub state: CardState,
    /// The VSC file system's user PIN as VERIFY presents it (padded), where it is known.
    pub user_pin: Option<Vec<u8>>,
}

impl CatalogueCard {
    /// The card, just powered on.
    pub fn card(&self) -> Card {
        Card::from_state(self.state.clone())
    }

    /// The commands that verify every password of a context whose value is known: the VSC file
    /// system's user PIN (`aid` `None`), a factory-fresh OpenPGP application's PW1 (both
    /// references) and PW3, or a factory-fresh PIV application's PIN (its PUK is no VERIFY's,
    /// and its management key needs a challenge). Empty where none is known.
    pub fn unlock(&self, aid: Option<&[u8]>) -> Vec<Vec<u8>> {
        use vsc_core::applications::{Application, openpgp, piv};
        let verify =
            |p2: u8, value: &[u8]| encode(Command::new(0x00, 0x20, 0x00, p2).with_data(value));
        let Some(aid) = aid else {
            return self.user_pin.iter().map(|pin| verify(0x01, pin)).collect();
        };
        let uid = self.state.uid();
        let Some(application) = self
            .state
            .applications
            .iter()
            .find(|application| application.aid(uid) == aid)
        else {
            return Vec::new();
        };
        let kind = application.kind();
        if *application != Application::install(kind, uid) {
            return Vec::new();
        }
        match kind {
            ApplicationKind::OpenPgp => vec![
                verify(0x81, openpgp::DEFAULT_PW1),
                verify(0x82, openpgp::DEFAULT_PW1),
                verify(0x83, openpgp::DEFAULT_PW3),
            ],
            ApplicationKind::Piv => vec![verify(0x80, piv::DEFAULT_PIN)],
        }
    }

    /// The AIDs of the applications it carries, the VSC file system aside.
    pub fn application_aids(&self) -> Vec<Vec<u8>> {
        let uid = self.state.uid();
        self.state
            .applications
            .iter()
            .map(|application| application.aid(uid))
            .collect()
    }
}

/// The test issuer key `00 01 .. 1F` the catalogue's prepared cards are made under: never use
/// it for anything real.
pub fn test_master_key() -> MasterKey {
    MasterKey::from_bytes(&std::array::from_fn(|i| i as u8))
}

/// Every application kind the card OS knows.
pub fn application_kinds() -> Vec<ApplicationKind> {
    (0..=u8::MAX)
        .filter_map(ApplicationKind::from_code)
        .collect()
}

/// Every card of the catalogue, in a fixed order.
pub fn catalogue() -> Result<Vec<CatalogueCard>> {
    let card = |name: &str, card: Card| {
        let state = card.into_state();
        // The sample script's user PIN, on every card made from it.
        let user_pin = (state.life_cycle == LifeCycle::Operational
            && state.passwords.get(PasswordRef::UserPin).is_some())
        .then(|| sample::USER_PIN.to_vec());
        CatalogueCard {
            name: name.to_string(),
            state,
            user_pin,
        }
    };
    let every_application: Vec<(String, Vec<u8>)> = application_kinds()
        .into_iter()
        .map(|kind| {
            let fcp = install_fcp(kind);
            (
                format!("install {}", kind.name()),
                encode(Command::new(0x00, 0xE0, 0x00, 0x00).with_data(&fcp)),
            )
        })
        .collect();
    // The sample's structure and contents, without its last step (ACTIVATE FILE of the MF).
    let mut structure = sample::script();
    structure.pop();
    structure.extend(every_application);
    let mut with_every_application = structure.clone();
    with_every_application.push(("activate".into(), hex("00440000023F00")));
    let mut pre_initialized = structure.clone();
    pre_initialized.push((
        "load the channel keys".into(),
        hex(concat!(
            "00DA010324",
            "C010404142434445464748494A4B4C4D4E4F",
            "C110505152535455565758595A5B5C5D5E5F"
        )),
    ));
    let mut terminated = structure;
    terminated.push(("terminate the card".into(), hex("00FE0000")));

    let demo = demo()?;
    let cards = vec![
        card("blank chip", Card::blank()),
        card(
            "sample with every application, pre-initialized",
            run(&pre_initialized)?,
        ),
        CatalogueCard {
            name: "demo profile, pre-initialized".into(),
            state: demo.pre_initialized,
            user_pin: None,
        },
        card("sample, operational", sample::card()),
        card(
            "sample with OpenPGP, operational",
            sample::card_with_openpgp(),
        ),
        card(
            "OpenPGP token, operational",
            sample::openpgp_token([0x56, 0x53, 0x43, 0x00, 0x00, 0x00, 0x00, 0x02]),
        ),
        card(
            "PIV token, operational",
            sample::piv_token([0x56, 0x53, 0x43, 0x00, 0x00, 0x00, 0x00, 0x03]),
        ),
        card(
            "sample with every application, operational",
            run(&with_every_application)?,
        ),
        CatalogueCard {
            name: "demo profile, personalized".into(),
            state: demo.personalized,
            user_pin: Some(demo.user_pin),
        },
        card(
            "sample with every application, terminated",
            run(&terminated)?,
        ),
    ];
    Ok(cards)
}

/// The demo profile's first card, as `prepare` makes it (through the channel).
#[derive(Debug)]
pub struct Demo {
    /// Pre-initialized.
    pub pre_initialized: CardState,
    /// Personalized: operational.
    pub personalized: CardState,
    /// Its personalization transcript, which made the one from the other.
    pub personalization: vsc_core::transcript::Transcript,
    /// Its pre-initialization transcript.
    pub pre_initialization: vsc_core::transcript::Transcript,
    /// Its user PIN as VERIFY presents it (padded to 8 bytes with `FF`).
    pub user_pin: Vec<u8>,
}

/// The demo profile's first card, under [`test_master_key`].
pub fn demo() -> Result<Demo> {
    let failed = |what: &str| {
        let what = what.to_string();
        move |detail: String| HarnessError::Failed { what, detail }
    };
    let profile =
        Profile::from_toml(DEMO_PROFILE).map_err(|e| failed("the demo profile")(e.to_string()))?;
    let mut source = CsvSource::open(std::path::Path::new(DEMO_RECORDS))
        .map_err(|e| failed("the demo records")(e.to_string()))?;
    let mut resolver = Resolver::new(&profile, source.header(), StdRng::seed_from_u64(1))
        .map_err(|e| failed("binding the demo profile")(e.to_string()))?;
    let mut record = Record::new();
    match source.next_record(&mut record) {
        Ok(Step::Read) => {}
        other => return Err(failed("the first demo record")(format!("{other:?}"))),
    }
    let master = test_master_key();
    let content = resolver
        .resolve(&record, &MasterKeyDeriver(&master))
        .map_err(|e| failed("resolving the first demo record")(e.to_string()))?;
    let compiled = compile::compile(&profile, &content, &master, Mode::Channel)
        .map_err(|e| failed("compiling the demo card")(e.to_string()))?;
    let mut pre_initialized = Card::blank();
    for step in &compiled.preinit.steps {
        if let vsc_core::transcript::Step::Command {
            command, expect, ..
        } = step
        {
            let response = pre_initialized.transmit(command.as_bytes());
            if !expect.matches(&response) {
                return Err(failed("pre-initializing the demo card")(format!(
                    "the card answered {}",
                    hex::encode_upper(&response)
                )));
            }
        }
    }
    let personalized = vsc_personalizer::prepare::run_on_blank(&compiled, &master)
        .map_err(|(kind, e)| failed("personalizing the demo card")(format!("{kind}: {e}")))?;
    Ok(Demo {
        pre_initialized: pre_initialized.into_state(),
        personalized: personalized.into_state(),
        personalization: compiled.perso,
        pre_initialization: compiled.preinit,
        user_pin: {
            let mut pin = content.pin.expose().to_vec();
            pin.resize(8, 0xFF);
            pin
        },
    })
}

/// A blank chip after `steps`, each of which must succeed.
fn run(steps: &[(String, Vec<u8>)]) -> Result<Card> {
    let mut card = Card::blank();
    for (what, command) in steps {
        let response = card.transmit(command);
        if response != [0x90, 0x00] {
            return Err(HarnessError::Failed {
                what: format!("making a catalogue card: {what}"),
                detail: format!("the card answered {}", hex::encode_upper(&response)),
            });
        }
    }
    card.reset();
    Ok(card)
}

fn encode(command: Command<'_>) -> Vec<u8> {
    command.to_vec().unwrap_or_default()
}

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_default()
}

/// Which life cycle states the catalogue covers (each at least once).
pub fn life_cycles(cards: &[CatalogueCard]) -> Vec<LifeCycle> {
    let mut seen = Vec::new();
    for card in cards {
        if !seen.contains(&card.state.life_cycle) {
            seen.push(card.state.life_cycle);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_life_cycle_and_every_application_is_there() {
        let cards = catalogue().unwrap();
        let states = life_cycles(&cards);
        for state in [
            LifeCycle::Creation,
            LifeCycle::Initialisation,
            LifeCycle::Operational,
            LifeCycle::Terminated,
        ] {
            assert!(states.contains(&state), "{state:?}");
        }
        let every = cards
            .iter()
            .find(|card| card.name == "sample with every application, operational")
            .unwrap();
        let kinds: Vec<_> = every.state.applications.iter().map(|a| a.kind()).collect();
        assert_eq!(kinds, application_kinds());
        assert!(!kinds.is_empty());
        let demo = cards
            .iter()
            .find(|card| card.name == "demo profile, personalized")
            .unwrap();
        assert_eq!(demo.state.life_cycle, LifeCycle::Operational);
        assert!(demo.state.keys.iter().any(|key| key.is_loaded()));
        // What unlocks a card unlocks it.
        for entry in cards
            .iter()
            .filter(|entry| entry.state.life_cycle != LifeCycle::Terminated)
        {
            let mut card = entry.card();
            for command in entry.unlock(None) {
                assert_eq!(card.transmit(&command), [0x90, 0x00], "{}", entry.name);
            }
            for aid in entry.application_aids() {
                let mut select = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
                select.extend_from_slice(&aid);
                assert_eq!(card.transmit(&select), [0x90, 0x00], "{}", entry.name);
                for command in entry.unlock(Some(&aid)) {
                    assert_eq!(card.transmit(&command), [0x90, 0x00], "{}", entry.name);
                }
            }
        }
        assert!(demo.unlock(None).len() == 1);
    }
}
