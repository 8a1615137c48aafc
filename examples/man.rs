//! Writes hookd's man page and shell completions, generated from the command line's definition
//! (`hookd::cli::args`), into a directory: `hookd.1` (with a page per command, `hookd-serve.1`
//! and so on), `hookd.bash`, `_hookd` (zsh) and `hookd.fish`. The Debian package installs them
//! (`config/debian/build.sh` runs this first):
//!
//!     cargo run --example man -- target/debian-conf/man

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_complete::Shell;

fn main() -> Result<(), String> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: man DIR")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = hookd::cli::args::Cli::command();
    cmd.build();
    pages(&cmd, &dir, "hookd")?;
    for (shell, file) in [
        (Shell::Bash, "hookd.bash"),
        (Shell::Zsh, "_hookd"),
        (Shell::Fish, "hookd.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, "hookd", &mut out);
        write(&dir.join(file), &out)?;
    }
    println!("wrote the man pages and completions to {}", dir.display());
    Ok(())
}

/// `name.1` for `cmd`, then one page per subcommand (`name-sub.1`), all the way down.
fn pages(cmd: &clap::Command, dir: &Path, name: &str) -> Result<(), String> {
    // clap takes names as `&'static str`: this runs once, at build time.
    let page = cmd
        .clone()
        .name(&*Box::leak(name.to_owned().into_boxed_str()));
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    write(&dir.join(format!("{name}.1")), &out)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        pages(sub, dir, &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
