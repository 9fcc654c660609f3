//! A model trained by `fieldflow train`, loaded for sampling: the network, what it was trained on
//! ([`TrainedData`], recorded in every checkpoint's `metadata`), its normalisation, and its
//! velocity as a [`VelocityField`] evaluated by the CPU inference engine or burn.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};
use fieldflow_datasets::Physics;
use fieldflow_pde::Grid2d;
use fieldflow_pde::random::FittedSpectrum;
use fieldflow_pde::turbulence::FlowParameters;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::checkpoint::{Checkpoint, latest_checkpoint, load_checkpoint_model};
use super::flow_model::FlowModel;
use crate::model::{Fno, FnoCpu};
use crate::noise::{NoiseConfig, NoiseError, SourceSampler};
use crate::normalize::ChannelStats;
use crate::sample::VelocityField;

/// What `fieldflow train` records in every checkpoint's `metadata`, for samplers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedData {
    /// The training data file.
    pub data: String,
    /// Its PDE.
    pub pde: String,
    /// Its channel names.
    pub channels: Vec<String>,
    /// Domain length in x.
    pub lx: f64,
    /// Domain length in y.
    pub ly: f64,
    /// Grid points in x.
    pub nx: usize,
    /// Grid points in y.
    pub ny: usize,
    /// The source measure.
    pub noise: NoiseConfig,
    /// The spectrum a fitted source measure was fitted to (the standardised training fields').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_spectrum: Option<FittedSpectrum>,
    /// The viscosity, drag and forcing of the data's flow (copied into generated files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowParameters>,
    /// The effective training config (TOML).
    pub config: String,
}

/// Why a trained model cannot be loaded or used; every variant is the user's input at fault.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The directory does not exist.
    #[error("model run directory {0} does not exist")]
    Missing(PathBuf),
    /// A run directory without checkpoints.
    #[error("{0} holds no checkpoint; run `fieldflow train` first")]
    NoCheckpoint(PathBuf),
    /// The checkpoint cannot be read.
    #[error("cannot load the model: {0}")]
    Checkpoint(String),
    /// The checkpoint lacks the training data's description.
    #[error("{0} was not written by `fieldflow train` (no data metadata)")]
    NoMetadata(PathBuf),
    /// A grid the model cannot sample on.
    #[error("{0}")]
    Grid(String),
    /// The source measure does not fit the grid.
    #[error("source measure: {0}")]
    Source(#[from] NoiseError),
    /// The CPU engine could not take the weights.
    #[error("preparing the model for the CPU: {0}")]
    Engine(String),
}

/// A trained FNO with its provenance; see the [module documentation](self).
#[derive(Debug)]
pub struct TrainedModel {
    /// The checkpoint directory the weights came from.
    pub checkpoint: PathBuf,
    /// The network.
    pub fno: Fno,
    /// What it was trained on.
    pub data: TrainedData,
    /// The normalisation of its fields (identity when the checkpoint has none).
    pub stats: ChannelStats,
}

impl TrainedModel {
    /// The checkpoint directory of `dir`: `dir` itself if it is one, else the run directory's
    /// newest checkpoint.
    ///
    /// # Errors
    /// [`LoadError::Missing`], [`LoadError::NoCheckpoint`], [`LoadError::Checkpoint`].
    pub fn checkpoint_of(dir: &Path) -> Result<PathBuf, LoadError> {
        if !dir.is_dir() {
            return Err(LoadError::Missing(dir.to_path_buf()));
        }
        if dir.join(super::checkpoint::META_FILE).is_file() {
            return Ok(dir.to_path_buf());
        }
        match latest_checkpoint(dir).map_err(|e| LoadError::Checkpoint(e.to_string()))? {
            Some(Checkpoint { dir, .. }) => Ok(dir),
            None => Err(LoadError::NoCheckpoint(dir.to_path_buf())),
        }
    }

