//! `completions SHELL` and the hidden `manpages --out DIR`, both from the clap definitions.

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use vsc_personalizer::files::{self, Mode, Overwrite};

use super::{Cli, Outcome};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// The folder to write `vsc-personalizer.1` and one page per command into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "vsc-personalizer",
        &mut std::io::stdout(),
    );
    Ok(Outcome::Done)
}

pub fn manpages(args: ManpagesArgs) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&args.out)?;
    let command = Cli::command();
    let mut written = 0;
    write_pages(&command, "vsc-personalizer", &args.out, &mut written)?;
    println!("{written} man pages written to {}", args.out.display());
    Ok(Outcome::Done)
}

/// The page of `command` (named `name`, e.g. `vsc-personalizer-store-status`) and of each of
/// its visible subcommands.
fn write_pages(
    command: &clap::Command,
    name: &str,
    out: &std::path::Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    let page = command.clone().name(name.to_string());
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page).render(&mut bytes)?;
    files::write_new(
        &out.join(format!("{name}.1")),
        &bytes,
        Mode::Public,
        Overwrite::Replace,
    )?;
    *written += 1;
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), out, written)?;
    }
    Ok(())
}
