//! `replay`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use vsc_core::crypto::MasterKey;
use vsc_core::transcript::{self, Channel, Header, Kind, Transcript};
use vsc_personalizer::readers;
use vsc_personalizer::replay::{
    self, CardLink, Input, PcscLink, Unchecked, context_of, describe_response,
};
use vsc_personalizer::store::sealing;
use vsc_personalizer::store::{Access, StoreError, StoreErrorKind, Uid};

use super::Outcome;
use super::common::{JsonArg, StoreArgs, TrustArgs, load_key, uid};
use super::exit::usage;
use super::ui::{Progress, Verbosity, json_line};

/// Replay a transcript (or a pcsc-tools scriptor script) onto the card in a reader.
///
/// A transcript (FILE, or the stored one of --uid) must be signed by a trusted key (see
/// --trusted-key). The card's ATR and UID are checked against it first; then each command is
/// sent byte for byte and its response compared. The first mismatch stops the replay with the
/// step, its comment, the command and the expected and received responses (secrets masked,
/// status words decoded).
///
/// A scriptor script is read only with --scriptor (or a .scr name). Where its header comments
/// (as `export scriptor` writes them) name a card, the card's ATR and UID are checked; any
/// response but 9000 or 61xx stops it, unless --unchecked.
#[derive(Debug, Args)]
#[command(long_about)]
pub struct ReplayArgs {
    /// The transcript (.vsct) or scriptor script.
    #[arg(
        value_name = "FILE",
        required_unless_present = "uid",
        conflicts_with = "uid"
    )]
    file: Option<PathBuf>,

    /// Replay the stored personalization transcript of this card instead of a file.
    #[arg(long, value_name = "UID", value_parser = uid)]
    uid: Option<Uid>,

    #[command(flatten)]
    store: StoreArgs,

    /// The reader: its exact name, its index (see `readers`), or a part of its name only it
    /// has; default: the only reader with a card.
    #[arg(long, value_name = "READER")]
    reader: Option<String>,

    /// FILE is a pcsc-tools scriptor script.
    #[arg(long)]
    scriptor: bool,

    /// For a scriptor script: go on whatever the card answers.
    #[arg(long)]
    unchecked: bool,

    /// The issuer key file: to open a sealed stored transcript, to trust its own
    /// signatures, and to derive the card's own keys for live steps.
    #[arg(long, value_name = "FILE", env = "VSC_KEY_FILE")]
    key_file: Option<PathBuf>,

    #[command(flatten)]
    trust: TrustArgs,

    /// Print what would be sent, send nothing.
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    json: JsonArg,
}

