//! Physics-constrained flow matching (PCFM, Utkarsh et al. 2025) and projection after sampling.
//!
//! Both samplers draw fields from a pretrained velocity field `v_θ` that satisfy hard equality
//! constraints `h(u) = 0` ([`Constraint`]), without retraining.
//!
//! # Projection after sampling
//!
//! The simplest baseline ([`project_after_sampling`]): integrate `du/dt = v_θ(u, t)` from the
//! noise `u₀` at `t = 0` to `u₁` at `t = 1` with any [`Solver`], then replace `u₁` by its
//! Euclidean projection `P(u₁) = argmin { ‖z − u₁‖₂ : h(z) = 0 }`, computed in `f64`.
//!
//! # PCFM
//!
//! [`pcfm_sample`] follows `pcfm/pcfm_sampling.py` of cpfpengfei/PCFM. On a time grid
//! `0 = τ₀ < τ₁ < … < τ_N = 1`, with the initial noise `u₀` kept, each step `τ → τ'` does:
//!
//! 1. velocity: `v = v_θ(u_τ, τ)` ([`Predictor::Euler`], the paper's choice), or Heun's average
//!    `v = ½ (v_θ(u_τ, τ) + v_θ(u_τ + (τ' − τ) v_θ(u_τ, τ), τ'))` ([`Predictor::Heun`]: two
//!    evaluations per step, as a Heun ODE solve; both predictors give the same limit as the steps
//!    shrink, and the interpolation towards `u₀` keeps PCFM first order with either);
//! 2. shoot: `û₁ = u_τ + (1 − τ) v` (the straight-line, i.e. CondOT, extrapolation to `t = 1`);
//! 3. project: `u_proj = P(û₁)` (the constraint's [`Constraint::project`]: exact for the linear
//!    constraints and the energy sphere, Gauss–Newton `u ← u − Jᵀ (J Jᵀ)⁻¹ h(u)` otherwise);
//! 4. OT interpolation back: `û_τ' = (1 − τ') u₀ + τ' u_proj`;
//! 5. optional relaxed correction ([`Relaxation`]): a few gradient steps on
//!    `L(u) = ‖u − û_τ'‖² + λ ‖h(u + γ v)‖²`, whose gradient is
//!    `2 (u − û_τ') + 2 λ J(u + γ v)ᵀ h(u + γ v)`, started at `û_τ'`;
//! 6. step: `u_τ' = û_τ'` (corrected or not).
//!
//! Then an optional final projection `u₁ ← P(u₁)`. The state is kept in `f64` throughout (the
//! network sees it rounded to `f32`), so without relaxation the last step already ends on
//! `u_proj` (at `τ' = 1`, `û₁ = u_proj`) and the final projection only polishes Gauss–Newton
//! results or undoes the relaxation; with it, returned samples satisfy `h = 0` to round-off
//! (exact projections) or to the Gauss–Newton tolerance.
//!
//! The helpers shared with ECI ([`super::eci`]) live here: the extrapolate-and-project step and
//! the interpolation back towards `u₀`.
//!
//! Length: 378 lines of code, 268 of tests; kept together as one subject (PCFM and the helpers ECI shares, with their fixtures).

use burn::tensor::{Device, Tensor};
use fieldflow_pde::PdeError;
use fieldflow_pde::constraints::{Constraint, project_batch};
use ndarray::{Array4, Axis, Zip};
use rayon::prelude::*;
use thiserror::Error;

use super::ode::{fixed_slope, linspace};
use super::project::{ConstraintError, project_array, tensor_to_array4};
use super::{SolveError, SolveOptions, Solver, VelocityField, solve};
use crate::bridge::to_tensor;

