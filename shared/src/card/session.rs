//! What the card forgets at power-off and reset: the selected application and its session, the
//! current files, the security status, a pending challenge, a response waiting for GET RESPONSE
//! and a command chain in progress.

use zeroize::Zeroizing;

use crate::applications::AppSession;
use crate::fs::{DfPath, Fid};
use crate::sm::CardChannel;

/// The transient state of one card session.
#[derive(Debug)]
pub(crate) struct Session {
    /// The selected application with its session; `None` for the VSC file system.
    pub application: Option<SelectedApplication>,
    /// The current DF.
    pub df: DfPath,
    /// The current EF, a child of the current DF.
    pub ef: Option<Fid>,
    /// The current record of the current EF.
    pub record: Option<u8>,
    /// The user PIN was verified.
    pub user_pin: bool,
    /// The PUK was verified.
    pub puk: bool,
    /// Bit `k`: key `k` authenticated the terminal.
    pub authenticated_keys: u32,
    /// The challenge GET CHALLENGE gave, until EXTERNAL AUTHENTICATE uses it.
    pub challenge: Option<Challenge>,
    /// Response bytes waiting for GET RESPONSE.
    pub pending: Zeroizing<Vec<u8>>,
    /// A command chain being received.
    pub chain: Option<Chain>,
    /// The personalization channel, once the first protected command opened it.
    pub channel: Option<CardChannel>,
}

/// An application selected by its AID, and what it keeps until another selection or a reset.
#[derive(Debug)]
pub(crate) struct SelectedApplication {
    /// Its index among the card's applications.
    pub index: usize,
    /// Its volatile state.
    pub session: AppSession,
}

/// A challenge the card sent.
#[derive(Debug)]
pub(crate) struct Challenge {
    pub bytes: [u8; 16],
    pub len: usize,
}

/// The commands of a chain received so far.
#[derive(Debug)]
pub(crate) struct Chain {
    /// CLA (without the chaining bit), INS, P1, P2 of the chain.
    pub header: [u8; 4],
    /// The data of every command so far.
    pub data: Zeroizing<Vec<u8>>,
}

impl Session {
    pub fn new() -> Session {
        Session {
            application: None,
            df: DfPath::MF,
            ef: None,
            record: None,
            user_pin: false,
            puk: false,
            authenticated_keys: 0,
            challenge: None,
            pending: Zeroizing::new(Vec::new()),
            chain: None,
            channel: None,
        }
    }
}

impl Session {
    /// Forgets every verification and authentication (after a save failed, so that no command
    /// whose answer was an error leaves anything unlocked).
    pub fn forget_security(&mut self) {
        self.user_pin = false;
        self.puk = false;
        self.authenticated_keys = 0;
        self.challenge = None;
        self.pending.clear();
        if let Some(selected) = &mut self.application {
            selected.session.forget_security();
        }
    }
}
