//! The `[train.pbfm]` table ([`PbfmConfig`]): which residual, its PDE parameters, the `tᵖ`
//! weight, the unrolled prediction and how the two gradients are combined.

use fieldflow_pde::darcy::FaceAverage;
use serde::{Deserialize, Serialize};

use super::residual::ResidualNorm;
use crate::train::TrainError;

/// The PDE residual of the PBFM loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidualKind {
    /// `∇·u` of velocity fields `(u, v)` on the data's periodic grid (two channels).
    Divergence,
    /// The Darcy residual `−∇·(a∇u) − f` of pairs `(a, u)` on `s × s` nodes of the unit square
    /// (two channels).
    Darcy,
    /// The trapezoidal Navier–Stokes vorticity residual of snapshot pairs `(ω⁰, ω¹)` (two
    /// channels).
    NsVorticity,
}

/// Whether data with the physics descriptor `physics` and `channels` channels are the fields the
/// residual `kind` is defined on; `Err` says what it needs.
///
/// # Errors
/// A sentence naming the channels the residual needs.
pub fn pbfm_fits(kind: ResidualKind, physics: &fieldflow_datasets::Physics, channels: usize) -> Result<(), String> {
    let ok = match kind {
        ResidualKind::Divergence => channels == 2 && physics.roles.velocity == Some((0, 1)),
        ResidualKind::Darcy => channels == 2 && physics.roles.darcy_pair == Some((0, 1)),
        ResidualKind::NsVorticity => channels == 2 && physics.pde != fieldflow_datasets::PdeKind::Darcy,
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        ResidualKind::Divergence => "needs velocity data with exactly the channels [u, v]".into(),
        ResidualKind::Darcy => {
            "needs Darcy pairs with exactly the channels [a, u] (datagen darcy.output = \"pair\")".into()
        }
        ResidualKind::NsVorticity => "needs Navier–Stokes vorticity snapshot pairs (two channels)".into(),
    })
}

impl ResidualKind {
    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Divergence => "divergence",
            Self::Darcy => "darcy",
            Self::NsVorticity => "ns_vorticity",
        }
    }
}

/// How the two gradients make one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// ConFIG (the reference code).
    #[default]
    Config,
    /// The gradient of `L_FM + w L_R`.
    Sum,
}

/// The face average of the Darcy residual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FaceAverageKind {
    /// `(a_P + a_Q)/2` (the FNO and PDEBench generators).
    #[default]
    Arithmetic,
    /// `2 a_P a_Q/(a_P + a_Q)`.
    Harmonic,
}

impl From<FaceAverageKind> for FaceAverage {
    fn from(k: FaceAverageKind) -> Self {
        match k {
            FaceAverageKind::Arithmetic => Self::Arithmetic,
            FaceAverageKind::Harmonic => Self::Harmonic,
        }
    }
}

/// The vorticity forcing of the Navier–Stokes residual (`fieldflow_pde::navier_stokes::Forcing`
/// without the arbitrary field).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum VorticityForcing {
    /// No forcing.
    #[default]
    None,
    /// `A (sin 2π(x + y) + cos 2π(x + y))`.
    Fno {
        /// `A`.
        amplitude: f64,
    },
    /// `−A κ cos(κ y)`, `κ = 2π n / Ly`.
    Kolmogorov {
        /// `n`.
        wavenumber: u32,
        /// `A`.
        amplitude: f64,
    },
}

impl From<VorticityForcing> for fieldflow_pde::navier_stokes::Forcing {
    fn from(f: VorticityForcing) -> Self {
        match f {
            VorticityForcing::None => Self::None,
            VorticityForcing::Fno { amplitude } => Self::Fno { amplitude },
            VorticityForcing::Kolmogorov { wavenumber, amplitude } => Self::Kolmogorov { wavenumber, amplitude },
        }
    }
}

/// The `[train.pbfm]` table: PBFM's residual loss and how it is combined (absent: plain flow
/// matching). See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PbfmConfig {
    /// divergence | darcy | ns_vorticity.
    pub residual: ResidualKind,
    /// `p` of the weight `t^p` (reference code: 1).
    #[serde(default = "one")]
    pub weight_exponent: f64,
    /// Euler steps from `x_t` to `x̂₁` (with the curriculum: the final number).
    #[serde(default = "one_step")]
    pub unroll_steps: usize,
    /// Grow the unrolled steps from 1 to `unroll_steps` in equal phases of training.
    #[serde(default)]
    pub curriculum: bool,
    /// config (ConFIG) | sum.
    #[serde(default)]
    pub combine: Combine,
    /// `w` of `L_FM + w L_R` (only with `combine = "sum"`; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual_weight: Option<f64>,
    /// `R²` (true) or `|R|` (false); default as the reference code: `|R|` for darcy, `R²` else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub squared: Option<bool>,
    /// Darcy: the constant forcing `f` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forcing: Option<f64>,
    /// Darcy: arithmetic | harmonic face averages (default arithmetic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_average: Option<FaceAverageKind>,
    /// Navier–Stokes: the viscosity `ν` (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viscosity: Option<f64>,
    /// Navier–Stokes: the linear drag `α` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drag: Option<f64>,
    /// Navier–Stokes: the time `Δt` between the two snapshots (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_dt: Option<f64>,
    /// Navier–Stokes: the vorticity forcing (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vorticity_forcing: Option<VorticityForcing>,
}

