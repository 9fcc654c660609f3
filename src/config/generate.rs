//! The `fieldflow generate` job: sample a trained model (from `fieldflow train`) into a native
//! HDF5 file, optionally enforcing a hard constraint.
//!
//! Samples integrate `dx/dt = v_θ(x, t)` from the source measure at `t = 0` to `t = 1`, then the
//! training normalisation is undone (`x = μ_c + s_c x̃`). With `[constraint] kind =
//! "divergence_free"` the sampler runs in data units (the field `s ⊙ v_θ((y − μ)/s, t)`) so that
//! the constraint `∇·u = 0` is imposed on what is written: PCFM projects at every step, `project`
//! once after an ordinary ODE solve.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::datagen::DtypeName;
use super::{ConfigError, Source, out_of_range};
use crate::sample::pcfm::Anchor;
use crate::sample::{ConstraintSpec, DarcyProjection, Method, Observation, PdeConstraint, SamplerSpec, Solver};

/// The `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenModelConfig {
    /// A run directory of `fieldflow train` (its newest checkpoint is used) or one checkpoint
    /// directory (`.../checkpoints/step-NNNNNNNN`).
    pub run_dir: PathBuf,
    /// Sample with the EMA weights when the checkpoint has them.
    #[serde(default = "default_true")]
    pub ema: bool,
}

fn default_true() -> bool {
    true
}

/// Fixed-step solvers by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SolverName {
    /// Forward Euler.
    Euler,
    /// Explicit midpoint.
    Midpoint,
    /// Heun (explicit trapezoid).
    #[default]
    Heun,
    /// Classic Runge–Kutta 4.
    Rk4,
    /// PBFM's stochastic sampler (Baldan et al. 2025, [`crate::sample::stochastic`]): Euler steps,
    /// re-noised onto the path while `t < renoise_threshold`. Unconstrained or with
    /// `constraint.method = "project"`.
    Stochastic,
}

impl SolverName {
    /// The deterministic ODE solver of this name (`None` for the stochastic sampler).
    pub fn ode(self) -> Option<Solver> {
        match self {
            SolverName::Euler => Some(Solver::Euler),
            SolverName::Midpoint => Some(Solver::Midpoint),
            SolverName::Heun => Some(Solver::Heun),
            SolverName::Rk4 => Some(Solver::Rk4),
            SolverName::Stochastic => None,
        }
    }
}

/// The `[solver]` section.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SolverConfig {
    /// euler | midpoint | heun | rk4 | stochastic. PCFM takes its own shoot-and-project steps,
    /// shooting with the average slope of one step of this solver.
    pub method: SolverName,
    /// Uniform steps from t = 0 to 1.
    pub steps: usize,
    /// Keep only the Fourier modes `|m_x|, |m_y| ≤ band_limit` of the generated fields (absent:
    /// all). The network cancels the source noise's small scales only approximately and its
    /// pointwise layers add a little energy at every wavenumber; data that are smooth on the grid
    /// (a resolved viscous flow) have none there. The truncation is an orthogonal projection that
    /// commutes with the divergence-free one. Counted in modes of the periodic domain, so it means
    /// the same at every resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_limit: Option<usize>,
    /// `method = "stochastic"`: re-noise after the steps that start before this time (PBFM's
    /// reference code: 0.2; 0 is plain Euler).
    #[serde(default = "default_renoise_threshold")]
    pub renoise_threshold: f64,
}

fn default_renoise_threshold() -> f64 {
    0.2
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self { method: SolverName::Heun, steps: 50, band_limit: None, renoise_threshold: default_renoise_threshold() }
    }
}

/// Constraint kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    /// Plain sampling.
    #[default]
    None,
    /// `∇·u = 0` for two velocity channels `u`, `v`.
    DivergenceFree,
    /// The discrete Darcy equation `−∇·(a∇u) = f` (zero Dirichlet values) on a generated pair
    /// `(a, u)` (channels `a`, `u` of a model trained on `darcy.output = "pair"` data), with the
    /// constant forcing `darcy_forcing`; nonlinear (bilinear), projected by Gauss–Newton.
    Darcy,
}

/// How the constraint is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintMethod {
    /// PCFM: project the extrapolated endpoint at every step.
    #[default]
    Pcfm,
    /// Solve the ODE, then project once.
    Project,
    /// ECI (Cheng et al.): `mixing` extrapolate–correct–interpolate iterations per step, no
    /// predictor choice (with `mixing = 1` it is PCFM with the Euler predictor).
    Eci,
}

