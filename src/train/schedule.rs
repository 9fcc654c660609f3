//! Learning-rate schedules: linear warm-up, then cosine, step or no decay.
//!
//! With base rate `η`, `W` warm-up steps and `s` the number of completed updates (the update
//! about to run is the `(s+1)`-th):
//!
//! ```text
//! warm-up (s < W):  η_s = η (s + 1) / W
//! constant:         η_s = η
//! cosine:           η_s = η_min + ½ (η − η_min) (1 + cos(π p)),   p = min(1, (s − W) / (T − W))
//! step:             η_s = η γ^⌊(s − W) / k⌋
//! ```
//!
//! so the warm-up reaches `η` on its last step and the decay starts from `η`. The cosine schedule
//! holds `η_min` from step `T` on (`T ≤ W` means `η_min` right after the warm-up).

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::TrainError;

/// How the learning rate decays after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrDecay {
    /// No decay.
    #[default]
    Constant,
    /// Half a cosine from the base rate down to `min_lr` at step `total_steps`.
    Cosine {
        /// The final rate.
        min_lr: f64,
        /// The step at which `min_lr` is reached (counted from 0, warm-up included).
        total_steps: u64,
    },
    /// Multiply the rate by `gamma` every `every` steps.
    Step {
        /// Steps between reductions.
        every: u64,
        /// The factor applied at each reduction.
        gamma: f64,
    },
}

/// A learning-rate schedule: [`LrSchedule::lr`] gives the rate of each step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LrSchedule {
    /// The rate after the warm-up, before any decay.
    pub base_lr: f64,
    /// Steps of linear warm-up (0: none).
    pub warmup_steps: u64,
    /// The decay after the warm-up.
    pub decay: LrDecay,
}

impl Default for LrSchedule {
    /// A constant `1e-3` without warm-up.
    fn default() -> Self {
        Self { base_lr: 1e-3, warmup_steps: 0, decay: LrDecay::Constant }
    }
}

impl LrSchedule {
    /// A constant rate.
    pub fn constant(base_lr: f64) -> Self {
        Self { base_lr, warmup_steps: 0, decay: LrDecay::Constant }
    }

    /// Warm-up over `warmup_steps`, then a cosine down to `min_lr` at `total_steps`.
    pub fn cosine(base_lr: f64, warmup_steps: u64, min_lr: f64, total_steps: u64) -> Self {
        Self { base_lr, warmup_steps, decay: LrDecay::Cosine { min_lr, total_steps } }
    }

