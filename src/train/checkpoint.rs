//! Checkpoints: weights, EMA weights and optimiser state in burn's burnpack format, with a JSON
//! sidecar describing the run.
//!
//! ```text
//! <run>/checkpoints/step-00001000/
//!     model.bpk        trained weights (Module::save_file: burnpack, parameter ids persisted)
//!     ema.bpk          EMA weights (when the run keeps an EMA)
//!     optimizer.bpk    AdamW moments and step counts (ModuleOptimizer::save, keyed by parameter id)
//!     checkpoint.json  CheckpointMeta: step, configs, normalisation, losses, elapsed time
//! ```
//!
//! A checkpoint is written into `.step-XXXXXXXX.tmp/` and renamed into place when complete, so
//! an interrupted write never leaves a partial `step-*` directory, and directories are only
//! listed when their sidecar exists. Burnpack stores each parameter's id, and loading restores
//! it; the optimiser state is keyed by those ids, so a model and optimiser restored together
//! continue exactly where they stopped (the AdamW moments and bias-correction counts included).
//! The random streams are keyed by the step, so the step is the whole RNG state.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::data::Normalization;
use super::flow_model::FlowModel;
use super::options::TrainConfig;
use super::{TrainError, write_atomic};

/// The directory of checkpoints inside a run directory.
pub const CHECKPOINTS: &str = "checkpoints";
/// The sidecar's file name.
pub const META_FILE: &str = "checkpoint.json";
/// The trained weights' file name.
pub const MODEL_FILE: &str = "model.bpk";
/// The EMA weights' file name.
pub const EMA_FILE: &str = "ema.bpk";
/// The optimiser state's file name.
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// The sidecar's `format` value.
pub const FORMAT: &str = "fieldflow-checkpoint";
/// The sidecar's `version` value.
pub const VERSION: u32 = 1;

/// The JSON sidecar of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Completed updates.
    pub step: u64,
    /// Wall-clock seconds of training up to this step (over all sessions).
    pub elapsed_seconds: f64,
    /// The model's [`FlowModel::KIND`].
    pub model_kind: String,
    /// The model's config (its [`FlowModel::Config`] as JSON).
    pub model_config: serde_json::Value,
    /// The training config.
    pub train_config: TrainConfig,
    /// The data normalisation, to undo on samples.
    pub normalization: Option<Normalization>,
    /// Updates the EMA has received (`None`: no EMA saved).
    pub ema_updates: Option<u64>,
    /// The loss of the last update.
    pub train_loss: Option<f64>,
    /// The last validation loss of the trained weights.
    pub val_loss: Option<f64>,
    /// The program that wrote the checkpoint.
    pub created_by: String,
    /// Free-form information from the caller (e.g. the job's config text).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// A checkpoint on disk: its directory and sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The `step-*` directory.
    pub dir: PathBuf,
    /// The sidecar.
    pub meta: CheckpointMeta,
}

impl Checkpoint {
    /// Reads the checkpoint in `dir`.
    ///
    /// # Errors
    /// [`TrainError::Io`] if the sidecar cannot be read, [`TrainError::Checkpoint`] if it is
    /// malformed or of another format or version.
    pub fn read(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        let meta: CheckpointMeta =
            serde_json::from_str(&text).map_err(|e| TrainError::checkpoint(&path, e.to_string()))?;
        if meta.format != FORMAT || meta.version != VERSION {
            let reason = format!("format {} v{} is not {FORMAT} v{VERSION}", meta.format, meta.version);
            return Err(TrainError::checkpoint(&path, reason));
        }
        Ok(Self { dir: dir.to_path_buf(), meta })
    }

    /// The trained weights.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }

    /// The EMA weights, when saved.
    pub fn ema_path(&self) -> Option<PathBuf> {
        self.meta.ema_updates.map(|_| self.dir.join(EMA_FILE))
    }

    /// The optimiser state.
    pub fn optimizer_path(&self) -> PathBuf {
        self.dir.join(OPTIMIZER_FILE)
    }
}

/// The directory of the checkpoint at `step`.
pub fn checkpoint_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join(CHECKPOINTS).join(format!("step-{step:08}"))
}

