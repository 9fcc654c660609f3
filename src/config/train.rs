//! The `fieldflow train` job: which data file, which FNO, which source measure, the training
//! options ([`TrainConfig`], embedded as `[train]`, with PBFM's residual loss in `[train.pbfm]`)
//! and the run directory.
//!
//! The model learns the flow-matching velocity `v_θ(x_t, t)` carrying the source measure `p`
//! (`t = 0`) to the per-channel standardised data `(x − μ_c)/s_c` (`t = 1`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Source, out_of_range};
use crate::train::{Snapshots, TrainConfig};

/// The `[data]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A native HDF5 file written by `fieldflow datagen` (or `import`).
    pub path: PathBuf,
    /// Fraction of the samples used for training (the first ones); the rest validate.
    #[serde(default = "default_train_fraction")]
    pub train_fraction: f64,
    /// Which stored fields of each sample train: `last` (`/fields`) or `all` (every snapshot of
    /// `/trajectories`; the split into training and validation is still by sample, so no
    /// trajectory is in both).
    #[serde(default)]
    pub snapshots: Snapshots,
    /// Subtract the training set's pointwise mean field before standardising and add it back
    /// when sampling (for flows whose statistics are not translation invariant, such as forced
    /// Kolmogorov flow: an FNO on a stationary source cannot place the mean profile).
    #[serde(default)]
    pub mean_field: bool,
}

fn default_train_fraction() -> f64 {
    0.9
}

/// The `[model]` section: the FNO's size (channels come from the data file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Hidden channels.
    pub width: usize,
    /// Kept Fourier modes per direction.
    pub modes: usize,
    /// Fourier layers.
    pub layers: usize,
    /// Dimension of the time embedding.
    pub time_embedding_dim: usize,
    /// Hidden channels of the output projection.
    pub projection_width: usize,
    /// Seed of the initial weights.
    pub seed: u64,
    /// End the network with a Leray projection, so that its velocity is divergence-free (needs
    /// velocity data, channels `u`, `v`, on a periodic grid).
    pub leray: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { width: 32, modes: 12, layers: 4, time_embedding_dim: 64, projection_width: 128, seed: 0, leray: false }
    }
}

pub use crate::noise::{NoiseConfig, NoiseKind};

/// The `[output]` section of a training job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainOutputConfig {
    /// Run directory: checkpoints, `train_log.csv`, `normalization.json`.
    pub run_dir: PathBuf,
}

/// A `train` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainJobConfig {
    /// The data.
    pub data: DataConfig,
    /// The network.
    #[serde(default)]
    pub model: ModelConfig,
    /// The source measure.
    #[serde(default)]
    pub noise: NoiseConfig,
    /// The training options.
    #[serde(default)]
    pub train: TrainConfig,
    /// Where the run goes.
    pub output: TrainOutputConfig,
}

impl TrainJobConfig {
    /// Checks ranges (the `[train]` keys are checked by [`TrainConfig::validate`] too).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] / [`ConfigError::InvalidValue`] naming the key.
    pub fn validate(&self, source: &Source) -> Result<(), ConfigError> {
        let f = self.data.train_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return Err(out_of_range(source, "data.train_fraction", f, "must be in (0, 1]"));
        }
        for (key, v) in [
            ("model.width", self.model.width),
            ("model.modes", self.model.modes),
            ("model.layers", self.model.layers),
            ("model.time_embedding_dim", self.model.time_embedding_dim),
            ("model.projection_width", self.model.projection_width),
        ] {
            if v == 0 {
                return Err(out_of_range(source, key, v, "must be at least 1"));
            }
        }
        if self.noise.kind != NoiseKind::White {
            if !(self.noise.alpha.is_finite() && self.noise.alpha > 0.0) {
                return Err(out_of_range(source, "noise.alpha", self.noise.alpha, "must be finite and positive"));
            }
            if !(self.noise.tau.is_finite() && self.noise.tau > 0.0) {
                return Err(out_of_range(source, "noise.tau", self.noise.tau, "must be finite and positive"));
            }
            if let Some(s) = self.noise.sigma
                && !(s.is_finite() && s > 0.0)
            {
                return Err(out_of_range(source, "noise.sigma", s, "must be finite and positive"));
            }
        }
        if self.train.steps == 0 {
            return Err(out_of_range(source, "train.steps", 0, "must be at least 1"));
        }
        self.train.validate().map_err(|e| ConfigError::InvalidValue {
            path: source.clone(),
            key: match &e {
                crate::train::TrainError::Config { key, .. } => format!("train.{key}"),
                _ => "train".into(),
            },
            message: e.to_string(),
        })
    }
}