/// What can go wrong in the constrained samplers ([`pcfm_sample`], [`project_after_sampling`],
/// [`super::eci::eci_sample`]).
#[derive(Debug, Error)]
pub enum PcfmError {
    /// The time grid is unusable.
    #[error("invalid time_grid: {reason} (time_grid[{index}] = {value})")]
    TimeGrid {
        /// Position of the offending time (0 for a too short grid).
        index: usize,
        /// That time (NaN for a too short grid).
        value: f64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A tensor has the wrong shape: `x0` (its sample shape must be the constraint's) or the
    /// velocity returned by the field (must be the shape of its input).
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which tensor.
        what: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape passed.
        got: Vec<usize>,
    },
    /// A sampler parameter is out of range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    Parameter {
        /// The parameter name.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// Why.
        reason: &'static str,
    },
    /// The velocity field returned NaN or infinite values.
    #[error("the velocity is NaN or infinite at t = {time}")]
    NonFinite {
        /// The time of the evaluation.
        time: f64,
    },
    /// A projection or residual failed, or a tensor could not be read.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// The ODE solver failed ([`project_after_sampling`]).
    #[error(transparent)]
    Solve(#[from] SolveError),
}

impl From<PdeError> for PcfmError {
    fn from(e: PdeError) -> Self {
        Self::Constraint(ConstraintError::Pde(e))
    }
}

/// The relaxed correction of PCFM: `steps` gradient steps of size `step_size` on
/// `‖u − û_τ'‖² + λ ‖h(u + γ v)‖²`, starting from `û_τ'`.
///
/// Gradient descent is stable when `step_size < 1 / (1 + λ ‖J‖²)` (`‖J‖` the largest singular
/// value of the constraint's Jacobian); the caller chooses it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relaxation {
    /// The penalty weight `λ ≥ 0`.
    pub lambda: f64,
    /// The look-ahead `γ` along the current velocity (0 penalises `h(u)` itself).
    pub gamma: f64,
    /// The number of gradient steps.
    pub steps: usize,
    /// The gradient step size (positive).
    pub step_size: f64,
}

impl Relaxation {
    fn check(&self) -> Result<(), PcfmError> {
        let checks = [
            ("lambda", self.lambda, self.lambda.is_finite() && self.lambda >= 0.0, "must be finite and non-negative"),
            ("gamma", self.gamma, self.gamma.is_finite(), "must be finite"),
            (
                "step_size",
                self.step_size,
                self.step_size.is_finite() && self.step_size > 0.0,
                "must be finite and positive",
            ),
        ];
        for (name, value, ok, reason) in checks {
            if !ok {
                return Err(PcfmError::Parameter { name, value, reason });
            }
        }
        Ok(())
    }
}

/// Options of [`pcfm_sample`].
#[derive(Debug, Clone, PartialEq)]
pub struct PcfmOptions {
    /// Strictly increasing times in `[0, 1]`, at least two (normally from 0 to 1).
    pub time_grid: Vec<f64>,
    /// Whether to project the final state once more, in `f64` (default true).
    pub final_projection: bool,
    /// The optional relaxed correction after each interpolation (default none).
    pub relaxation: Option<Relaxation>,
    /// The velocity used to shoot to `t = 1` (default [`Predictor::Euler`]).
    pub predictor: Predictor,
    /// The source sample the interpolation back to `τ'` starts from (default
    /// [`Anchor::Source`], the paper's).
    pub anchor: Anchor,
}

/// Which source sample a PCFM step interpolates back from (step 4 of the algorithm).
///
/// Interpolating from the initial noise assumes straight trajectories, `u_τ = (1 − τ)u₀ + τu₁`;
/// where they bend (multimodal data such as a thresholded Darcy coefficient) the re-anchoring
/// drifts even when the projection changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The initial source sample `u₀` (Utkarsh et al.): `û_τ' = (1 − τ')u₀ + τ' u_proj`.
    #[default]
    Source,
    /// The source sample the current state and velocity imply, `û₀ = u_τ − τv`:
    /// `û_τ' = (1 − τ')û₀ + τ' u_proj = u_τ + (τ' − τ)v + τ'(u_proj − û₁)`, the predictor's
    /// own step plus the projection's correction scaled by `τ'`. When the projection changes
    /// nothing, PCFM is then exactly the Euler (or Heun) solver.
    State,
}

