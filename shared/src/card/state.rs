//! What the card keeps across power cycles: its life cycle, the VSC file system's files,
//! passwords and keys, the applications installed beside it, and the generation of the state.

use serde::{Deserialize, Serialize};

use crate::Uid;
use crate::applications::Application;
use crate::fs::{AccessRules, Condition, DataObjectRules, Df, EfBody, Fid, FileSystem, Operation};
use crate::security::{KeyArea, PasswordArea};

/// The card's life cycle (ISO 7816-4 §5.3.3.2, as the MF's LCS byte shows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LifeCycle {
    /// A blank chip (`01`): no structure, no keys; every command is allowed in plain, as the
    /// card maker needs. Loading the channel keys ends it.
    Creation,
    /// Pre-initialized (`03`): structure, UID and channel keys exist; personalization writes
    /// only through the personalization channel.
    Initialisation,
    /// Personalized and in use (`05`): the profile's access rules apply; the channel is closed.
    Operational,
    /// Terminated (`0C`): the card refuses everything.
    Terminated,
}

impl LifeCycle {
    /// The LCS byte.
    pub fn byte(self) -> u8 {
        match self {
            LifeCycle::Creation => 0x01,
            LifeCycle::Initialisation => 0x03,
            LifeCycle::Operational => 0x05,
            LifeCycle::Terminated => 0x0C,
        }
    }

    /// A short name, e.g. `pre-initialized`.
    pub fn name(self) -> &'static str {
        match self {
            LifeCycle::Creation => "blank (creation)",
            LifeCycle::Initialisation => "pre-initialized",
            LifeCycle::Operational => "operational",
            LifeCycle::Terminated => "terminated",
        }
    }
}

/// The card's persistent state: everything a VSC image holds. Two states are equal when the
/// card holds the same (the generation, which counts saves, is not compared: the same card
/// reached by a replay that was interrupted and restarted is the same card).
#[derive(Clone, Debug, Eq)]
pub struct CardState {
    /// The life cycle.
    pub life_cycle: LifeCycle,
    /// The files under the MF.
    pub fs: FileSystem,
    /// The user PIN and PUK.
    pub passwords: PasswordArea,
    /// The key objects and the channel keys.
    pub keys: KeyArea,
    /// The applications installed beside the VSC file system, in installation order.
    pub applications: Vec<Application>,
    /// How many times the state was made durable: every save counts one up, so an older copy
    /// of the card's image shows a smaller number (docs/image-format.md, "Rollback").
    pub generation: u64,
}

impl PartialEq for CardState {
    fn eq(&self, other: &Self) -> bool {
        self.life_cycle == other.life_cycle
            && self.fs == other.fs
            && self.passwords == other.passwords
            && self.keys == other.keys
            && self.applications == other.applications
    }
}

impl CardState {
    /// A blank chip: an MF and nothing else, in the creation state.
    pub fn blank() -> CardState {
        let mf_rules = AccessRules::uniform(Condition::NEVER)
            .with(Operation::AppendOrCreateDf, Condition::CHANNEL)
            .with(Operation::UpdateOrCreateEf, Condition::CHANNEL);
        let mf = Df::new(
            Fid::MF,
            None,
            mf_rules,
            DataObjectRules {
                get: Condition::ALWAYS,
                put: Condition::CHANNEL,
            },
        );
        CardState {
            life_cycle: LifeCycle::Creation,
            fs: FileSystem { mf },
            passwords: PasswordArea::default(),
            keys: KeyArea::default(),
            applications: Vec::new(),
            generation: 0,
        }
    }

    /// The UID, once EF.UID (`2F02` under the MF) holds its 8 bytes.
    pub fn uid(&self) -> Option<Uid> {
        match &self.fs.mf.child_ef(Fid::EF_UID)?.body {
            EfBody::Transparent(bytes) => Uid::try_from(bytes.as_slice()).ok(),
            EfBody::Records(_) => None,
        }
    }
}
