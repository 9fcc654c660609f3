//! The options of `fieldflow train`.

use super::JobOpts;

/// `fieldflow train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainOpts {
    /// Config and overrides.
    #[command(flatten)]
    pub job: JobOpts,
    /// Start over: delete the run directory's checkpoints, log and normalisation first.
    #[arg(long)]
    pub force: bool,
    /// Continue from the run directory's newest checkpoint (`--resume false`: refuse a run
    /// directory that holds checkpoints).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub resume: bool,
    /// Seed of batches, noise and times (overrides `train.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
}