    /// Loads the model of a run or checkpoint directory on `device`, with the EMA weights when
    /// `ema` is set and the checkpoint has them.
    ///
    /// # Errors
    /// [`LoadError`] naming the directory.
    pub fn load(dir: &Path, ema: bool, device: &Device) -> Result<Self, LoadError> {
        let checkpoint = Self::checkpoint_of(dir)?;
        let (fno, meta) = load_checkpoint_model::<4, Fno>(&checkpoint, ema, device)
            .map_err(|e| LoadError::Checkpoint(e.to_string()))?;
        let data: TrainedData = meta
            .metadata
            .clone()
            .and_then(|m| serde_json::from_value(m).ok())
            .ok_or_else(|| LoadError::NoMetadata(checkpoint.clone()))?;
        let channels = data.channels.len();
        let stats = match &meta.normalization {
            Some(n) => n.fields.clone(),
            None => ChannelStats::new(vec![0.0; channels], vec![1.0; channels]),
        };
        stats.validate(channels).map_err(|e| {
            LoadError::Checkpoint(format!(
                "{}: `normalization.fields` in {}: {}",
                checkpoint.display(),
                super::checkpoint::META_FILE,
                e.0
            ))
        })?;
        Ok(Self { checkpoint, fno, data, stats })
    }

    /// The periodic grid to sample on: the training grid, or `resolution` points in x with the
    /// training aspect ratio.
    ///
    /// # Errors
    /// [`LoadError::Grid`] for a resolution that does not keep the aspect ratio on an even grid.
    pub fn grid(&self, resolution: Option<usize>) -> Result<Grid2d, LoadError> {
        let d = &self.data;
        let (nx, ny) = match resolution {
            None => (d.nx, d.ny),
            Some(_) if d.nx == 0 => {
                let reason = format!("{}: the recorded training grid is empty", self.checkpoint.display());
                return Err(LoadError::Grid(reason));
            }
            Some(n) => {
                let ny = n * d.ny / d.nx;
                if !(n * d.ny).is_multiple_of(d.nx) || !ny.is_multiple_of(2) || ny < 4 {
                    return Err(LoadError::Grid(format!(
                        "resolution = {n} does not keep the training grid's aspect ratio {}×{} on an even grid",
                        d.ny, d.nx
                    )));
                }
                (n, ny)
            }
        };
        Grid2d::new(nx, ny, d.lx, d.ly).map_err(|e| LoadError::Grid(format!("grid {ny}×{nx}: {e}")))
    }

    /// The physics descriptor of the fields the model generates (from its training data).
    pub fn physics(&self) -> Physics {
        Physics::of(&self.data.pde, &self.data.channels, &[])
    }

    /// The model's source measure on `grid`.
    ///
    /// # Errors
    /// [`LoadError::Source`] if the measure does not fit the grid or channels.
    pub fn source(&self, grid: &Grid2d) -> Result<SourceSampler, LoadError> {
        Ok(self.data.noise.measure(self.data.source_spectrum.as_ref())?.sampler(grid, self.data.channels.len())?)
    }

    /// The network's velocity `ṽ(x̃, t)` of standardised fields: by the CPU inference engine
    /// when `cpu` is set, else by burn on the weights' device.
    ///
    /// # Errors
    /// [`LoadError::Engine`] if the CPU engine cannot read the weights.
    pub fn network(&self, cpu: bool) -> Result<Network<'_>, LoadError> {
        let engine =
            if cpu { Some(FnoCpu::new(&self.fno).map_err(|e| LoadError::Engine(e.to_string()))?) } else { None };
        Ok(Network { fno: &self.fno, engine, time: Cell::new(Duration::ZERO), calls: Cell::new(0) })
    }
}

/// The velocity of a [`TrainedModel`] at a time shared by the batch, with the wall time spent in
/// it. A model error (only possible for shapes, which the samplers fix) yields NaN, which the
/// samplers report as a non-finite velocity.
#[derive(Debug)]
pub struct Network<'a> {
    fno: &'a Fno,
    engine: Option<FnoCpu<'a>>,
    time: Cell<Duration>,
    calls: Cell<usize>,
}

impl Network<'_> {
    /// Wall time spent evaluating the network, and the number of evaluations.
    pub fn time(&self) -> (Duration, usize) {
        (self.time.get(), self.calls.get())
    }
}

impl VelocityField<4> for Network<'_> {
    fn velocity(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
        let clock = Instant::now();
        let tt = Tensor::<1>::from_data(TensorData::new(vec![t as f32], [1]), &x.device());
        let v = match &self.engine {
            Some(engine) => engine.forward(x.clone(), tt, None, None),
            None => self.fno.velocity(x.clone(), tt, None),
        };
        let v = v.unwrap_or_else(|_| x.zeros_like().add_scalar(f32::NAN));
        self.time.set(self.time.get() + clock.elapsed());
        self.calls.set(self.calls.get() + 1);
        v
    }
}
