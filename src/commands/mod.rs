//! One runner per subcommand, and the mapping of errors to exit codes.

pub mod check;
mod datagen;
pub mod eval;
pub mod generate;
mod import;
mod info;
mod merge;
pub mod plot;
mod progress;
pub mod train;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub use crate::error::BadInput;

/// A check whose residual exceeds the user's `--max-residual`: exit code 3, so that
/// `fieldflow check` can gate a workflow.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ResidualExceeded(pub String);

/// Creates the directory of a config-driven output file (`datagen`, `generate`: the shipped configs
/// write under `data/` and `generated/`, which a fresh clone does not have).
fn create_output_dir(path: &std::path::Path) -> Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| BadInput(format!("cannot create the output directory {}: {e}", parent.display())))?;
    }
    Ok(())
}

/// Runs the parsed command line.
///
/// # Errors
/// Whatever the subcommand reports, with context naming the file, key or flag.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(threads) = cli.global.threads {
        if threads == 0 {
            return Err(BadInput("--threads must be at least 1".into()).into());
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {threads} worker threads: {e}"))?;
    }
    match cli.command {
        Command::Datagen(opts) => datagen::run(&opts, &cli.global),
        Command::Info(opts) => info::run(&opts),
        Command::Merge(opts) => merge::run(&opts, &cli.global),
        Command::Import(opts) => import::run(&opts),
        Command::Check(opts) => check::run(&opts),
        Command::Eval(opts) => eval::run(&opts),
        Command::Train(opts) => train::run(&opts, &cli.global),
        Command::Generate(opts) => generate::run(&opts, &cli.global),
        Command::Plot(opts) => plot::run(&opts),
    }
}

/// 3 when a check's residual exceeded its limit, 2 when the error is the user's input at fault,
/// 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if error.chain().any(|e| e.is::<ResidualExceeded>()) {
        return 3;
    }
    let bad_input = error.chain().any(|e| {
        e.is::<BadInput>()
            || e.is::<crate::config::ConfigError>()
            || e.downcast_ref::<fieldflow_datasets::DatasetError>().is_some_and(|d| d.is_bad_input())
            || matches!(
                e.downcast_ref::<fieldflow_datasets::generate::GenerateError>(),
                Some(
                    fieldflow_datasets::generate::GenerateError::Parameters(_)
                        | fieldflow_datasets::generate::GenerateError::Shard { .. }
                )
            )
    });
    if bad_input { 2 } else { 1 }
}
