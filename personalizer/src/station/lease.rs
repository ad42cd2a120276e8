//! Keeping claims: one thread per station, on its own store connection, renews the lease of
//! every card a reader task is working on (every third of the lease), and each task checks its
//! claim before every command it sends ([`LeasedLink`]). A claim is lost when another station
//! took it over, or when no renewal got through for the lease (the store or the network is
//! gone, so another station may take the card once the lease ends): the task then stops before
//! its next write, and the card is left to whoever holds it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vsc_core::transcript::ResetKind;

use crate::replay::{CardLink, LinkError};
use crate::store::{Store, Uid};

/// How often the keeper looks at its claims and at the stop flag.
const TICK: Duration = Duration::from_millis(50);

/// Why a claim is no longer this station's.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum LeaseLost {
    /// Another station holds the card now.
    #[error("the claim was taken over by another station")]
    TakenOver,
    /// No renewal reached the store for the whole lease: another station may hold the card.
    #[error("the claim's lease ran out: no renewal reached the store for {0:.1} s")]
    RanOut(f64),
}

/// A claim being kept.
#[derive(Debug)]
struct Held {
    /// Until when the claim is surely this station's (local clock).
    valid_until: Instant,
    /// When a renewal last got through (or the claim was made).
    renewed: Instant,
    lost: Option<LeaseLost>,
}

/// The claims in progress, shared by the keeper and the reader tasks.
#[derive(Debug)]
pub(super) struct Claims {
    station: String,
    lease: Duration,
    held: Mutex<HashMap<Uid, Held>>,
}

impl Claims {
    pub(super) fn new(station: &str, lease: Duration) -> Claims {
        Claims {
            station: station.to_string(),
            lease,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The margin kept before a lease's end: the store's clock and this machine's may run at
    /// slightly different rates.
    fn margin(&self) -> Duration {
        (self.lease / 10).min(Duration::from_secs(1))
    }

    /// Starts keeping the claim on `uid`, granted by a request sent at `requested` (the lease
    /// began after it on the store's clock).
    pub(super) fn hold(self: &Arc<Claims>, uid: Uid, requested: Instant) -> ClaimGuard {
        let valid_until = requested + self.lease.saturating_sub(self.margin());
        self.lock().insert(
            uid,
            Held {
                valid_until,
                renewed: requested,
                lost: None,
            },
        );
        ClaimGuard {
            claims: Arc::clone(self),
            uid,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uid, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renews every claim due, on `store`, until `stop` (set it, then unpark this thread: it
    /// wakes at once).
    pub(super) fn keep(&self, store: &mut dyn Store, stop: &AtomicBool) {
        let every = self.lease / 3;
        while !stop.load(Ordering::Relaxed) {
            let due: Vec<Uid> = self
                .lock()
                .iter()
                .filter(|(_, held)| held.lost.is_none() && held.renewed.elapsed() >= every)
                .map(|(uid, _)| *uid)
                .collect();
            for uid in due {
                let sent = Instant::now();
                let renewed = store.renew(uid, &self.station, self.lease);
                let mut held = self.lock();
                let Some(entry) = held.get_mut(&uid) else {
                    continue;
                };
                match renewed {
                    Ok(true) => {
                        entry.renewed = sent;
                        entry.valid_until = sent + self.lease.saturating_sub(self.margin());
                    }
                    Ok(false) => entry.lost = Some(LeaseLost::TakenOver),
                    Err(error) => {
                        // Tried again at the next tick; the claim runs out if none gets
                        // through.
                        tracing::warn!(%uid, %error, "the claim's lease could not be renewed");
                    }
                }
            }
            std::thread::park_timeout(TICK);
        }
    }
}

/// A task's claim on one card, kept while it lives.
#[derive(Debug)]
pub(super) struct ClaimGuard {
    claims: Arc<Claims>,
    uid: Uid,
}

impl ClaimGuard {
    /// Whether the claim is still this station's for sure.
    pub(super) fn check(&self) -> Result<(), LeaseLost> {
        let mut held = self.claims.lock();
        let Some(entry) = held.get_mut(&self.uid) else {
            return Err(LeaseLost::TakenOver);
        };
        if let Some(lost) = entry.lost {
            return Err(lost);
        }
        if Instant::now() >= entry.valid_until {
            let lost = LeaseLost::RanOut(entry.renewed.elapsed().as_secs_f64());
            entry.lost = Some(lost);
            return Err(lost);
        }
        Ok(())
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        self.claims.lock().remove(&self.uid);
    }
}

/// A card link that sends nothing once the claim is lost: the command is refused before it
/// reaches the card (as a cancelled PC/SC call; the attempt then says why).
pub(super) struct LeasedLink<'a, L> {
    pub(super) link: &'a mut L,
    pub(super) guard: &'a ClaimGuard,
}

impl<L: CardLink> CardLink for LeasedLink<'_, L> {
    fn atr(&mut self) -> Result<Vec<u8>, LinkError> {
        self.link.atr()
    }

    fn transmit(&mut self, command: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError> {
        if self.guard.check().is_err() {
            return Err(LinkError::Pcsc(pcsc::Error::Cancelled));
        }
        self.link.transmit(command, response)
    }

    fn reset(&mut self, kind: ResetKind) -> Result<(), LinkError> {
        self.link.reset(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_runs_out_without_renewals_and_is_then_lost_for_good() {
        let claims = Arc::new(Claims::new("s", Duration::from_millis(200)));
        let guard = claims.hold(Uid([1; 8]), Instant::now());
        assert_eq!(guard.check(), Ok(()));
        std::thread::sleep(Duration::from_millis(200));
        assert!(matches!(guard.check(), Err(LeaseLost::RanOut(_))));
        assert!(guard.check().is_err(), "lost stays lost");
        drop(guard);
        assert!(claims.lock().is_empty());
    }

    #[test]
    fn a_link_sends_nothing_once_the_claim_is_lost() {
        struct Counting(usize);
        impl CardLink for Counting {
            fn atr(&mut self) -> Result<Vec<u8>, LinkError> {
                Ok(vec![0x3B, 0])
            }
            fn transmit(&mut self, _: &[u8], response: &mut Vec<u8>) -> Result<(), LinkError> {
                self.0 += 1;
                response.clear();
                response.extend_from_slice(&[0x90, 0]);
                Ok(())
            }
            fn reset(&mut self, _: ResetKind) -> Result<(), LinkError> {
                Ok(())
            }
        }
        let claims = Arc::new(Claims::new("s", Duration::from_secs(60)));
        let guard = claims.hold(Uid([1; 8]), Instant::now());
        let mut card = Counting(0);
        {
            let mut link = LeasedLink {
                link: &mut card,
                guard: &guard,
            };
            let mut response = Vec::new();
            link.transmit(&[0, 0xA4, 0, 0], &mut response).unwrap();
            claims.lock().get_mut(&Uid([1; 8])).unwrap().lost = Some(LeaseLost::TakenOver);
            assert!(link.transmit(&[0, 0xA4, 0, 0], &mut response).is_err());
        }
        assert_eq!(card.0, 1, "the second command never reached the card");
    }
}