fn one() -> f64 {
    1.0
}

fn one_step() -> usize {
    1
}

/// The largest number of unrolled steps (each costs a forward and backward pass of the network).
pub const MAX_UNROLL_STEPS: usize = 64;

impl PbfmConfig {
    /// The reference code's options for `residual`: `p = 1`, one step, ConFIG.
    pub fn new(residual: ResidualKind) -> Self {
        Self {
            residual,
            weight_exponent: 1.0,
            unroll_steps: 1,
            curriculum: false,
            combine: Combine::Config,
            residual_weight: None,
            squared: None,
            forcing: None,
            face_average: None,
            viscosity: None,
            drag: None,
            snapshot_dt: None,
            vorticity_forcing: None,
        }
    }

    /// Checks every option.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the key (`pbfm.weight_exponent`, ...; the job config
    /// prefixes `train.`).
    pub fn validate(&self) -> Result<(), TrainError> {
        let p = self.weight_exponent;
        if !(p.is_finite() && p >= 0.0) {
            return Err(TrainError::config("pbfm.weight_exponent", format!("= {p} must be finite and non-negative")));
        }
        if !(1..=MAX_UNROLL_STEPS).contains(&self.unroll_steps) {
            let reason = format!("= {} must be in 1..={MAX_UNROLL_STEPS}", self.unroll_steps);
            return Err(TrainError::config("pbfm.unroll_steps", reason));
        }
        if self.curriculum && self.unroll_steps < 2 {
            let reason = "= true grows the unrolled steps from 1 to `unroll_steps`, which must then be at least 2 \
                          (the paper uses 4)";
            return Err(TrainError::config("pbfm.curriculum", reason));
        }
        if let Some(w) = self.residual_weight {
            if self.combine != Combine::Sum {
                return Err(TrainError::config("pbfm.residual_weight", "applies only to combine = \"sum\""));
            }
            if !(w.is_finite() && w > 0.0) {
                return Err(TrainError::config("pbfm.residual_weight", format!("= {w} must be finite and positive")));
            }
        }
        let darcy = self.residual == ResidualKind::Darcy;
        let ns = self.residual == ResidualKind::NsVorticity;
        let only = |set: bool, key: &'static str, applies: bool, residual: &str| {
            if set && !applies {
                let reason = format!("applies only to residual = \"{residual}\", not \"{}\"", self.residual.name());
                return Err(TrainError::config(key, reason));
            }
            Ok(())
        };
        only(self.forcing.is_some(), "pbfm.forcing", darcy, "darcy")?;
        only(self.face_average.is_some(), "pbfm.face_average", darcy, "darcy")?;
        only(self.viscosity.is_some(), "pbfm.viscosity", ns, "ns_vorticity")?;
        only(self.drag.is_some(), "pbfm.drag", ns, "ns_vorticity")?;
        only(self.snapshot_dt.is_some(), "pbfm.snapshot_dt", ns, "ns_vorticity")?;
        only(self.vorticity_forcing.is_some(), "pbfm.vorticity_forcing", ns, "ns_vorticity")?;
        if let Some(f) = self.forcing
            && !f.is_finite()
        {
            return Err(TrainError::config("pbfm.forcing", format!("= {f} must be finite")));
        }
        if ns {
            match self.viscosity {
                None => {
                    return Err(TrainError::config("pbfm.viscosity", "is required with residual = \"ns_vorticity\""));
                }
                Some(v) if !(v.is_finite() && v >= 0.0) => {
                    return Err(TrainError::config("pbfm.viscosity", format!("= {v} must be finite and non-negative")));
                }
                Some(_) => {}
            }
            if let Some(d) = self.drag
                && !(d.is_finite() && d >= 0.0)
            {
                return Err(TrainError::config("pbfm.drag", format!("= {d} must be finite and non-negative")));
            }
            match self.snapshot_dt {
                None => {
                    return Err(TrainError::config("pbfm.snapshot_dt", "is required with residual = \"ns_vorticity\""));
                }
                Some(dt) if !(dt.is_finite() && dt > 0.0) => {
                    return Err(TrainError::config("pbfm.snapshot_dt", format!("= {dt} must be finite and positive")));
                }
                Some(_) => {}
            }
            let amplitude = match self.vorticity_forcing {
                Some(VorticityForcing::Fno { amplitude } | VorticityForcing::Kolmogorov { amplitude, .. }) => amplitude,
                _ => 0.0,
            };
            if !amplitude.is_finite() {
                return Err(TrainError::config("pbfm.vorticity_forcing", "amplitude must be finite"));
            }
        }
        Ok(())
    }

    /// `R²` or `|R|`.
    pub fn norm(&self) -> ResidualNorm {
        let squared = self.squared.unwrap_or(self.residual != ResidualKind::Darcy);
        if squared { ResidualNorm::Squared } else { ResidualNorm::Absolute }
    }

    /// The number of unrolled Euler steps at training step `step` of `total`.
    pub fn unroll_steps_at(&self, step: u64, total: u64) -> usize {
        if !self.curriculum || total == 0 {
            return self.unroll_steps;
        }
        let n = self.unroll_steps as u128;
        let phase = (step as u128 * n) / total as u128;
        (1 + phase).min(n) as usize
    }
}
