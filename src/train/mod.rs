//! Training flow-matching models: the conditional flow-matching (CFM) loss, AdamW with a learning
//! rate schedule and global-norm clipping, an exponential moving average of the weights,
//! checkpoints that resume exactly, and a CSV log.
//!
//! # The objective
//!
//! For data `x1 ~ q` (`t = 1`), source samples `x0 ~ p` (`t = 0`, [`crate::noise`]), times
//! `t ~ U[0, 1]` (or logit-normal) and an affine path `x_t = α_t x1 + σ_t x0` ([`crate::path`]),
//! the network `v_θ` is regressed onto the conditional velocity `ẋ_t = α̇_t x1 + σ̇_t x0`:
//!
//! ```text
//! L(θ) = E_{t, x0, x1} ‖v_θ(x_t, t; c) − ẋ_t‖² / n        (n values per sample: a per-value MSE)
//! ```
//!
//! (Lipman et al. 2023). Its minimiser is the marginal velocity `E[ẋ_t | x_t]`, whose flow carries
//! `p` to `q`. Options: the exact minibatch optimal-transport coupling of `(x0, x1)` (OT-CFM,
//! Tong et al. 2024) and, for conditional models, conditioning dropout for classifier-free
//! guidance (the dropped conditioning is replaced by zeros, see [`loss`]).
//!
//! # Randomness
//!
//! Every draw comes from [`fieldflow_pde::rng`] streams keyed by the training seed and the step
//! (the number of completed updates before the draw), so a run resumed from a checkpoint at step
//! `k` draws exactly what the uninterrupted run drew from step `k` on:
//!
//! | draw | stream |
//! | --- | --- |
//! | minibatch order (epoch `e`) | `substream(seed, e, SHUFFLE)`, a permutation per epoch |
//! | times of step `s` | `substream(seed, s, TIME)` |
//! | conditioning dropout of step `s` | `substream(seed, s, DROPOUT)` |
//! | source sample `b` of step `s` | the source measure with seed `tagged(seed, NOISE)`, index `s·B + b` |
//! | validation source / times | seed `tagged(seed, VALIDATION_NOISE)` / `substream(seed, i, VALIDATION_TIME)`, sample `i` |
//!
//! The tags are constants of [`loss`] and [`data`]; model weights are initialised from the model
//! config's own seed.
//!
//! # Files of a run directory
//!
//! ```text
//! run/train_log.csv                         step,lr,train_loss,val_loss,grad_norm,seconds,ema_val_loss,residual_loss
//! run/checkpoints/step-00001000/
//!     model.bpk  ema.bpk  optimizer.bpk     burnpack (burn's native format, parameter ids kept)
//!     checkpoint.json                       step, configs, normalisation, losses, elapsed time
//! ```
//!
//! - [`loss`]: the CFM loss, time sampling, source samplers, conditioning dropout.
//! - [`pbfm`]: physics-based flow matching (the `[train.pbfm]` options and the residual
//!   objective), on the residuals of [`residual`] combined by ConFIG ([`confg`]).
//! - [`schedule`]: learning-rate warm-up and decay.
//! - [`clip`]: global gradient norm and clipping.
//! - [`ema`]: the exponential moving average of the weights.
//! - [`data`]: in-memory data sets, per-channel normalisation, minibatches, toy data.
//! - [`checkpoint`]: saving, listing and loading checkpoints.
//! - [`log`]: the CSV log and the progress bar.
//! - [`flow_model`]: the [`FlowModel`] interface, for the FNO and the MLP.
//! - [`config`]: the run's options ([`TrainConfig`]).
//! - [`trainer`]: the training loop.

pub mod checkpoint;
pub mod clip;
pub mod data;
pub mod ema;
pub mod engine;
pub mod flow_model;
pub mod log;
pub mod loss;
pub mod options;
pub mod pbfm;
pub mod schedule;
pub mod trained;
pub mod trainer;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::model::ModelError;
use crate::noise::NoiseError;
use crate::path::PathError;