pub fn run(args: ReplayArgs, verbosity: Verbosity) -> anyhow::Result<Outcome> {
    let key = args.key_file.as_deref().map(load_key).transpose()?;
    let master = key.as_ref().map(|k| k.master_key());
    let (input, name) = match (&args.file, args.uid) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let input = Input::read(&text, Some(path), args.scriptor)
                .with_context(|| path.display().to_string())?;
            (input, path.display().to_string())
        }
        (None, Some(uid)) => {
            let mut store = args.store.open(Access::Existing, verbosity)?.store;
            let stored = store
                .card(uid)?
                .ok_or_else(|| StoreError::new(store.location(), StoreErrorKind::NotFound(uid)))?;
            let text = sealing::open(&stored.card.perso, Kind::Personalization, uid, master)?;
            let input = Input::read(text.as_str(), None, false)?;
            (input, format!("the stored transcript of {uid}"))
        }
        (None, None) => return Err(usage("give a FILE or --uid")),
    };
    if args.unchecked && !matches!(input, Input::Script(_)) {
        return Err(usage(
            "--unchecked is for scriptor scripts only: a transcript checks every response",
        ));
    }
    let (transcript, guard, unchecked) = match input {
        Input::Transcript(document) => {
            let trust = args.trust.trust(master)?;
            match trust.check(&document).with_context(|| name.clone())? {
                Some(key) => tracing::info!(%key, "the transcript's signature verifies"),
                None => eprintln!(
                    "warning: {name} is not signed: replayed only because of --allow-unsigned"
                ),
            }
            (document.transcript, None, Unchecked::StopOnError)
        }
        Input::Script(script) => {
            let unchecked = if args.unchecked {
                Unchecked::AcceptAll
            } else {
                Unchecked::StopOnError
            };
            let header = session_header(script.header.as_ref().map(|h| h.channel))?;
            (
                Transcript {
                    header,
                    steps: script.steps,
                },
                Some(script.header),
                unchecked,
            )
        }
    };
    let json = args.json.json;
    if args.dry_run {
        print_dry_run(&transcript, master, json);
        return Ok(Outcome::Done);
    }
    let context = pcsc::Context::establish(pcsc::Scope::User).context("cannot reach pcscd")?;
    let reader = readers::select_one(&context, args.reader.as_deref())?;
    let reader_name = reader.to_string_lossy().into_owned();
    let mut card = replay::connect_exclusive(&context, &reader)?;
    let mut link = PcscLink::begin(&mut card)?;
    let mut transcript = transcript;
    let uid = match &guard {
        None => {
            replay::check_card(&mut link, &transcript.header)?;
            Some(transcript.header.uid)
        }
        // A script that names its card: the same checks as a transcript's.
        Some(Some(header)) => {
            let named = Header {
                kind: header.kind,
                uid: header.uid,
                atr: header.atr.clone(),
                profile: None,
                channel: header.channel,
                extensions: Vec::new(),
            };
            replay::check_card(&mut link, &named)?;
            transcript.header.atr = header.atr.clone();
            transcript.header.uid = header.uid;
            (header.kind != Kind::PreInitialization).then_some(header.uid)
        }
        // A script from elsewhere names no card: it runs on the card as it is.
        Some(None) => {
            transcript.header.atr = transcript::Atr::new(link.atr()?)?;
            None
        }
    };
    let progress = Progress::new(
        Some(transcript.steps.len() as u64),
        "steps",
        "replay",
        verbosity,
        json,
    );
    let context_ = context_of(transcript.header.channel);
    let scripted = guard.is_some();
    let keys = replay::LiveKeys { master };
    let result = replay::replay_live(
        &mut link,
        &transcript,
        unchecked,
        keys,
        |event| match event {
            replay::Event::Step { step, comment, .. } => {
                progress.update(step as u64, Some(transcript.steps.len() as u64), "");
                if json {
                    json_line(&json!({"event": "step", "step": step, "comment": comment}));
                } else if scripted && let Some(comment) = comment {
                    progress.line(&format!("# {comment}"));
                }
            }
            replay::Event::Unchecked {
                step,
                command,
                response,
            } => {
                let command = vsc_core::disclosure::masked_command(command, context_);
                let response = describe_response(
                    transcript
                        .steps
                        .get(step - 1)
                        .and_then(|s| match s {
                            transcript::Step::Command { command, .. } => Some(command.as_bytes()),
                            _ => None,
                        })
                        .unwrap_or_default(),
                    response,
                    context_,
                );
                if json {
                    json_line(
                        &json!({"event": "response", "step": step, "command": command, "response": response}),
                    );
                } else {
                    println!("> {command}\n< {response}");
                }
            }
        },
    );
    progress.finish();
    if let Err(error) = result {
        if json {
            json_line(
                &json!({"event": "failed", "step": error.step(), "error": error.to_string()}),
            );
        }
        return Err(error).with_context(|| format!("replaying {name} in {reader_name}"));
    }
    link.end()?;
    let uid_text = uid
        .map(|u| u.to_string())
        .unwrap_or_else(|| "(not checked)".into());
    if json {
        json_line(&json!({
            "event": "done",
            "steps": transcript.steps.len(),
            "uid": uid.map(|u| u.to_string()),
            "reader": reader_name,
        }));
    } else {
        println!(
            "replayed {} steps onto card {uid_text} in {reader_name}",
            transcript.steps.len()
        );
    }
    Ok(Outcome::Done)
}

fn session_header(channel: Option<Channel>) -> anyhow::Result<Header> {
    Ok(Header {
        kind: Kind::Session,
        uid: Uid::default(),
        // Replaced by the card's (or the script header's) ATR before the replay.
        atr: transcript::Atr::new(vsc_core::atr::atr(0x01))?,
        profile: None,
        channel: channel.unwrap_or(Channel::Plain),
        extensions: Vec::new(),
    })
}

fn print_dry_run(transcript: &Transcript, master: Option<&MasterKey>, json: bool) {
    let context = context_of(transcript.header.channel);
    for (i, step) in transcript.steps.iter().enumerate() {
        match step {
            transcript::Step::Command {
                comment,
                command,
                expect,
            } => {
                let comment = comment.as_ref().map(|c| c.as_str()).unwrap_or("");
                let shown = vsc_core::disclosure::masked_command(command.as_bytes(), context);
                if json {
                    json_line(
                        &json!({"step": i + 1, "comment": comment, "command": shown, "expect": expect.to_string()}),
                    );
                } else {
                    println!("{:>4}  {comment}\n      > {shown}\n      < {expect}", i + 1);
                }
            }
            transcript::Step::Live { comment, live } => {
                let comment = comment.as_ref().map(|c| c.as_str()).unwrap_or("");
                // Whether this replay could compute the step: the key derived and checked, its
                // value never shown.
                let key = match live.key(master, &transcript.header.uid.0) {
                    Ok(_) => "key available".to_string(),
                    Err(error) => error.to_string(),
                };
                if json {
                    json_line(&json!({
                        "step": i + 1,
                        "comment": comment,
                        "live": live.describe(),
                        "key": key,
                    }));
                } else {
                    println!(
                        "{:>4}  {comment}\n      live: {} (2 round trips, computed at replay; {key})",
                        i + 1,
                        live.describe()
                    );
                }
            }
            transcript::Step::Reset { kind, .. } => {
                if json {
                    json_line(&json!({"step": i + 1, "reset": kind.label()}));
                } else {
                    println!("{:>4}  reset {}", i + 1, kind.label());
                }
            }
        }
    }
}
