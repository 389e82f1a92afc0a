//! The `neardup` command line: parses arguments, builds a [`neardup::Dedup`], and writes what its
//! sink receives to files. All deduplication logic lives in the library.

mod args;
mod commands;
mod kept;
mod mirror;
mod pages;
mod sink;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use args::Cli;
use commands::{Status, exit_code, hint, is_broken_pipe, run};

/// On SIGINT, SIGTERM or SIGHUP: remove the outputs not committed yet, then exit with 128 + the
/// signal's number (130 for Ctrl-C, 143 for SIGTERM).
fn remove_outputs_on_signal() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the signal handler")?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let removed = neardup::output::remove_uncommitted();
            eprintln!(
                "neardup: interrupted (signal {signal}); {removed} uncommitted output files removed"
            );
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

fn main() -> ExitCode {
    // A bad setting is exit code 1 (clap's own is 2, which here means an unreadable input);
    // --help and --version print to stdout and exit 0.
    let cli = match Cli::try_parse().and_then(Cli::validated) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.exit_code() {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            };
        }
    };
    let result = remove_outputs_on_signal().and_then(|()| run(cli));
    match result {
        Ok(Status::Complete) => ExitCode::SUCCESS,
        Ok(Status::Incomplete) => ExitCode::from(3),
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("neardup: {error:#}");
            if let Some(hint) = hint(&error) {
                eprintln!("neardup: hint: {hint}");
            }
            ExitCode::from(exit_code(&error))
        }
    }
}
