//! The options of a training run: [`TrainConfig`] (serde, TOML- and JSON-friendly, saved in
//! every checkpoint) and the AdamW hyper-parameters [`AdamWOptions`].
//!
//! Every struct denies unknown keys and fills missing ones with the defaults below, so a job file
//! only states what differs.

use burn::optim::{AdamWConfig, ModuleOptimizer};
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::loss::{CfmLoss, PathSpec, TimeSampling};
use super::pbfm::PbfmConfig;
use super::schedule::LrSchedule;

/// AdamW hyper-parameters (Loshchilov & Hutter 2019).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWOptions {
    /// First-moment decay `β₁`.
    pub beta1: f64,
    /// Second-moment decay `β₂`.
    pub beta2: f64,
    /// `ε` added to `√v̂`.
    pub epsilon: f64,
    /// Decoupled weight decay `λ` (the update subtracts `lr · λ · θ`).
    pub weight_decay: f64,
}

impl Default for AdamWOptions {
    /// `β = (0.9, 0.999)`, `ε = 1e-8`, no weight decay (plain Adam).
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.0 }
    }
}

impl AdamWOptions {
    fn validate(&self) -> Result<(), TrainError> {
        for (key, v) in [("optimizer.beta1", self.beta1), ("optimizer.beta2", self.beta2)] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err(TrainError::config(key, format!("= {v} must be in [0, 1)")));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(TrainError::config("optimizer.epsilon", format!("= {} must be positive", self.epsilon)));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            let reason = format!("= {} must be finite and non-negative", self.weight_decay);
            return Err(TrainError::config("optimizer.weight_decay", reason));
        }
        Ok(())
    }

    /// burn's optimiser (gradient clipping is done globally by the trainer, not by burn).
    pub fn optimizer(&self) -> ModuleOptimizer {
        AdamWConfig::new()
            .with_beta_1(self.beta1 as f32)
            .with_beta_2(self.beta2 as f32)
            .with_epsilon(self.epsilon as f32)
            .with_weight_decay(self.weight_decay as f32)
            .init()
    }
}

/// Options of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Total number of updates of the run (resumed runs continue up to it).
    pub steps: u64,
    /// Samples per minibatch.
    pub batch_size: usize,
    /// The learning-rate schedule.
    pub lr: LrSchedule,
    /// AdamW hyper-parameters.
    pub optimizer: AdamWOptions,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub clip_norm: Option<f64>,
    /// Keep an EMA of the weights with this decay (`None`: no EMA).
    pub ema_decay: Option<f64>,
    /// The probability path.
    pub path: PathSpec,
    /// The distribution of training times.
    pub time_sampling: TimeSampling,
    /// Probability of dropping a sample's conditioning (classifier-free guidance).
    pub p_uncond: f64,
    /// Pair noise and data by the exact minibatch OT coupling.
    pub ot_coupling: bool,
    /// Seed of every training draw (batches, noise, times, dropout).
    pub seed: u64,
    /// Validate every this many steps (0: only at the end); needs a validation set.
    pub validate_every: u64,
    /// Checkpoint every this many steps (0: only at the end); needs a run directory.
    pub checkpoint_every: u64,
    /// Keep the newest this many checkpoints (0: all).
    pub keep_checkpoints: usize,
    /// Write a log row every this many steps (0: only at validations and the end).
    pub log_every: u64,
    /// Physics-based flow matching: a PDE residual loss on the predicted samples, combined with
    /// the CFM loss by ConFIG (`None`: plain flow matching). The `[train.pbfm]` table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pbfm: Option<PbfmConfig>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 10_000,
            batch_size: 32,
            lr: LrSchedule::default(),
            optimizer: AdamWOptions::default(),
            clip_norm: Some(1.0),
            ema_decay: Some(0.999),
            path: PathSpec::default(),
            time_sampling: TimeSampling::default(),
            p_uncond: 0.0,
            ot_coupling: false,
            seed: 0,
            validate_every: 500,
            checkpoint_every: 1000,
            keep_checkpoints: 3,
            log_every: 50,
            pbfm: None,
        }
    }
}

impl TrainConfig {
    /// Checks every option.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the offending key; [`TrainError::Path`] for invalid path
    /// parameters.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.batch_size == 0 {
            return Err(TrainError::config("batch_size", "= 0 must be at least 1"));
        }
        self.lr.validate()?;
        self.optimizer.validate()?;
        if let Some(c) = self.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(TrainError::config("clip_norm", format!("= {c} must be finite and positive")));
        }
        if let Some(d) = self.ema_decay
            && !(d.is_finite() && (0.0..1.0).contains(&d))
        {
            return Err(TrainError::config("ema_decay", format!("= {d} must be in [0, 1)")));
        }
        if let Some(p) = &self.pbfm {
            p.validate()?;
        }
        self.cfm_loss().map(|_| ())
    }

    /// The loss these options describe.
    ///
    /// # Errors
    /// As [`TrainConfig::validate`].
    pub fn cfm_loss(&self) -> Result<CfmLoss, TrainError> {
        CfmLoss::new(self.path.scheduler()?, self.time_sampling, self.p_uncond, self.ot_coupling)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn train_config_reads_from_toml_with_defaults() {
        let text = r#"
            steps = 500
            batch_size = 64
            clip_norm = 0.5
            ot_coupling = true
            [lr]
            base_lr = 2e-3
            warmup_steps = 50
            decay = { kind = "cosine", min_lr = 1e-5, total_steps = 500 }
            [time_sampling]
            kind = "logit_normal"
            mean = 0.0
            std = 1.0
        "#;
        let c: TrainConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.lr, LrSchedule::cosine(2e-3, 50, 1e-5, 500));
        assert_eq!(c.ema_decay, TrainConfig::default().ema_decay);
        assert!(toml::from_str::<TrainConfig>("stepz = 3").is_err());
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
    }
}
