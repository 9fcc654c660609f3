//! The options of `fieldflow plot`.

use std::path::PathBuf;

/// `fieldflow plot`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Exit codes: 0 picture written, 1 runtime failure, 2 bad input (unreadable file, \
unknown channel, sample out of range, unwritable output); nothing is written on failure.")]
pub struct PlotOpts {
    /// What to draw.
    #[command(subcommand)]
    pub kind: PlotKind,
}

/// The kinds of picture.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PlotKind {
    /// Heatmaps of one channel (or the vorticity / speed) of a few samples of a data file.
    Fields(FieldsOpts),
    /// The sample-mean kinetic-energy spectrum E(k) of a data file, optionally against a reference.
    Spectrum(SpectrumOpts),
    /// Training (and validation) loss against step, from a run directory or its train_log.csv.
    Loss(LossOpts),
}

/// `fieldflow plot fields`.
#[derive(Debug, Clone, clap::Args)]
pub struct FieldsOpts {
    /// A data file (fieldflow's layout, PDEBench, FNO .mat v7.3).
    pub file: PathBuf,
    /// Samples to draw, comma-separated (default: the first 4), at most 16.
    #[arg(long, value_delimiter = ',', value_name = "I,J,...")]
    pub samples: Vec<usize>,
    /// A channel of the file, or `vorticity` / `speed` computed from channels u, v (default:
    /// vorticity when the file has u, v, else its first channel).
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
    /// Colour map: rdbu (diverging, symmetric around 0) or viridis (default: rdbu for fields
    /// taking both signs, viridis otherwise).
    #[arg(long, value_name = "MAP")]
    pub cmap: Option<String>,
    /// The PNG to write.
    #[arg(long, short, value_name = "OUT.png")]
    pub output: PathBuf,
}

/// `fieldflow plot spectrum`.
#[derive(Debug, Clone, clap::Args)]
pub struct SpectrumOpts {
    /// A data file.
    pub file: PathBuf,
    /// A second data file whose spectrum is drawn for comparison (its grid may differ), with a
    /// second panel of the per-shell ratio FILE / REF (log scale, the 0.8–1.25 band shaded).
    #[arg(long, value_name = "REF.h5")]
    pub reference: Option<PathBuf>,
    /// Average over the first N samples only (default: all).
    #[arg(long, value_name = "N")]
    pub max_samples: Option<usize>,
    /// The PNG to write.
    #[arg(long, short, value_name = "OUT.png")]
    pub output: PathBuf,
}

/// `fieldflow plot loss`.
#[derive(Debug, Clone, clap::Args)]
pub struct LossOpts {
    /// A training run directory (holding train_log.csv) or a training-log CSV file.
    pub run: PathBuf,
    /// The PNG to write.
    #[arg(long, short, value_name = "OUT.png")]
    pub output: PathBuf,
}
