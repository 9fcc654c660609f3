//! The options of `fieldflow check`.

use std::path::PathBuf;

/// `fieldflow check`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Exit codes: 0 all samples within --max-residual (or no limit given), \
1 runtime failure, 2 bad input (unreadable file, unknown flag, missing channels), \
3 some sample's residual exceeds --max-residual (non-finite samples always exceed it).")]
pub struct CheckOpts {
    /// A data file (fieldflow's layout, PDEBench, FNO .mat v7.3).
    pub file: PathBuf,
    /// Print JSON (summary and per-sample residuals) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The PDE, overriding the file's metadata: navier_stokes, ns2d, kolmogorov or darcy.
    #[arg(long)]
    pub pde: Option<String>,
    /// The constraint to check, overriding the PDE: divergence-free or darcy.
    #[arg(long)]
    pub constraint: Option<String>,
    /// Constant forcing f of the Darcy equation −∇·(a∇u) = f (default: the `[darcy]` forcing of
    /// the config stored in the file, piecewise if it has `forcing_right`; else 1).
    #[arg(long)]
    pub forcing: Option<f64>,
    /// Exit with code 3 if a sample's relative residual (divergence: ‖∇·u‖/‖∇u‖; Darcy:
    /// ‖A(a)u − f‖/‖f‖) exceeds X, or a sample holds non-finite values.
    #[arg(long, value_name = "X")]
    pub max_residual: Option<f64>,
    /// Also store the per-sample residuals and their summary in the file's `/checks/<check>`
    /// group (replacing an earlier report of the same check). Native fieldflow files only.
    #[arg(long)]
    pub write: bool,
}
