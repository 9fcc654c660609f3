//! The `fieldflow` command-line program: parse, run, exit with 0 (success), 1 (runtime failure)
//! or 2 (bad input: usage, config, data).

use clap::Parser;

fn main() {
    let cli = fieldflow::cli::Cli::parse();
    let code = match fieldflow::commands::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e:#}");
            fieldflow::commands::exit_code(&e)
        }
    };
    std::process::exit(code);
}
