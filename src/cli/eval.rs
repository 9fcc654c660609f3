//! The options of `fieldflow eval`.

use std::path::PathBuf;

/// `fieldflow eval`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Exit codes: 0 success, 1 runtime failure, 2 bad input (unreadable file, channel \
mismatch between the files, different domain sizes, non-finite values).")]
pub struct EvalOpts {
    /// The generated set (any supported file: fieldflow's layout, PDEBench, FNO .mat v7.3).
    pub generated: PathBuf,
    /// The reference set to compare with.
    #[arg(long, short, value_name = "REF.h5")]
    pub reference: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Use only the first N samples of each file.
    #[arg(long, value_name = "N")]
    pub max_samples: Option<usize>,
    /// Compare only these channels (comma-separated names present in both files; default: all
    /// channels, which must then be the same in both files).
    #[arg(long, value_delimiter = ',', value_name = "u,v")]
    pub channels: Vec<String>,
    /// Histogram bins of the density MSE.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub bins: usize,
    /// Turbulence statistics: check the spectrum ratio on every resolved shell holding at least
    /// this fraction of the reference's kinetic energy.
    #[arg(long, default_value_t = 1e-8, value_name = "FRACTION")]
    pub min_energy: f64,
}
