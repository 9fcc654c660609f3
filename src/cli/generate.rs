//! The options of `fieldflow generate`.

use std::path::PathBuf;

use super::JobOpts;

/// `fieldflow generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateOpts {
    /// Config and overrides.
    #[command(flatten)]
    pub job: JobOpts,
    /// Output file (overrides `output.path`).
    #[arg(long, short, value_name = "FILE.h5")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file (and its previews).
    #[arg(long)]
    pub force: bool,
    /// Seed of the source samples (overrides `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
}
