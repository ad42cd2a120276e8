//! `--record FILE`: the session written as a transcript (kind `session`, docs/transcript-format.md)
//! as it happens, one step per APDU, without vpcd's GET ATR polls.
//!
//! A recording is a clear file, so it masks what the disclosure rule
//! ([`vsc_core::disclosure`]) masks: command data becomes zero bytes of the same length and
//! response data `?` nibbles. What is shown: data that addresses something, writes into and
//! reads from public data, public answers, and genuine secure messaging (already encrypted).
//! Status words are always exact.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use vsc_core::apdu::Command;
use vsc_core::card::{Card, LifeCycle};
use vsc_core::disclosure::{self, Disclosure};
use vsc_core::transcript::{
    Atr, Channel, CommandApdu, Expectation, Header, Kind, ResetKind, Step, TranscriptWriter,
};

/// A session being recorded.
pub struct Recorder {
    writer: Option<TranscriptWriter<BufWriter<File>>>,
    /// A reset seen since the last APDU, written before the next one.
    pending_reset: Option<ResetKind>,
    /// Whether an APDU was recorded yet (resets before the first one are the start itself).
    started: bool,
}

impl Recorder {
    /// Starts a recording of `card` at `path` (replacing what is there).
    pub fn create(path: &Path, card: &Card) -> io::Result<Recorder> {
        let invalid =
            |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        let state = card.state();
        let header = Header {
            kind: Kind::Session,
            uid: state.uid().unwrap_or_default(),
            atr: Atr::new(card.atr()).map_err(|e| invalid(&e))?,
            profile: None,
            channel: if state.life_cycle == LifeCycle::Initialisation {
                Channel::SecureMessaging
            } else {
                Channel::Plain
            },
            extensions: Vec::new(),
        };
        let file = BufWriter::new(File::create(path)?);
        let writer = TranscriptWriter::new(file, &header).map_err(|e| invalid(&e))?;
        Ok(Recorder {
            writer: Some(writer),
            pending_reset: None,
            started: false,
        })
    }

    /// Records one exchange; `context` is what the card knows of it
    /// ([`vsc_core::card::Card::disclosure_context`]).
    pub fn exchange(&mut self, command: &[u8], response: &[u8], context: disclosure::Context) {
        if let Some(kind) = self.pending_reset.take()
            && self.started
        {
            self.write(&Step::Reset {
                comment: None,
                kind,
            });
        }
        self.started = true;
        let Ok(parsed) = Command::parse(command) else {
            // Malformed commands cannot be transcript steps; they are in the trace only.
            tracing::debug!(
                "not recorded: a malformed command of {} bytes",
                command.len()
            );
            return;
        };
        let secrets = disclosure::command_data(&parsed, context) == Disclosure::Mask;
        let zeros = vec![0; parsed.data.len()];
        let recorded = if secrets {
            Command {
                data: &zeros,
                ..parsed
            }
        } else {
            parsed
        };
        let Ok(command) = CommandApdu::from_command(&recorded) else {
            return;
        };
        let mut care = vec![0xFF; response.len()];
        if disclosure::response_data(&parsed, context) == Disclosure::Mask {
            let data_len = response.len().saturating_sub(2);
            care[..data_len].fill(0);
        }
        let Ok(expect) = Expectation::masked(response, &care) else {
            return;
        };
        self.write(&Step::Command {
            comment: None,
            command,
            expect,
        });
    }

    /// Notes a reset (cold for a power-on), written before the next APDU.
    pub fn reset(&mut self, cold: bool) {
        let kind = if cold {
            ResetKind::Cold
        } else {
            ResetKind::Warm
        };
        // A power-on after a warm reset is still one cold reset.
        if self.pending_reset != Some(ResetKind::Cold) {
            self.pending_reset = Some(kind);
        }
    }

    /// Writes the digest trailer; returns how many steps were recorded.
    pub fn finish(mut self) -> io::Result<usize> {
        let Some(writer) = self.writer.take() else {
            return Err(io::Error::other(
                "the recording stopped after a write error",
            ));
        };
        let steps = writer.steps_written();
        let (file, _) = writer.finish().map_err(io::Error::other)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(steps)
    }

