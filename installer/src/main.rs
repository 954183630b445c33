//! `toa-install`: see `toa-install --help`.

use clap::Parser;
use toa_install::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli::run(&cli).into()
}
