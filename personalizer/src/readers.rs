//! Readers: the one rule by which every command picks a reader (its exact name, its index in
//! pcscd's list, or a part of its name that only one reader has), and what `readers` shows of
//! each reader and its card.

use std::ffi::CString;
use std::time::Duration;

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};
use serde::Serialize;

use crate::replay::{self, PcscLink};
use crate::store::Uid;

/// Why no reader was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReaderError {
    /// pcscd could not be reached or listed.
    #[error("cannot list the readers (is pcscd running?): {0}")]
    Pcsc(#[source] pcsc::Error),
    /// pcscd has no reader.
    #[error("no reader found (is the reader plugged in, is vpcd configured?)")]
    NoReaders,
    /// Nothing matches.
    #[error("no reader {wanted:?}; readers: {}", list(readers))]
    NoMatch {
        /// What was asked for.
        wanted: String,
        /// What there is.
        readers: Vec<String>,
    },
    /// Several readers have the part asked for.
    #[error(
        "{wanted:?} matches several readers; name one (or give its index): {}",
        list(matches)
    )]
    Ambiguous {
        /// What was asked for.
        wanted: String,
        /// The readers it matches.
        matches: Vec<String>,
    },
    /// No reader was named, and not exactly one has a card.
    #[error("{}; name one with --reader: {}", if *with_cards == 0 { "no reader has a card" } else { "several readers have a card" }, list(readers))]
    NotOneWithCard {
        /// How many have a card.
        with_cards: usize,
        /// The readers.
        readers: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{i}: {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reader `wanted` names among `names`: the exact name, else an index, else the only
/// name containing it.
pub fn choose(names: &[String], wanted: &str) -> Result<usize, ReaderError> {
    if let Some(exact) = names.iter().position(|name| name == wanted) {
        return Ok(exact);
    }
    if let Ok(index) = wanted.parse::<usize>()
        && index < names.len()
    {
        return Ok(index);
    }
    let matches: Vec<usize> = (0..names.len())
        .filter(|i| names[*i].contains(wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(ReaderError::NoMatch {
            wanted: wanted.to_string(),
            readers: names.to_vec(),
        }),
        _ => Err(ReaderError::Ambiguous {
            wanted: wanted.to_string(),
            matches: matches.iter().map(|i| names[*i].clone()).collect(),
        }),
    }
}

/// Every reader pcscd knows.
pub fn all(context: &Context) -> Result<Vec<CString>, ReaderError> {
    let readers = match context.list_readers_owned() {
        Ok(readers) => readers,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(error) => return Err(ReaderError::Pcsc(error)),
    };
    if readers.is_empty() {
        return Err(ReaderError::NoReaders);
    }
    Ok(readers)
}

fn names(readers: &[CString]) -> Vec<String> {
    readers
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect()
}

/// The readers `wanted` names (each by [`choose`]); every reader when none is named.
pub fn select(context: &Context, wanted: &[String]) -> Result<Vec<CString>, ReaderError> {
    let readers = all(context)?;
    if wanted.is_empty() {
        return Ok(readers);
    }
    let names = names(&readers);
    let mut chosen: Vec<CString> = Vec::new();
    for wanted in wanted {
        let reader = readers[choose(&names, wanted)?].clone();
        if !chosen.contains(&reader) {
            chosen.push(reader);
        }
    }
    Ok(chosen)
}

/// The reader `wanted` names or, when none is named, the only reader with a card.
pub fn select_one(context: &Context, wanted: Option<&str>) -> Result<CString, ReaderError> {
    let readers = all(context)?;
    let names = names(&readers);
    if let Some(wanted) = wanted {
        return Ok(readers[choose(&names, wanted)?].clone());
    }
    let with_cards: Vec<usize> = (0..readers.len())
        .filter(|i| state(context, &readers[*i]) == CardState::Present)
        .collect();
    match with_cards.as_slice() {
        [one] => Ok(readers[*one].clone()),
        _ => Err(ReaderError::NotOneWithCard {
            with_cards: with_cards.len(),
            readers: names,
        }),
    }
}

/// Whether a reader has a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CardState {
    /// A card is in and answers.
    Present,
    /// A card is in but does not answer (mute).
    Mute,
    /// No card.
    Empty,
    /// The reader cannot be asked.
    Unknown,
}

fn state(context: &Context, reader: &CString) -> CardState {
    let mut states = [ReaderState::new(reader.clone(), State::UNAWARE)];
    match context.get_status_change(Duration::ZERO, &mut states) {
        Ok(()) | Err(pcsc::Error::Timeout) => {
            let event = states[0].event_state();
            if event.contains(State::MUTE) {
                CardState::Mute
            } else if event.contains(State::PRESENT) {
                CardState::Present
            } else {
                CardState::Empty
            }
        }
        Err(_) => CardState::Unknown,
    }
}

/// A reader and its card, as `readers` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderInfo {
    /// Its index (what `--reader N` means).
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Whether it has a card.
    pub card: CardState,
    /// The card's ATR, hex.
    pub atr: Option<String>,
    /// The VSC life cycle its ATR advertises.
    pub life_cycle: Option<&'static str>,
    /// The card's UID (EF.UID), for a VSC that has one.
    pub uid: Option<Uid>,
}

/// Every reader and its card. Cards are read through a shared connection, left as they are.
pub fn survey() -> Result<Vec<ReaderInfo>, ReaderError> {
    let context = Context::establish(Scope::User).map_err(ReaderError::Pcsc)?;
    let readers = all(&context)?;
    Ok(readers
        .iter()
        .enumerate()
        .map(|(index, reader)| {
            let card = state(&context, reader);
            let mut info = ReaderInfo {
                index,
                name: reader.to_string_lossy().into_owned(),
                card,
                atr: None,
                life_cycle: None,
                uid: None,
            };
            if card == CardState::Present
                && let Ok(mut connected) =
                    context.connect(reader, ShareMode::Shared, Protocols::ANY)
            {
                let mut link = PcscLink::exclusive(&mut connected);
                if let Ok(atr) = replay::CardLink::atr(&mut link) {
                    info.life_cycle = replay::life_cycle(&atr).map(|state| state.name());
                    info.atr = Some(hex::encode_upper(&atr));
                }
                info.uid = replay::read_uid(&mut link).ok().flatten();
            }
            info
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        [
            "Virtual PCD 00 00",
            "Virtual PCD 00 01",
            "Virtual PCD B 00 00",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn exact_name_index_or_unique_part() {
        let names = names();
        assert_eq!(choose(&names, "Virtual PCD 00 01"), Ok(1));
        assert_eq!(choose(&names, "2"), Ok(2));
        assert_eq!(choose(&names, "B 00"), Ok(2));
        assert_eq!(choose(&names, "00 01"), Ok(1));
        assert!(matches!(
            choose(&names, "00 00"),
            Err(ReaderError::Ambiguous { .. })
        ));
        assert!(matches!(
            choose(&names, "7"),
            Err(ReaderError::NoMatch { .. })
        ));
        let error = choose(&names, "Yubico").unwrap_err().to_string();
        assert!(
            error.contains("0: Virtual PCD 00 00, 1: Virtual PCD 00 01"),
            "{error}"
        );
        // An exact name wins over an index and over parts.
        let odd = vec!["1".to_string(), "reader 1".to_string()];
        assert_eq!(choose(&odd, "1"), Ok(0));
    }
}
