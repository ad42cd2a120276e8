//! Live steps at replay time: the keys derived before the first command is sent, then each
//! step's round trips computed from the card's fresh answers (docs/transcript-format.md, *Live
//! steps*).
//!
//! PIV management key authentication (SP 800-73-4 part 2 §3.2.4, mutual): the card's witness
//! is deciphered with the key, a fresh challenge from the operating system's generator goes
//! with it, and the card's encipherment of the challenge is checked in constant time, so a card
//! that does not hold the key is found out even if it answers `9000`.

use std::fmt;

use rand::RngCore;
use rand::rngs::OsRng;
use vsc_core::applications::piv::management_algorithm_byte;
use vsc_core::crypto::MasterKey;
use vsc_core::security::BlockKey;
use vsc_core::transcript::{LiveKeyError, LiveStep, Step, Transcript};
use zeroize::Zeroizing;

use super::{CardLink, Exchange, LinkError};

/// What a replay computes live steps with.
#[derive(Clone, Copy, Default)]
pub struct LiveKeys<'a> {
    /// The issuer master key: the card's own management keys are derived from it.
    pub master: Option<&'a MasterKey>,
}

impl<'a> LiveKeys<'a> {
    /// Live steps computed from `master`.
    pub fn issuer(master: &'a MasterKey) -> LiveKeys<'a> {
        LiveKeys {
            master: Some(master),
        }
    }
}

impl fmt::Debug for LiveKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveKeys")
            .field("issuer_key", &self.master.is_some())
            .finish()
    }
}

/// How a live step failed on the card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveFailure {
    /// The link failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The card refused a command of the step (`6982`: the key is not the card's).
    #[error(
        "the card refused it\n  command   {}\n  received  {}",
        .0.shown_command(),
        .0.shown_response()
    )]
    Refused(Box<Exchange>),
    /// The card's answer is not the protocol's (`7C { 80 block }` or `7C { 82 block }`).
    #[error("the card's answer is not a GENERAL AUTHENTICATE template of one block")]
    Malformed,
    /// The card accepted the witness but its encipherment of the challenge is wrong: it does
    /// not hold the key (a card that answers `9000` to anything).
    #[error("the card's answer to the challenge is wrong: it does not hold the management key")]
    CardNotAuthenticated,
}

/// The key of each live step, in the order of the steps (`None` for the other steps), derived
/// before anything is sent. `Err` names the 0-based step whose key cannot be had.
pub(super) fn keys_of(
    transcript: &Transcript,
    keys: LiveKeys<'_>,
) -> Result<Vec<Option<BlockKey>>, (usize, LiveKeyError)> {
    let uid = transcript.header.uid.0;
    transcript
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| match step {
            Step::Live { live, .. } => live
                .key(keys.master, &uid)
                .map(Some)
                .map_err(|e| (index, e)),
            _ => Ok(None),
        })
        .collect()
}

/// Runs a live step with its key (data preparation's reference card runs it too).
pub fn run(
    link: &mut impl CardLink,
    live: &LiveStep,
    key: &BlockKey,
    response: &mut Vec<u8>,
) -> Result<(), LiveFailure> {
    let LiveStep::PivManagementKey { algorithm, .. } = live;
    let p1 = management_algorithm_byte(*algorithm);
    let n = algorithm.block_len();
    // The block lengths (8, 16) keep every length below 128: one-byte BER lengths.
    let n_byte = n as u8;

    let ask = [0x00, 0x87, p1, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00, 0x00];
    transmit(link, &ask, response)?;
    let encrypted_witness = template_block(response, 0x80, n)?;
    let witness = Zeroizing::new(
        key.decrypt_block(encrypted_witness)
            .map_err(|_| LiveFailure::Malformed)?,
    );

    let mut challenge = Zeroizing::new(vec![0; n]);
    OsRng.fill_bytes(&mut challenge);
    let mut answer = Zeroizing::new(Vec::with_capacity(10 + 2 * n));
    answer.extend_from_slice(&[0x00, 0x87, p1, 0x9B, 2 * n_byte + 6, 0x7C, 2 * n_byte + 4]);
    answer.extend_from_slice(&[0x80, n_byte]);
    answer.extend_from_slice(&witness);
    answer.extend_from_slice(&[0x81, n_byte]);
    answer.extend_from_slice(&challenge);
    answer.push(0x00);
    transmit(link, &answer, response)?;
    let card_answer = template_block(response, 0x82, n)?;
    match key.verify_encryption(&challenge, card_answer) {
        Ok(true) => Ok(()),
        _ => Err(LiveFailure::CardNotAuthenticated),
    }
}

fn transmit(
    link: &mut impl CardLink,
    command: &[u8],
    response: &mut Vec<u8>,
) -> Result<(), LiveFailure> {
    link.transmit(command, response)?;
    if response.is_empty() {
        return Err(LinkError::NoResponse.into());
    }
    if !response.ends_with(&[0x90, 0x00]) {
        // A plain context: the exchange's data is masked when shown.
        return Err(LiveFailure::Refused(Box::new(Exchange::new(
            command,
            response,
            vsc_core::transcript::Channel::Plain,
        ))));
    }
    Ok(())
}

/// The block in `7C { tag block } 90 00`.
fn template_block(response: &[u8], tag: u8, n: usize) -> Result<&[u8], LiveFailure> {
    match response {
        [0x7C, outer, inner_tag, len, rest @ ..]
            if usize::from(*outer) == n + 2
                && *inner_tag == tag
                && usize::from(*len) == n
                && rest.len() == n + 2 =>
        {
            Ok(&rest[..n])
        }
        _ => Err(LiveFailure::Malformed),
    }
}
