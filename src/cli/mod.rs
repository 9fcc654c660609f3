//! Command-line options (clap derive), converted once into plain job descriptions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod check;
mod eval;
mod generate;
mod plot;
mod train;

pub use check::CheckOpts;
pub use eval::EvalOpts;
pub use generate::GenerateOpts;
pub use plot::{FieldsOpts, LossOpts, PlotKind, PlotOpts, SpectrumOpts};
pub use train::TrainOpts;

/// fieldflow: generate physical fields on grids with flow matching, with the physics enforced.
#[derive(Debug, Parser)]
#[command(name = "fieldflow", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalOpts,
}

/// Options shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Worker threads (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Where networks run: cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, global = true, value_enum, default_value_t = DeviceName::Cpu)]
    pub device: DeviceName,
}

/// Devices by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceName {
    /// burn's CPU backend (flex), with fieldflow's CPU inference engine for sampling.
    Cpu,
    /// The first CUDA GPU (a build with `--features cuda`).
    Cuda,
}

impl GlobalOpts {
    /// The burn device `--device` names.
    ///
    /// # Errors
    /// [`crate::error::BadInput`] for `cuda` in a build without the `cuda` feature.
    pub fn device(&self) -> Result<burn::tensor::Device, crate::error::BadInput> {
        match self.device {
            DeviceName::Cpu => Ok(burn::tensor::Device::default()),
            #[cfg(feature = "cuda")]
            DeviceName::Cuda => Ok(burn::tensor::Device::cuda(0usize)),
            #[cfg(not(feature = "cuda"))]
            DeviceName::Cuda => Err(crate::error::BadInput(
                "--device cuda: this fieldflow was built without CUDA; rebuild with `cargo build --release --features cuda`"
                    .into(),
            )),
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a data set (Navier–Stokes, Kolmogorov or Darcy) into an HDF5 file.
    Datagen(DatagenOpts),
    /// Print a file's layout, attributes and per-channel statistics.
    Info(InfoOpts),
    /// Join shard files written by `datagen --shard` into one file.
    Merge(MergeOpts),
    /// Convert a PDEBench or FNO `.mat` (v7.3) file into fieldflow's layout (+ XDMF sidecar).
    Import(ImportOpts),
    /// Check how well a file's fields obey their physics (divergence, Darcy residual, finiteness).
    Check(CheckOpts),
    /// Compare generated fields with a reference set: MMSE, SMSE, spectrum, density and constraint errors.
    Eval(EvalOpts),
    /// Train a flow-matching FNO on a data file (config-driven).
    Train(TrainOpts),
    /// Sample a trained model into a data file, optionally divergence-free (config-driven).
    Generate(GenerateOpts),
    /// Draw PNG plots: field heatmaps, energy spectra, training-loss curves.
    Plot(PlotOpts),
}

/// Options of every config-driven job.
#[derive(Debug, Clone, Args)]
pub struct JobOpts {
    /// The job's TOML config.
    #[arg(long, short, value_name = "FILE.toml")]
    pub config: PathBuf,
    /// Override a config key, e.g. `--set samples=8` or `--set ns2d.viscosity=1e-4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the effective config and exit.
    #[arg(long)]
    pub dry_run: bool,
}

/// `fieldflow datagen`.
#[derive(Debug, Clone, Args)]
pub struct DatagenOpts {
    /// Config and overrides.
    #[command(flatten)]
    pub job: JobOpts,
    /// Seed of the per-sample random streams (overrides `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output file (overrides `output.path`).
    #[arg(long, short, value_name = "FILE.h5")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Generate only shard `i` of `n` (0-based), for cluster job arrays; the output name gets
    /// `.shard-i-of-n` before its extension. Join the shards with `fieldflow merge`.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
}

/// `fieldflow info`.
#[derive(Debug, Clone, Args)]
pub struct InfoOpts {
    /// An HDF5 file (fieldflow's layout, PDEBench, FNO .mat v7.3).
    pub file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `fieldflow merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeOpts {
    /// The merged file.
    #[arg(long, short, value_name = "FILE.h5")]
    pub output: PathBuf,
    /// Shard files, in order.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// `fieldflow import`.
#[derive(Debug, Clone, Args)]
pub struct ImportOpts {
    /// The upstream file.
    pub input: PathBuf,
    /// The native file to write.
    #[arg(long, short, value_name = "FILE.h5")]
    pub output: PathBuf,
    /// Source format (default: detected from the dataset names): pdebench-darcy,
    /// pdebench-incomp-ns, pdebench-compressible, fno-ns-mat, fno-darcy-mat, native.
    #[arg(long)]
    pub format: Option<String>,
    /// Precision on disk: f32 or f64.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Import only the first N samples.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// gzip level 0-9.
    #[arg(long)]
    pub gzip: Option<u8>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}