/// How a PCFM step estimates the velocity it extrapolates with (step 1 of the algorithm): the
/// average slope of one step of a fixed-step ODE [`Solver`] ([`super::ode::fixed_slope`]).
/// `Euler` is the paper's `v_θ(u_τ, τ)` (one evaluation per step); `Heun`, `Midpoint` (two) and
/// `Rk4` (four) estimate the secant velocity of the step; the adaptive `Dopri5` is refused.
pub type Predictor = Solver;

impl PcfmOptions {
    /// `steps` uniform steps from 0 to 1, final projection on, no relaxation.
    pub fn uniform(steps: usize) -> Self {
        Self::grid(linspace(0.0, 1.0, steps))
    }

    /// A custom grid, final projection on, no relaxation.
    pub fn grid(time_grid: Vec<f64>) -> Self {
        Self { time_grid, final_projection: true, relaxation: None, predictor: Solver::Euler, anchor: Anchor::Source }
    }
}

impl Default for PcfmOptions {
    /// 100 uniform steps.
    fn default() -> Self {
        Self::uniform(100)
    }
}

/// Samples with PCFM from the noise `x0`: see the [module docs](self) for the algorithm.
///
/// # Shapes
/// - `x0`: `[batch, C, ny, nx]` with `[C, ny, nx]` the constraint's shape
/// - output: the shape of `x0`, in `f64`
///
/// # Errors
/// [`PcfmError::TimeGrid`] for a grid that is too short, non-finite, outside `[0, 1]` or not
/// strictly increasing; [`PcfmError::Shape`] naming `x0` or `velocity`; [`PcfmError::Parameter`]
/// for an invalid [`Relaxation`]; [`PcfmError::NonFinite`] if the field returns NaN/∞;
/// [`PcfmError::Constraint`] if a projection fails or a tensor cannot be read.
pub fn pcfm_sample<F>(
    field: &F,
    constraint: &dyn Constraint,
    x0: Tensor<4>,
    options: &PcfmOptions,
) -> Result<Array4<f64>, PcfmError>
where
    F: VelocityField<4> + ?Sized,
{
    check_time_grid(&options.time_grid)?;
    check_x0(constraint, &x0)?;
    if let Solver::Dopri5(_) = options.predictor {
        return Err(PcfmError::Parameter { name: "predictor", value: f64::NAN, reason: "must be a fixed-step solver" });
    }
    if let Some(r) = &options.relaxation {
        r.check()?;
    }
    let device = x0.device();
    let u0 = tensor_to_array4(x0, "x0")?;
    let mut u = u0.clone();
    for w in options.time_grid.windows(2) {
        let (tau, tau_next) = (w[0], w[1]);
        let (v, u_proj) = match options.predictor {
            Solver::Euler => shoot_and_project(field, constraint, &u, tau, &device)?,
            solver => {
                let (v, _) = fixed_slope(&solver, |y, t| velocity(field, y, t, &device), &u, tau, tau_next)?;
                let u1_hat = &u + &(&v * (1.0 - tau));
                let u_proj = project_batch(constraint, u1_hat.view())?;
                (v, u_proj)
            }
        };
        let u_hat = match options.anchor {
            Anchor::Source => interpolate(&u0, &u_proj, tau_next),
            Anchor::State => interpolate(&(&u - &(&v * tau)), &u_proj, tau_next),
        };
        u = match &options.relaxation {
            Some(r) => relax(constraint, &u_hat, &v, r)?,
            None => u_hat,
        };
    }
    finish(constraint, u, options.final_projection)
}

/// Plain ODE sampling from `x0` with `solver` on `options`' grid, then one projection of the
/// final state in `f64`.
///
/// # Shapes
/// - `x0`: `[batch, C, ny, nx]` with `[C, ny, nx]` the constraint's shape
/// - output: the shape of `x0`, in `f64`
///
/// # Errors
/// [`PcfmError::Shape`] naming `x0`; [`PcfmError::Solve`] for solver failures;
/// [`PcfmError::Constraint`] if the projection fails.
pub fn project_after_sampling<F>(
    field: &F,
    constraint: &dyn Constraint,
    x0: Tensor<4>,
    solver: &Solver,
    options: &SolveOptions,
) -> Result<Array4<f64>, PcfmError>
where
    F: VelocityField<4> + ?Sized,
{
    check_x0(constraint, &x0)?;
    let solution = solve(field, x0, solver, options)?;
    Ok(project_array(constraint, solution.x)?)
}

