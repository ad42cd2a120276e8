//! Cards served in the test process through `vsc-emulator`'s library API.

use std::thread::JoinHandle;

use tokio::sync::oneshot;
use vsc_emulator::{Endpoint, ServeError, VirtualCard, serve_slots};

use crate::{HarnessError, Result};

/// Cards being served in slots on a thread of the test process; stopped on drop.
#[derive(Debug)]
pub struct CardSide<C> {
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::result::Result<Vec<C>, ServeError>>>,
}

impl<C: VirtualCard + Send + 'static> CardSide<C> {
    /// Starts serving each card at its endpoint (see [`vsc_emulator::serve_slots`]).
    pub fn start(slots: Vec<(Endpoint, C)>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(HarnessError::io("starting a runtime for the card side"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = std::thread::Builder::new()
            .name("card-side".into())
            .spawn(move || {
                runtime.block_on(serve_slots(slots, async {
                    let _ = stopped.await;
                }))
            })
            .map_err(HarnessError::io("starting the card side's thread"))?;
        Ok(CardSide {
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// Stops serving and hands the cards back.
    pub fn stop(mut self) -> Result<Vec<C>> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Vec<C>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(server) = self.server.take() else {
            return Ok(Vec::new());
        };
        match server.join() {
            Ok(Ok(cards)) => Ok(cards),
            Ok(Err(error)) => Err(HarnessError::Failed {
                what: "serving the cards".into(),
                detail: error.to_string(),
            }),
            Err(_) => Err(HarnessError::Failed {
                what: "serving the cards".into(),
                detail: "the card side's thread panicked".into(),
            }),
        }
    }
}

impl<C> Drop for CardSide<C> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}