    fn write(&mut self, step: &Step) {
        let Some(writer) = &mut self.writer else {
            return;
        };
        let result = writer
            .write_step(step)
            .map_err(io::Error::other)
            .and_then(|()| writer.flush());
        if let Err(error) = result {
            tracing::error!("recording stopped: {error}");
            self.writer = None;
        }
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("recording", &self.writer.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsc_core::transcript::Transcript;

    fn transmit(card: &mut Card, recorder: &mut Recorder, hex: &str) {
        let command = hex::decode(hex).unwrap();
        let response = card.transmit(&command);
        recorder.exchange(&command, &response, card.disclosure_context());
    }

    #[test]
    fn a_session_is_recorded_with_secrets_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.vsct");
        let mut card = vsc_core::sample::card();
        let mut recorder = Recorder::create(&path, &card).unwrap();
        recorder.reset(true);
        transmit(&mut card, &mut recorder, "00A4080C0450005001");
        transmit(&mut card, &mut recorder, "00B0000010");
        transmit(&mut card, &mut recorder, "0020000108313233343536FFFF");
        recorder.reset(false);
        transmit(&mut card, &mut recorder, "0020000108313233343536FFFF");
        transmit(&mut card, &mut recorder, "00A4080C0460006001");
        transmit(&mut card, &mut recorder, "00B0000004");
        transmit(&mut card, &mut recorder, "0084000008");
        assert_eq!(recorder.finish().unwrap(), 8);

        let text = std::fs::read_to_string(&path).unwrap();
        let transcript = Transcript::parse(&text).unwrap();
        assert_eq!(transcript.header.kind, Kind::Session);
        assert_eq!(
            transcript.steps.len(),
            8,
            "7 APDUs and one reset, none before the first APDU"
        );
        assert!(
            text.contains(&hex::encode_upper("ERIKA MUSTERMANN")),
            "public data as it was"
        );
        assert!(!text.contains("313233343536"), "no PIN");
        assert!(
            !text.contains(&hex::encode_upper("Heid")),
            "no private data"
        );
        assert!(text.contains("> 00200001080000000000000000\n< 9000"));
        assert!(
            text.contains("< ????????9000"),
            "the private read is masked"
        );
        assert!(
            text.contains("< ????????????????9000"),
            "the challenge is masked"
        );
    }

    #[test]
    fn refused_secure_messaging_and_odd_verify_never_record_the_pin() {
        // Issue 9, defect 5: an SM class on an operational card (6985) and the odd VERIFY INS
        // (6D00) carried the PIN in clear into the recording.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.vsct");
        let mut card = vsc_core::sample::card();
        let mut recorder = Recorder::create(&path, &card).unwrap();
        let sent = [
            "0C20000108313233343536FFFF",
            "0820000108313233343536FFFF",
            "0021000108313233343536FFFF",
            "1020000108313233343536FFFF",
        ];
        for hex in sent {
            transmit(&mut card, &mut recorder, hex);
        }
        recorder.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("313233343536"),
            "a PIN in the recording:\n{text}"
        );
        assert!(
            text.contains("> 0C200001080000000000000000\n< 6985"),
            "{text}"
        );
        assert!(
            text.contains("> 00210001080000000000000000\n< 6D00"),
            "{text}"
        );
    }

    #[test]
    fn an_openpgp_session_is_recorded_with_its_secrets_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.vsct");
        let mut card = vsc_core::sample::openpgp_token([1, 2, 3, 4, 5, 6, 7, 8]);
        let mut recorder = Recorder::create(&path, &card).unwrap();
        for hex in [
            "00A4040006D27600012401",
            "00200083083132333435363738",
            "00DA005B0548656C6C6F",
            "00DA00D3083837363534333231",
            "00DA00C10A162B06010401DA470F01",
            "0047800002B60000",
            "00CA005B00",
            "0020008106313233343536",
            "002A9E9A04AABBCCDD00",
        ] {
            transmit(&mut card, &mut recorder, hex);
        }
        recorder.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for secret in [
            "3132333435363738",
            "313233343536",
            "3837363534333231",
            "AABBCCDD",
        ] {
            assert!(!text.contains(secret), "{secret} in the recording:\n{text}");
        }
        assert!(
            text.contains("> 00DA005B0548656C6C6F"),
            "public cardholder data: {text}"
        );
        assert!(text.contains("< 48656C6C6F9000"), "{text}");
        assert!(text.contains("< 7F4922862"), "the public key: {text}");
        assert!(
            text.contains("> 00DA00D3080000000000000000\n< 9000"),
            "{text}"
        );
    }
}