/// Checks a sampling grid: at least two finite times in `[0, 1]`, strictly increasing.
pub(crate) fn check_time_grid(grid: &[f64]) -> Result<(), PcfmError> {
    if grid.len() < 2 {
        return Err(PcfmError::TimeGrid { index: 0, value: f64::NAN, reason: "needs at least two times" });
    }
    for (index, &value) in grid.iter().enumerate() {
        if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
            return Err(PcfmError::TimeGrid { index, value, reason: "times must be finite and in [0, 1]" });
        }
        if index > 0 && value <= grid[index - 1] {
            return Err(PcfmError::TimeGrid { index, value, reason: "times must be strictly increasing" });
        }
    }
    Ok(())
}

/// Checks that `x0` is `[batch, C, ny, nx]` with the constraint's sample shape and `batch ≥ 1`.
pub(crate) fn check_x0(constraint: &dyn Constraint, x0: &Tensor<4>) -> Result<(), PcfmError> {
    let dims = x0.dims();
    let [c, ny, nx] = constraint.shape();
    if dims[1..] != [c, ny, nx] || dims[0] == 0 {
        return Err(PcfmError::Shape { what: "x0", expected: vec![dims[0].max(1), c, ny, nx], got: dims.to_vec() });
    }
    Ok(())
}

/// `v_θ(u, t)` in `f64`, checked for shape and finiteness.
pub(crate) fn velocity<F>(field: &F, u: &Array4<f64>, t: f64, device: &Device) -> Result<Array4<f64>, PcfmError>
where
    F: VelocityField<4> + ?Sized,
{
    let v = field.velocity(to_tensor::<4, _>(u.view(), device), t);
    if v.dims()[..] != *u.shape() {
        return Err(PcfmError::Shape { what: "velocity", expected: u.shape().to_vec(), got: v.dims().to_vec() });
    }
    let v = tensor_to_array4(v, "velocity")?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(PcfmError::NonFinite { time: t });
    }
    Ok(v)
}

/// Steps 1–3 of PCFM (and extrapolate–correct of ECI): `v = v_θ(u, τ)`,
/// `û₁ = u + (1 − τ) v`, and its projection `P(û₁)`; returns `(v, P(û₁))`.
pub(crate) fn shoot_and_project<F>(
    field: &F,
    constraint: &dyn Constraint,
    u: &Array4<f64>,
    tau: f64,
    device: &Device,
) -> Result<(Array4<f64>, Array4<f64>), PcfmError>
where
    F: VelocityField<4> + ?Sized,
{
    let v = velocity(field, u, tau, device)?;
    let u1_hat = u + &(&v * (1.0 - tau));
    let u_proj = project_batch(constraint, u1_hat.view())?;
    Ok((v, u_proj))
}

/// The OT interpolation `(1 − t) u₀ + t u₁`.
pub(crate) fn interpolate(u0: &Array4<f64>, u1: &Array4<f64>, t: f64) -> Array4<f64> {
    let mut out = u1 * t;
    out.scaled_add(1.0 - t, u0);
    out
}

/// The optional final projection.
pub(crate) fn finish(constraint: &dyn Constraint, u: Array4<f64>, project: bool) -> Result<Array4<f64>, PcfmError> {
    if project { Ok(project_batch(constraint, u.view())?) } else { Ok(u) }
}