/// The complete checkpoints of a run directory, `(step, directory)` by increasing step.
///
/// # Errors
/// [`TrainError::Io`] if the directory exists but cannot be listed.
pub fn list_checkpoints(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    let root = run_dir.join(CHECKPOINTS);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).map_err(|e| TrainError::io(&root, e))? {
        let entry = entry.map_err(|e| TrainError::io(&root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let step = name.strip_prefix("step-").and_then(|s| s.parse::<u64>().ok());
        if let Some(step) = step
            && entry.path().join(META_FILE).is_file()
        {
            out.push((step, entry.path()));
        }
    }
    out.sort_by_key(|(s, _)| *s);
    Ok(out)
}

/// The newest complete checkpoint of a run directory.
///
/// # Errors
/// As [`list_checkpoints`] and [`Checkpoint::read`].
pub fn latest_checkpoint(run_dir: &Path) -> Result<Option<Checkpoint>, TrainError> {
    match list_checkpoints(run_dir)?.pop() {
        Some((_, dir)) => Checkpoint::read(&dir).map(Some),
        None => Ok(None),
    }
}

/// Loads a model from a checkpoint directory for sampling: built from the sidecar's model
/// config on `device`, with the EMA weights when `ema` is set and the checkpoint has them (the
/// trained weights otherwise).
///
/// # Errors
/// As [`Checkpoint::read`]; [`TrainError::Checkpoint`] if the checkpoint holds another kind of
/// model, its config does not parse, or the weights do not fit the model.
pub fn load_checkpoint_model<const D: usize, M: FlowModel<D>>(
    dir: &Path,
    ema: bool,
    device: &Device,
) -> Result<(M, CheckpointMeta), TrainError> {
    let ck = Checkpoint::read(dir)?;
    if ck.meta.model_kind != M::KIND {
        let reason = format!("holds a `{}` model, not `{}`", ck.meta.model_kind, M::KIND);
        return Err(TrainError::checkpoint(dir, reason));
    }
    let config: M::Config = serde_json::from_value(ck.meta.model_config.clone())
        .map_err(|e| TrainError::checkpoint(dir, format!("model_config: {e}")))?;
    let path = match (ema, ck.ema_path()) {
        (true, Some(p)) => p,
        _ => ck.model_path(),
    };
    let model = load_weights(M::init(&config, device)?, &path)?;
    Ok((model, ck.meta))
}

/// `model` with the weights (and parameter ids) of the burnpack file `path`.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file if it cannot be read or does not fit the model.
pub fn load_weights<M: Module>(model: M, path: &Path) -> Result<M, TrainError> {
    model.try_load_file(path).map_err(|e| TrainError::checkpoint(path, e.to_string()))
}

/// Writes a checkpoint of `meta.step` into `run_dir` (atomically, see the
/// [module documentation](self)) and returns its directory.
///
/// # Errors
/// [`TrainError::Io`] / [`TrainError::Checkpoint`] if a file cannot be written.
pub(crate) fn write_checkpoint<M: Module>(
    run_dir: &Path,
    meta: &CheckpointMeta,
    model: &M,
    ema: Option<&M>,
    optimizer: &ModuleOptimizer,
) -> Result<PathBuf, TrainError> {
    let root = run_dir.join(CHECKPOINTS);
    let tmp = root.join(format!(".step-{:08}.tmp", meta.step));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    let record = |path: PathBuf, result: Result<(), burn::store::RecordError>| {
        result.map_err(|e| TrainError::checkpoint(&path, e.to_string()))
    };
    let path = tmp.join(MODEL_FILE);
    record(path.clone(), model.valid().save_file(&path))?;
    if let Some(ema) = ema {
        let path = tmp.join(EMA_FILE);
        record(path.clone(), ema.valid().save_file(&path))?;
    }
    let path = tmp.join(OPTIMIZER_FILE);
    record(path.clone(), optimizer.save(&path))?;
    let text = serde_json::to_string_pretty(meta).map_err(|e| TrainError::checkpoint(&tmp, e.to_string()))?;
    write_atomic(&tmp.join(META_FILE), text.as_bytes())?;
    let dir = checkpoint_dir(run_dir, meta.step);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| TrainError::io(&dir, e))?;
    Ok(dir)
}

/// Deletes all but the newest `keep` checkpoints (`keep = 0`: keep all).
///
/// # Errors
/// As [`list_checkpoints`], and [`TrainError::Io`] if a directory cannot be removed.
pub(crate) fn prune(run_dir: &Path, keep: usize) -> Result<(), TrainError> {
    if keep == 0 {
        return Ok(());
    }
    let all = list_checkpoints(run_dir)?;
    for (_, dir) in all.iter().take(all.len().saturating_sub(keep)) {
        std::fs::remove_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    Ok(())
}
