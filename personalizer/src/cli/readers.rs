//! `readers`.

use clap::Args;
use vsc_personalizer::readers::{self, CardState};

use super::Outcome;
use super::common::JsonArg;

/// List the readers pcscd knows: their index (what --reader N means), whether a card is in,
/// its ATR, and for a VSC its life cycle and UID. Cards are left as they are.
#[derive(Debug, Args)]
pub struct ReadersArgs {
    #[command(flatten)]
    json: JsonArg,
}

pub fn run(args: ReadersArgs) -> anyhow::Result<Outcome> {
    let readers = readers::survey()?;
    if args.json.json {
        println!("{}", serde_json::to_string_pretty(&readers)?);
        return Ok(Outcome::Done);
    }
    for reader in &readers {
        let card = match reader.card {
            CardState::Present => {
                let mut parts = vec![format!(
                    "card, ATR {}",
                    reader.atr.as_deref().unwrap_or("?")
                )];
                if let Some(state) = reader.life_cycle {
                    parts.push(format!("VSC {state}"));
                }
                if let Some(uid) = reader.uid {
                    parts.push(format!("UID {uid}"));
                }
                parts.join(", ")
            }
            CardState::Mute => "card (mute: it does not answer)".into(),
            CardState::Empty => "no card".into(),
            CardState::Unknown => "state unknown".into(),
        };
        println!("{}: {}: {card}", reader.index, reader.name);
    }
    Ok(Outcome::Done)
}
