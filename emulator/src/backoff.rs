//! How long to wait before the next try to reach vpcd: doubling from 50 ms to at most 1 s.
//!
//! vpcd is local, so a try costs next to nothing; the cap keeps a card side that waits for
//! pcscd at most a second behind it, and the doubling keeps a log of failures short.

use std::time::Duration;

const FIRST_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(1);

/// The delays between tries, growing while they fail.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// A fresh policy: the first delay is the shortest.
    pub fn new() -> Self {
        Backoff { next: FIRST_DELAY }
    }

    /// Records a failed try; the delay to wait before the next one.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }

    /// Records a success: the next failure starts over from the shortest delay.
    pub fn succeeded(&mut self) {
        *self = Backoff::new();
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_starts_over_after_a_success() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.failed().as_millis() as u64)
            .collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_millis(50));
    }
}