/// The `[preview]` section: PNG pictures written beside the output file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreviewConfig {
    /// Samples drawn in the field previews (`<output>-vorticity.png`, `<output>-speed.png` for
    /// velocity models, else `<output>-<channel>.png`); 0 writes no pictures at all.
    pub samples: usize,
    /// Fields (any readable HDF5 file) whose mean energy spectrum `<output>-spectrum.png` shows
    /// beside the generated one; absent: the generated spectrum alone. A relative path is taken
    /// from the working directory.
    pub reference: Option<PathBuf>,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        Self { samples: 4, reference: None }
    }
}

/// The `[constraint]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConstraintConfig {
    /// none | divergence_free.
    pub kind: ConstraintKind,
    /// pcfm | project | eci.
    pub method: ConstraintMethod,
    /// ECI's iterations per step (`method = "eci"` only).
    pub mixing: usize,
    /// Where PCFM interpolates back from after each projection (`method = "pcfm"` only):
    /// `source` (the initial noise, as in the paper) or `state` (the noise the current state
    /// implies: the solver's own step plus the projection's correction; PCFM is then the plain
    /// solver wherever the constraint already holds).
    pub anchor: Anchor,
    /// The constant forcing `f` of `kind = "darcy"`.
    pub darcy_forcing: f64,
    /// How `kind = "darcy"` projects a pair: `pair` (Gauss–Newton, the nearest `(a, u)` that
    /// satisfies the equation; moves `a` and `u`) or `solve` (keep the generated `a`, solve the
    /// equation for `u`: exact in one step, leaves the coefficient's distribution alone, needs
    /// `a > 0`).
    pub darcy_projection: DarcyProjection,
    /// Fixed mean of each channel, in data units (stacked with `kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f64>>,
    /// Fixed kinetic energy `½ ∫ (u² + v²) dx dy` of velocity models (stacked with `kind`;
    /// nonlinear, projected by Gauss–Newton).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinetic_energy: Option<f64>,
    /// Pin the values of an observed field at every `stride`-th grid point in x and y (all
    /// channels), taken from sample `sample` of the HDF5 file `path` on the generation grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observe: Option<ObserveConfig>,
}

/// `[constraint] observe = { path = "...", sample = 0, stride = 8 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveConfig {
    /// Any readable HDF5 file on the generation grid with the model's channels.
    pub path: PathBuf,
    /// The observed sample.
    #[serde(default)]
    pub sample: usize,
    /// Grid points between observations, in x and y.
    #[serde(default = "default_stride")]
    pub stride: usize,
}

fn default_stride() -> usize {
    8
}

impl ConstraintConfig {
    /// Whether any constraint is asked for.
    pub fn any(&self) -> bool {
        self.kind != ConstraintKind::None
            || self.mean.is_some()
            || self.kinetic_energy.is_some()
            || self.observe.is_some()
    }
}

impl Default for ConstraintConfig {
    fn default() -> Self {
        Self {
            kind: ConstraintKind::None,
            method: ConstraintMethod::Pcfm,
            mixing: 1,
            anchor: Anchor::Source,
            darcy_forcing: 1.0,
            darcy_projection: DarcyProjection::Pair,
            mean: None,
            kinetic_energy: None,
            observe: None,
        }
    }
}

/// The `[output]` section of a generate job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenOutputConfig {
    /// The HDF5 file to write (an `.xdmf` sidecar is written beside it).
    pub path: PathBuf,
    /// Precision on disk (f64 keeps a projected divergence at round-off).
    #[serde(default = "default_f64")]
    pub dtype: DtypeName,
    /// gzip level 0–9; absent for no compression.
    #[serde(default)]
    pub gzip: Option<u8>,
}

fn default_f64() -> DtypeName {
    DtypeName::F64
}

/// A `generate` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Number of samples.
    pub samples: u64,
    /// Samples integrated together.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Seed of the source samples: sample `i` starts from the stream `(seed, i)`.
    #[serde(default)]
    pub seed: u64,
    /// Grid points in x (absent: the training grid); y keeps the training aspect ratio.
    #[serde(default)]
    pub resolution: Option<usize>,
    /// The trained model.
    pub model: GenModelConfig,
    /// The ODE solver.
    #[serde(default)]
    pub solver: SolverConfig,
    /// The hard constraint.
    #[serde(default)]
    pub constraint: ConstraintConfig,
    /// The output file.
    pub output: GenOutputConfig,
    /// PNG previews.
    #[serde(default)]
    pub preview: PreviewConfig,
}

fn default_batch() -> usize {
    16
}