    /// Checks that the rates are finite and non-negative (the base rate positive) and the
    /// step decay has `every ≥ 1` and `gamma > 0`.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the offending key (`lr.base_lr`, `lr.decay.min_lr`, ...).
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.base_lr.is_finite() && self.base_lr > 0.0) {
            return Err(TrainError::config("lr.base_lr", format!("= {} must be finite and positive", self.base_lr)));
        }
        match self.decay {
            LrDecay::Constant => Ok(()),
            LrDecay::Cosine { min_lr, .. } if !(min_lr.is_finite() && min_lr >= 0.0) => {
                Err(TrainError::config("lr.decay.min_lr", format!("= {min_lr} must be finite and non-negative")))
            }
            LrDecay::Cosine { .. } => Ok(()),
            LrDecay::Step { every: 0, .. } => Err(TrainError::config("lr.decay.every", "= 0 must be at least 1")),
            LrDecay::Step { gamma, .. } if !(gamma.is_finite() && gamma > 0.0) => {
                Err(TrainError::config("lr.decay.gamma", format!("= {gamma} must be finite and positive")))
            }
            LrDecay::Step { .. } => Ok(()),
        }
    }

    /// The learning rate of the update that follows `step` completed updates.
    pub fn lr(&self, step: u64) -> f64 {
        let (base, warmup) = (self.base_lr, self.warmup_steps);
        if step < warmup {
            return base * (step + 1) as f64 / warmup as f64;
        }
        let s = step - warmup;
        match self.decay {
            LrDecay::Constant => base,
            LrDecay::Cosine { min_lr, total_steps } => {
                let span = total_steps.saturating_sub(warmup);
                let p = if span == 0 { 1.0 } else { (s as f64 / span as f64).min(1.0) };
                min_lr + 0.5 * (base - min_lr) * (1.0 + (PI * p).cos())
            }
            LrDecay::Step { every, gamma } => {
                let k = (s / every.max(1)).min(i32::MAX as u64) as i32;
                base * gamma.powi(k)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-15 * b.abs().max(1e-300)
    }

    #[test]
    fn warmup_then_cosine_at_key_steps() {
        let s = LrSchedule::cosine(1e-3, 10, 1e-5, 110);
        s.validate().unwrap();
        assert!(close(s.lr(0), 1e-4)); // (0 + 1)/10 of the base
        assert!(close(s.lr(4), 5e-4));
        assert!(close(s.lr(9), 1e-3)); // warm-up ends at the base rate
        assert!(close(s.lr(10), 1e-3)); // cosine starts at the base rate
        assert!(close(s.lr(60), 1e-5 + 0.5 * (1e-3 - 1e-5))); // half way: the mean of the ends
        assert!(close(s.lr(35), 1e-5 + 0.5 * (1e-3 - 1e-5) * (1.0 + (PI / 4.0).cos())));
        assert!(close(s.lr(110), 1e-5));
        assert!(close(s.lr(1_000_000), 1e-5)); // held after the end
        // Monotone after the warm-up.
        assert!((10..110).all(|k| s.lr(k + 1) <= s.lr(k)));
    }

    #[test]
    fn step_decay_and_constant() {
        let s = LrSchedule { base_lr: 0.1, warmup_steps: 0, decay: LrDecay::Step { every: 100, gamma: 0.5 } };
        assert!(close(s.lr(0), 0.1));
        assert!(close(s.lr(99), 0.1));
        assert!(close(s.lr(100), 0.05));
        assert!(close(s.lr(250), 0.025));
        let w = LrSchedule { warmup_steps: 4, ..s };
        assert!(close(w.lr(0), 0.025));
        assert!(close(w.lr(103), 0.1)); // the decay counts from the end of the warm-up
        assert!(close(w.lr(104), 0.05));
        let c = LrSchedule::constant(3e-4);
        assert!([0, 1, 10_000].iter().all(|&k| c.lr(k) == 3e-4));
        // A cosine whose end precedes the warm-up's end holds the minimum afterwards.
        let short = LrSchedule::cosine(1.0, 10, 0.1, 5);
        assert!(close(short.lr(9), 1.0) && close(short.lr(10), 0.1));
    }

    #[test]
    fn invalid_schedules_name_their_key() {
        let bad = |s: LrSchedule, key: &str| match s.validate() {
            Err(TrainError::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: {other:?}"),
        };
        bad(LrSchedule::constant(0.0), "lr.base_lr");
        bad(LrSchedule::constant(f64::NAN), "lr.base_lr");
        bad(LrSchedule::cosine(1e-3, 0, -1.0, 10), "lr.decay.min_lr");
        bad(LrSchedule { decay: LrDecay::Step { every: 0, gamma: 0.5 }, ..LrSchedule::default() }, "lr.decay.every");
        bad(LrSchedule { decay: LrDecay::Step { every: 5, gamma: 0.0 }, ..LrSchedule::default() }, "lr.decay.gamma");
    }

    #[test]
    fn serde_round_trip() {
        let s = LrSchedule::cosine(2e-4, 100, 1e-6, 10_000);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<LrSchedule>(&json).unwrap(), s);
        let t: LrSchedule =
            toml::from_str("base_lr = 0.01\n[decay]\nkind = \"step\"\nevery = 10\ngamma = 0.1\n").unwrap();
        assert_eq!(t.decay, LrDecay::Step { every: 10, gamma: 0.1 });
        assert_eq!(t.warmup_steps, 0);
    }
}
