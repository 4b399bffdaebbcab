//! The `sockworks-cert` binary: parses the command line and runs one command. Errors are
//! printed as `error: <cause>: <cause>...` on stderr with exit status 1 (clap's usage errors
//! exit with 2).

use clap::Parser;
use sockworks_cert::{cli::Cli, commands};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = commands::run(cli.command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