pub use checkpoint::{
    Checkpoint, CheckpointMeta, checkpoint_dir, latest_checkpoint, list_checkpoints, load_checkpoint_model,
    load_weights,
};
pub use clip::{clip_global_norm, global_norm};
pub use data::{
    ChannelStats, FieldDataOptions, Normalization, Snapshots, TensorDataset, eight_gaussians, fit_source,
    load_field_dataset, normalized_dataset,
};
pub use ema::Ema;
pub use engine::{EngineRun, FlatAdamW, TrainPath};
pub use flow_model::FlowModel;
pub use log::{CsvLog, LogRow, read_log};
pub use loss::{CfmBatch, CfmLoss, Conditioning, GaussianNoise, NoiseSource, PathSpec, TimeSampling};
pub use options::{AdamWOptions, TrainConfig};
pub use pbfm::{Combine, Pbfm, PbfmConfig, ResidualKind, pbfm_fits};
pub use schedule::{LrDecay, LrSchedule};
pub use trained::{LoadError, Network, TrainedData, TrainedModel};
pub use trainer::{TrainOutcome, Trainer};

/// What can go wrong preparing or running a training job.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A training option is out of range.
    #[error("invalid training config: `{key}` {reason}")]
    Config {
        /// The offending key, as it appears in configs.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The model rejected its config or inputs.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The probability path rejected its parameters or inputs.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The source measure could not be sampled.
    #[error(transparent)]
    Noise(#[from] NoiseError),
    /// A PBFM residual rejected its inputs.
    #[error(transparent)]
    Residual(#[from] pbfm::residual::ResidualError),
    /// The ConFIG combination of the PBFM gradients failed.
    #[error("PBFM gradient combination: {0}")]
    Confg(#[from] pbfm::confg::ConfigError),
    /// The data file could not be read.
    #[error(transparent)]
    Dataset(#[from] fieldflow_datasets::DatasetError),
    /// Training data hold NaN or infinite values.
    #[error("{what} holds a non-finite value ({value}) in sample {sample}{}", channel.map(|c| format!(", channel {c}")).unwrap_or_default())]
    NonFiniteData {
        /// Which data (e.g. `/fields of data.h5`).
        what: String,
        /// The first offending sample.
        sample: usize,
        /// Its channel, when known.
        channel: Option<usize>,
        /// The offending value.
        value: f64,
    },
    /// The loss or the gradient became NaN or infinite: training stops before the weights are
    /// updated, and the last checkpoint on disk is left as it was.
    #[error("{what} is {value} at step {step}; training stopped{}", match last_checkpoint {
        Some(k) => format!(", the last checkpoint (step {k}) is untouched"),
        None => String::new(),
    })]
    NonFinite {
        /// `training loss` or `gradient norm`.
        what: &'static str,
        /// The update that failed (1-based: the `step`-th update).
        step: u64,
        /// The offending value.
        value: f64,
        /// The step of the newest checkpoint on disk, if any.
        last_checkpoint: Option<u64>,
    },
    /// Tensors that must agree in shape do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// A tensor could not be read back from its device.
    #[error("could not read {what} back from the device: {reason}")]
    Readback {
        /// Which tensor.
        what: &'static str,
        /// The backend's message.
        reason: String,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint or log file is malformed, or does not match the job.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The run directory already holds checkpoints and resuming was disabled.
    #[error("run directory {} already holds checkpoints (newest: step {step}); resume or choose another directory", dir.display())]
    ExistingRun {
        /// The run directory.
        dir: PathBuf,
        /// The newest checkpoint's step.
        step: u64,
    },
}

impl TrainError {
    pub(crate) fn config(key: &'static str, reason: impl Into<String>) -> Self {
        Self::Config { key, reason: reason.into() }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn checkpoint(path: &Path, reason: impl Into<String>) -> Self {
        Self::Checkpoint { path: path.to_path_buf(), reason: reason.into() }
    }
}

/// Writes `bytes` to `path` atomically: to a temporary file beside it, flushed and renamed over
/// the target, so readers see either the old or the new content.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    Ok(fieldflow_datasets::write_atomic(path, bytes, true)?)
}

/// Reads a scalar tensor (one element) as `f64`.
pub(crate) fn scalar(what: &'static str, t: burn::tensor::Tensor<1>) -> Result<f64, TrainError> {
    t.try_into_scalar::<f32>().map(f64::from).map_err(|e| TrainError::Readback { what, reason: format!("{e:?}") })
}