impl GenerateConfig {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the key.
    pub fn validate(&self, source: &Source) -> Result<(), ConfigError> {
        if self.samples == 0 {
            return Err(out_of_range(source, "samples", 0, "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(out_of_range(source, "batch", 0, "must be at least 1"));
        }
        if self.solver.steps == 0 {
            return Err(out_of_range(source, "solver.steps", 0, "must be at least 1"));
        }
        if self.constraint.mixing == 0 {
            return Err(out_of_range(source, "constraint.mixing", 0, "must be at least 1"));
        }
        if self.solver.band_limit == Some(0) {
            return Err(out_of_range(
                source,
                "solver.band_limit",
                0,
                "must be at least 1 (remove the key for no limit)",
            ));
        }
        if let Some(n) = self.resolution
            && !(n >= 4 && n.is_multiple_of(2))
        {
            return Err(out_of_range(source, "resolution", n, "must be even and at least 4"));
        }
        if !self.constraint.darcy_forcing.is_finite() {
            return Err(out_of_range(
                source,
                "constraint.darcy_forcing",
                self.constraint.darcy_forcing,
                "must be finite",
            ));
        }
        if let Some(e) = self.constraint.kinetic_energy
            && !(e.is_finite() && e > 0.0)
        {
            return Err(out_of_range(source, "constraint.kinetic_energy", e, "must be finite and positive"));
        }
        if let Some(mean) = &self.constraint.mean
            && let Some(m) = mean.iter().find(|m| !m.is_finite())
        {
            return Err(out_of_range(source, "constraint.mean", m, "must be finite"));
        }
        if let Some(o) = &self.constraint.observe
            && o.stride == 0
        {
            return Err(out_of_range(source, "constraint.observe.stride", 0, "must be at least 1"));
        }
        if self.solver.method == SolverName::Stochastic
            && self.constraint.any()
            && self.constraint.method != ConstraintMethod::Project
        {
            return Err(ConfigError::InvalidValue {
                path: source.clone(),
                key: "solver.method".into(),
                message: "\"stochastic\" re-noises the state, so it cannot carry PCFM or ECI corrections: use \
                          constraint.method = \"project\" (projection after sampling) or a deterministic solver"
                    .into(),
            });
        }
        if self.constraint.darcy_projection != DarcyProjection::Pair && self.constraint.kind != ConstraintKind::Darcy {
            return Err(ConfigError::InvalidValue {
                path: source.clone(),
                key: "constraint.darcy_projection".into(),
                message: "applies to constraint.kind = \"darcy\" only".into(),
            });
        }
        if self.constraint.anchor != Anchor::Source && self.constraint.method != ConstraintMethod::Pcfm {
            return Err(ConfigError::InvalidValue {
                path: source.clone(),
                key: "constraint.anchor".into(),
                message: "applies to constraint.method = \"pcfm\" only".into(),
            });
        }
        if !(0.0..=1.0).contains(&self.solver.renoise_threshold) {
            return Err(out_of_range(
                source,
                "solver.renoise_threshold",
                self.solver.renoise_threshold,
                "must be in [0, 1]",
            ));
        }
        if let Some(level) = self.output.gzip
            && level > 9
        {
            return Err(out_of_range(source, "output.gzip", level, "must be between 0 and 9"));
        }
        Ok(())
    }
}

impl GenerateConfig {
    /// The sampling pipeline this config describes (validated by [`GenerateConfig::validate`]):
    /// `constraint.kind = "none"` with no other constraint is plain sampling (or PBFM's stochastic
    /// sampler); otherwise `constraint.method` picks projection after sampling, PCFM (its
    /// predictor is `solver.method`) or ECI.
    pub fn sampler_spec(&self) -> SamplerSpec {
        let solver = self.solver.method.ode().unwrap_or(Solver::Euler);
        let method = match (self.solver.method, self.constraint.any(), self.constraint.method) {
            (SolverName::Stochastic, _, _) => Method::Stochastic { threshold: self.solver.renoise_threshold },
            (_, false, _) => Method::Plain { solver },
            (_, true, ConstraintMethod::Project) => Method::ProjectAfter { solver },
            (_, true, ConstraintMethod::Pcfm) => Method::Pcfm { predictor: solver, anchor: self.constraint.anchor },
            (_, true, ConstraintMethod::Eci) => Method::Eci { mixing: self.constraint.mixing },
        };
        SamplerSpec { method, steps: self.solver.steps, band_limit: self.solver.band_limit }
    }

    /// The constraints of `[constraint]`.
    pub fn constraint_spec(&self) -> ConstraintSpec {
        let c = &self.constraint;
        ConstraintSpec {
            pde: match c.kind {
                ConstraintKind::None => PdeConstraint::None,
                ConstraintKind::DivergenceFree => PdeConstraint::DivergenceFree,
                ConstraintKind::Darcy => {
                    PdeConstraint::Darcy { forcing: c.darcy_forcing, projection: c.darcy_projection }
                }
            },
            mean: c.mean.clone(),
            kinetic_energy: c.kinetic_energy,
            observe: c.observe.as_ref().map(|o| Observation {
                path: o.path.clone(),
                sample: o.sample,
                stride: o.stride,
            }),
        }
    }
}
