//! `viaduct`: the binary. Parses the command line, loads the static configuration, wires
//! providers → aggregator → compiler → entry points, and handles signals.

mod check;
mod cli;
mod context;
mod embedded;
mod healthcheck;
mod internal;
mod run;
mod static_load;

use std::process::ExitCode;

use cli::Command;

/// mimalloc rather than the system allocator: the request path allocates a few times per
/// request, and mimalloc's thread-local free lists make each allocation a few instructions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(args) {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("viaduct {}", env!("CARGO_PKG_VERSION"));
            println!("compatible with Traefik v3 configuration");
            ExitCode::SUCCESS
        }
        Command::Check(args) => check::run(&args),
        Command::Healthcheck(args) => healthcheck::run(&args),
        Command::Run(args) => match run::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("viaduct: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}