/// The relaxed correction, one sample per rayon task.
fn relax(
    constraint: &dyn Constraint,
    u_hat: &Array4<f64>,
    v: &Array4<f64>,
    r: &Relaxation,
) -> Result<Array4<f64>, PcfmError> {
    let mut out = u_hat.clone();
    out.axis_iter_mut(Axis(0)).into_par_iter().zip(u_hat.axis_iter(Axis(0))).zip(v.axis_iter(Axis(0))).try_for_each(
        |((mut u, uh), vb)| {
            for _ in 0..r.steps {
                let w = &u + &(&vb * r.gamma);
                let h = constraint.residual(w.view())?;
                let jth = constraint.vjp(w.view(), h.view())?;
                Zip::from(&mut u).and(&uh).and(&jth).for_each(|x, &xh, &g| {
                    *x -= r.step_size * 2.0 * ((*x - xh) + r.lambda * g);
                });
            }
            Ok::<(), PdeError>(())
        },
    )?;
    Ok(out)
}

/// Shared test fixtures: a Gaussian target with its exact CondOT velocity, noise and constraints.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod fixtures {
    use super::*;
    use fieldflow_pde::Grid2d;
    use fieldflow_pde::constraints::{DivergenceFree, FixedEnergy, FixedMean, MaskValues, Stack};
    use ndarray::Array3;
    use rand::RngExt;
    use rand_distr::StandardNormal;

    /// Grid size, batch and the target's standard deviation.
    pub const N: usize = 16;
    /// The batch size.
    pub const B: usize = 2;
    const S: f64 = 0.5;

    /// The exact marginal CondOT velocity for `x₁ ~ N(μ, s² I)`, `x₀ ~ N(0, I)`:
    /// `v(x, t) = μ + (t s² − (1 − t)) / (t² s² + (1 − t)²) (x − t μ)`; its flow maps
    /// `x₀ ↦ μ + s x₀`.
    pub struct Gaussian {
        mu: Tensor<4>,
    }

    impl VelocityField<4> for Gaussian {
        fn velocity(&self, x: Tensor<4>, t: f64) -> Tensor<4> {
            let k = (t * S * S - (1.0 - t)) / (t * t * S * S + (1.0 - t) * (1.0 - t));
            (x - self.mu.clone().mul_scalar(t)).mul_scalar(k) + self.mu.clone()
        }
    }

    /// The mean field μ, a smooth non-solenoidal velocity.
    pub fn mu() -> Array4<f64> {
        Array4::from_shape_fn((B, 2, N, N), |(_, c, i, j)| {
            let (y, x) = (i as f64 / N as f64, j as f64 / N as f64);
            let tau = std::f64::consts::TAU;
            if c == 0 { 0.6 * (tau * x).sin() + 0.2 * (tau * y).cos() } else { 0.4 * (tau * (x + y)).cos() - 0.1 }
        })
    }

    /// The field and the noise (`f32` tensors).
    pub fn setup() -> (Gaussian, Tensor<4>) {
        let device = Device::default();
        let noise = Array4::from_shape_fn((B, 2, N, N), |(b, c, i, j)| {
            let mut rng = fieldflow_pde::rng::stream(7, (((b * 2 + c) * N + i) * N + j) as u64);
            rng.sample::<f64, _>(StandardNormal)
        });
        (Gaussian { mu: to_tensor::<4, _>(mu().view(), &device) }, to_tensor::<4, _>(noise.view(), &device))
    }

    /// The constraints of the tests, with a name and whether they are linear.
    pub fn constraints() -> Vec<(&'static str, Box<dyn Constraint>)> {
        let g = Grid2d::square(N, 1.0).unwrap();
        let values = Array3::from_shape_fn((2, N, N), |(_, i, j)| 0.3 * ((i + j) as f64 * 0.5).sin());
        vec![
            ("divergence-free", Box::new(DivergenceFree::new(g.clone()))),
            ("fixed-mean", Box::new(FixedMean::new([2, N, N], 0, 0.25).unwrap())),
            ("mask", Box::new(MaskValues::boundary(values, &[0, 1]).unwrap())),
            ("energy", Box::new(FixedEnergy::kinetic(&g, 0.2).unwrap())),
            (
                "div-free+energy",
                Box::new(
                    Stack::new(vec![
                        Box::new(DivergenceFree::new(g.clone())),
                        Box::new(FixedEnergy::kinetic(&g, 0.2).unwrap()),
                    ])
                    .unwrap(),
                ),
            ),
        ]
    }

    /// The largest scale-free violation over the batch.
    pub fn worst(c: &dyn Constraint, u: &Array4<f64>) -> f64 {
        crate::sample::project::relative_violations(c, u.view()).unwrap().into_iter().fold(0.0, f64::max)
    }

    /// The unconstrained sample (Euler, exact for this affine flow up to `f32`).
    pub fn unconstrained(field: &Gaussian, x0: Tensor<4>, steps: usize) -> Array4<f64> {
        let sol = solve(field, x0, &Solver::Euler, &SolveOptions::uniform(steps)).unwrap();
        tensor_to_array4(sol.x, "x").unwrap()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use fieldflow_pde::Grid2d;
    use fieldflow_pde::constraints::{DivergenceFree, FixedMean};

    #[test]
    fn pcfm_satisfies_every_constraint_the_free_sampler_violates() {
        let (field, x0) = setup();
        let free = unconstrained(&field, x0.clone(), 20);
        for (name, c) in constraints() {
            let tol = if c.is_linear() { 1e-10 } else { 1e-8 };
            let u = pcfm_sample(&field, c.as_ref(), x0.clone(), &PcfmOptions::uniform(20)).unwrap();
            let (got, base) = (worst(c.as_ref(), &u), worst(c.as_ref(), &free));
            eprintln!("pcfm {name}: constrained {got:.3e}, unconstrained {base:.3e}");
            assert!(got <= tol, "{name}: {got:e}");
            assert!(base >= 1e-3 && base >= 1e6 * got.max(1e-16), "{name}: {base:e} vs {got:e}");
        }
    }

    #[test]
    fn heun_predictor_satisfies_the_constraints_and_has_the_same_limit() {
        let (field, x0) = setup();
        let calls = std::cell::Cell::new(0usize);
        let counted = |x: Tensor<4>, t: f64| {
            calls.set(calls.get() + 1);
            field.velocity(x, t)
        };
        for (name, c) in constraints() {
            let tol = if c.is_linear() { 1e-10 } else { 1e-8 };
            let run = |steps: usize, predictor: Predictor| {
                let options = PcfmOptions { predictor, ..PcfmOptions::uniform(steps) };
                calls.set(0);
                let u = pcfm_sample(&counted, c.as_ref(), x0.clone(), &options).unwrap();
                let per_step = match predictor {
                    Solver::Euler => 1,
                    Solver::Midpoint | Solver::Heun => 2,
                    Solver::Rk4 | Solver::Dopri5(_) => 4,
                };
                assert_eq!(calls.get(), per_step * steps, "{name}: network evaluations");
                u
            };
            let dist = |a: &Array4<f64>, b: &Array4<f64>| (a - b).iter().fold(0.0_f64, |m, d| m.max(d.abs()));
            let (coarse, fine) = (
                dist(&run(10, Predictor::Euler), &run(10, Predictor::Heun)),
                dist(&run(160, Predictor::Euler), &run(160, Predictor::Heun)),
            );
            let heun = run(10, Predictor::Heun);
            assert!(worst(c.as_ref(), &heun) <= tol, "{name}: {:e}", worst(c.as_ref(), &heun));
            eprintln!("pcfm {name}: max |euler − heun| {coarse:.3e} (10 steps), {fine:.3e} (160 steps)");
            assert!(fine < 0.5 * coarse, "{name}: the predictors do not converge to one limit");
        }
    }

    /// Anchored on the state, PCFM takes the Euler step plus the projection's correction. The
    /// test field is affine with a scalar gain, so the Leray projection commutes with its flow
    /// and the divergence-free part follows the plain Euler recurrence: the result is the
    /// projected Euler sample (to `f32`). Anchored on the noise it is a different scheme (here
    /// more exact than Euler, the trajectories being straight). Every constraint still holds.
    #[test]
    fn state_anchor_is_the_euler_step_plus_the_projection() {
        let (field, x0) = setup();
        let state = PcfmOptions { anchor: Anchor::State, ..PcfmOptions::uniform(20) };
        for (name, c) in constraints() {
            let tol = if c.is_linear() { 1e-10 } else { 1e-8 };
            let u = pcfm_sample(&field, c.as_ref(), x0.clone(), &state).unwrap();
            assert!(worst(c.as_ref(), &u) <= tol, "{name}: {:e}", worst(c.as_ref(), &u));
        }
        let div_free = DivergenceFree::new(Grid2d::square(N, 1.0).unwrap());
        let projected_euler =
            project_after_sampling(&field, &div_free, x0.clone(), &Solver::Euler, &SolveOptions::uniform(20)).unwrap();
        let dist = |a: &Array4<f64>, b: &Array4<f64>| (a - b).iter().fold(0.0_f64, |m, d| m.max(d.abs()));
        let anchored_on_state = pcfm_sample(&field, &div_free, x0.clone(), &state).unwrap();
        let anchored_on_noise = pcfm_sample(&field, &div_free, x0.clone(), &PcfmOptions::uniform(20)).unwrap();
        let (same, other) = (dist(&anchored_on_state, &projected_euler), dist(&anchored_on_noise, &projected_euler));
        eprintln!("pcfm state anchor vs projected Euler {same:.3e}, noise anchor {other:.3e}");
        assert!(same <= 1e-5, "state anchor: {same:e}");
        assert!(other >= 1e-3, "noise anchor: {other:e}");
    }

    #[test]
    fn every_solver_drives_pcfm_and_the_state_anchor_is_its_projected_solve() {
        // The predictor is one step of a fixed-step solver: anchored on the state, PCFM with a
        // constraint the flow already keeps is the projected solve of that solver, for each one.
        let (field, x0) = setup();
        let div_free = DivergenceFree::new(Grid2d::square(N, 1.0).unwrap());
        let dist = |a: &Array4<f64>, b: &Array4<f64>| (a - b).iter().fold(0.0_f64, |m, d| m.max(d.abs()));
        for solver in [Solver::Euler, Solver::Midpoint, Solver::Heun, Solver::Rk4] {
            let options = PcfmOptions { predictor: solver, anchor: Anchor::State, ..PcfmOptions::uniform(20) };
            let u = pcfm_sample(&field, &div_free, x0.clone(), &options).unwrap();
            let solved =
                project_after_sampling(&field, &div_free, x0.clone(), &solver, &SolveOptions::uniform(20)).unwrap();
            let gap = dist(&u, &solved);
            eprintln!("pcfm {solver:?} state anchor vs projected {solver:?} solve {gap:.3e}");
            assert!(gap <= 1e-5, "{solver:?}: {gap:e}");
            for (name, c) in constraints() {
                let tol = if c.is_linear() { 1e-10 } else { 1e-8 };
                let u = pcfm_sample(&field, c.as_ref(), x0.clone(), &options).unwrap();
                assert!(worst(c.as_ref(), &u) <= tol, "{solver:?} {name}: {:e}", worst(c.as_ref(), &u));
            }
        }
        let adaptive = PcfmOptions { predictor: Solver::Dopri5(Default::default()), ..PcfmOptions::uniform(4) };
        assert!(matches!(
            pcfm_sample(&field, &div_free, x0, &adaptive),
            Err(PcfmError::Parameter { name: "predictor", .. })
        ));
    }

    #[test]
    fn projection_after_sampling_satisfies_the_constraints() {
        let (field, x0) = setup();
        for (name, c) in constraints() {
            let tol = if c.is_linear() { 1e-10 } else { 1e-8 };
            let u = project_after_sampling(&field, c.as_ref(), x0.clone(), &Solver::Euler, &SolveOptions::uniform(20))
                .unwrap();
            let got = worst(c.as_ref(), &u);
            eprintln!("project-after-sampling {name}: {got:.3e}");
            assert!(got <= tol, "{name}: {got:e}");
        }
    }

    #[test]
    fn pcfm_without_final_projection_still_reduces_the_violation() {
        let (field, x0) = setup();
        let free = unconstrained(&field, x0.clone(), 20);
        for (name, c) in constraints() {
            let mut options = PcfmOptions::uniform(20);
            options.final_projection = false;
            let u = pcfm_sample(&field, c.as_ref(), x0.clone(), &options).unwrap();
            let (got, base) = (worst(c.as_ref(), &u), worst(c.as_ref(), &free));
            eprintln!("pcfm without final projection {name}: {got:.3e} (unconstrained {base:.3e})");
            // The last step ends on the projection of û₁, so this is as tight as with it.
            assert!(got <= 1e-8 && got * 1e5 <= base, "{name}: {got:e} vs {base:e}");
        }
    }

    #[test]
    fn relaxed_correction_pulls_towards_the_constraint() {
        // A fixed mean on channel 0: ‖J‖² = 1/N², so any step size below ½ is stable.
        let (field, x0) = setup();
        let c = FixedMean::new([2, N, N], 0, 0.25).unwrap();
        let free = unconstrained(&field, x0.clone(), 10);
        let mut options = PcfmOptions::uniform(10);
        options.final_projection = false;
        // At τ' = 1 the relaxation pulls û₁ = P(û₁) towards h(u + γ v) = 0, i.e. off the
        // constraint by about γ J v; with γ = 0 it keeps the constraint exactly.
        options.relaxation = Some(Relaxation { lambda: 10.0, gamma: 0.0, steps: 5, step_size: 0.2 });
        let u = pcfm_sample(&field, &c, x0.clone(), &options).unwrap();
        assert!(worst(&c, &u) <= 1e-10, "{}", worst(&c, &u));
        options.relaxation = Some(Relaxation { lambda: 10.0, gamma: 0.05, steps: 5, step_size: 0.2 });
        let u = pcfm_sample(&field, &c, x0.clone(), &options).unwrap();
        let (got, base) = (worst(&c, &u), worst(&c, &free));
        eprintln!("relaxed fixed-mean: {got:.3e} vs unconstrained {base:.3e}");
        assert!(got < 1e-2 * base && got > 1e-8, "{got:e} vs {base:e}");
        // The final projection undoes the relaxation's drift.
        options.final_projection = true;
        let u = pcfm_sample(&field, &c, x0.clone(), &options).unwrap();
        assert!(worst(&c, &u) <= 1e-10, "{}", worst(&c, &u));
        options.relaxation = Some(Relaxation { lambda: -1.0, gamma: 0.0, steps: 1, step_size: 0.1 });
        let err = pcfm_sample(&field, &c, x0, &options).unwrap_err();
        assert!(matches!(err, PcfmError::Parameter { name: "lambda", .. }), "{err}");
    }

    #[test]
    fn bad_shapes_and_grids_are_errors() {
        let (field, x0) = setup();
        let c = FixedMean::new([3, N, N], 0, 0.0).unwrap();
        let err = pcfm_sample(&field, &c, x0.clone(), &PcfmOptions::uniform(4)).unwrap_err();
        assert!(matches!(err, PcfmError::Shape { what: "x0", .. }), "{err}");
        let err =
            project_after_sampling(&field, &c, x0.clone(), &Solver::Euler, &SolveOptions::uniform(4)).unwrap_err();
        assert!(matches!(err, PcfmError::Shape { what: "x0", .. }), "{err}");
        let c = FixedMean::new([2, N, N], 0, 0.0).unwrap();
        for grid in [vec![0.0], vec![0.0, 0.5, 0.5], vec![0.0, 1.5], vec![0.0, f64::NAN, 1.0]] {
            let err = pcfm_sample(&field, &c, x0.clone(), &PcfmOptions::grid(grid.clone())).unwrap_err();
            assert!(matches!(err, PcfmError::TimeGrid { .. }), "{grid:?}: {err}");
        }
        let wrong = |x: Tensor<4>, _t: f64| x.slice([0..1, 0..2]);
        let err = pcfm_sample(&wrong, &c, x0, &PcfmOptions::uniform(4)).unwrap_err();
        assert!(matches!(err, PcfmError::Shape { what: "velocity", .. }), "{err}");
    }
}
