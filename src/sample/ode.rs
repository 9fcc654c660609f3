//! ODE solvers for `dx/dt = v(x, t)` on a monotone time grid, forwards or backwards in time.
//!
//! With `h = t_{k+1} − t_k` (negative when integrating backwards) and `y = x(t_k)`:
//!
//! ```text
//! Euler      y + h k₁                                   k₁ = v(y, t)             order 1
//! Midpoint   y + h v(y + h/2 k₁, t + h/2)                                        order 2
//! Heun       y + h/2 (k₁ + k₂)                          k₂ = v(y + h k₁, t + h)  order 2
//! RK4        y + h/6 (k₁ + 2k₂ + 2k₃ + k₄)              (classic Runge–Kutta)    order 4
//! Dopri5     Dormand–Prince 5(4), adaptive, FSAL        (Dormand & Prince 1980)  order 5
//! ```
//!
//! Fixed-step methods take one step per grid interval. [`Dopri5`] takes adaptive steps between
//! the grid times (which are its output times; steps are shortened to land on them) with the
//! step-size control of `scipy.integrate.RK45` and `torchdiffeq`: the error estimate `e` of a
//! step `y → y'` is measured by the RMS norm
//!
//! ```text
//! ‖e‖ = sqrt( mean_i ( e_i / (atol + rtol · max(|y_i|, |y'_i|)) )² ),
//! ```
//!
//! taken over the whole batch (all samples share the step sizes, as in `torchdiffeq`); the step is
//! accepted when `‖e‖ ≤ 1` and the next step is `h · clamp(safety · ‖e‖^(−1/5), 0.2, 10)` (no
//! growth right after a rejection). The first step follows Hairer, Nørsett & Wanner (II.4) unless
//! given. Every method checks the state for NaN/∞ after each step and reports the time.
//!
//! Length: 616 lines of code, 202 of tests; kept together as one subject (the fixed-step and adaptive solvers over one state trait).

use burn::tensor::{Tensor, TensorReadError};
use thiserror::Error;

use super::VelocityField;

/// What can go wrong while integrating.
#[derive(Debug, Error)]
pub enum SolveError {
    /// The time grid has fewer than two times.
    #[error("time_grid needs at least two times, got {len}")]
    GridTooShort {
        /// The number of times given.
        len: usize,
    },
    /// A grid time is NaN or infinite.
    #[error("time_grid[{index}] = {value} is not finite")]
    NonFiniteGrid {
        /// Position in the grid.
        index: usize,
        /// The offending time.
        value: f64,
    },
    /// The grid is not strictly increasing or strictly decreasing.
    #[error("time_grid is not strictly monotone: time_grid[{index}] = {value} after {previous}")]
    NonMonotoneGrid {
        /// Position of the first time that breaks monotonicity.
        index: usize,
        /// That time.
        value: f64,
        /// The time before it.
        previous: f64,
    },
    /// A solver parameter is outside its valid range.
    #[error("invalid solver parameter `{name}` = {value}: {reason}")]
    Parameter {
        /// The parameter name.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The state became NaN or infinite.
    #[error("the state became NaN or infinite at t = {time}")]
    NonFinite {
        /// The time of the first non-finite state.
        time: f64,
    },
    /// The adaptive solver used up its step budget.
    #[error("max_steps = {max_steps} exceeded at t = {time} before reaching t = {target}")]
    MaxStepsExceeded {
        /// The step budget (accepted and rejected steps).
        max_steps: usize,
        /// Where the integration stopped.
        time: f64,
        /// The output time it was heading for.
        target: f64,
    },
    /// The adaptive solver needed a step shorter than `min_step`.
    #[error("step size {step} below min_step = {min_step} at t = {time}")]
    StepTooSmall {
        /// The step size the controller asked for.
        step: f64,
        /// The configured minimum.
        min_step: f64,
        /// Where the integration stopped.
        time: f64,
    },
    /// A tensor could not be read back from the device.
    #[error("reading the state from the device failed: {0}")]
    Read(#[from] TensorReadError),
}

/// Adaptive Dormand–Prince 5(4) parameters (defaults: `atol = rtol = 1e-5`, `safety = 0.9`,
/// `min_step = 1e-8`, `max_steps = 10_000`, automatic first step).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dopri5 {
    /// Absolute tolerance (≥ 0).
    pub atol: f64,
    /// Relative tolerance (≥ 0; `atol` and `rtol` are not both 0).
    pub rtol: f64,
    /// Safety factor of the step-size controller, in `(0, 1]`.
    pub safety: f64,
    /// Smallest step size allowed before giving up (≥ 0).
    pub min_step: f64,
    /// Largest number of step attempts (accepted plus rejected) over the whole integration.
    pub max_steps: usize,
    /// The first step size; `None` chooses it from the field (one extra evaluation).
    pub first_step: Option<f64>,
}

impl Default for Dopri5 {
    fn default() -> Self {
        Self { atol: 1e-5, rtol: 1e-5, safety: 0.9, min_step: 1e-8, max_steps: 10_000, first_step: None }
    }
}

impl Dopri5 {
    /// The default parameters with `atol = rtol = tol`.
    pub fn with_tolerance(tol: f64) -> Self {
        Self { atol: tol, rtol: tol, ..Self::default() }
    }

    fn validate(&self) -> Result<(), SolveError> {
        let bad = |name, value: f64, reason| Err(SolveError::Parameter { name, value, reason });
        if !(self.atol >= 0.0 && self.atol.is_finite()) {
            return bad("atol", self.atol, "must be finite and >= 0");
        }
        if !(self.rtol >= 0.0 && self.rtol.is_finite()) {
            return bad("rtol", self.rtol, "must be finite and >= 0");
        }
        if self.atol == 0.0 && self.rtol == 0.0 {
            return bad("atol", self.atol, "atol and rtol cannot both be 0");
        }
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            return bad("safety", self.safety, "must be in (0, 1]");
        }
        if !(self.min_step >= 0.0 && self.min_step.is_finite()) {
            return bad("min_step", self.min_step, "must be finite and >= 0");
        }
        if self.max_steps == 0 {
            return bad("max_steps", 0.0, "must be at least 1");
        }
        if let Some(h) = self.first_step
            && !(h > 0.0 && h.is_finite())
        {
            return bad("first_step", h, "must be finite and > 0");
        }
        Ok(())
    }
}

/// An ODE solver.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// Forward Euler, order 1, one evaluation per step.
    Euler,
    /// Explicit midpoint, order 2, two evaluations per step.
    Midpoint,
    /// Heun's method (explicit trapezoid), order 2, two evaluations per step.
    Heun,
    /// Classic Runge–Kutta, order 4, four evaluations per step.
    Rk4,
    /// Adaptive Dormand–Prince 5(4); the grid gives the output times.
    Dopri5(Dopri5),
}

/// Where to integrate and what to return.
#[derive(Debug, Clone, PartialEq)]
pub struct SolveOptions {
    /// The times: strictly increasing (e.g. `0 → 1`, sampling) or strictly decreasing
    /// (`1 → 0`, inversion). Fixed-step solvers take one step per interval; [`Dopri5`] returns
    /// the state at each of them. Custom, non-uniform grids are allowed.
    pub time_grid: Vec<f64>,
    /// Whether to return the state at every grid time (including the first).
    pub return_intermediates: bool,
}

impl SolveOptions {
    /// `steps` uniform steps from 0 to 1 (`linspace(0, 1, steps + 1)`), final state only.
    pub fn uniform(steps: usize) -> Self {
        Self { time_grid: linspace(0.0, 1.0, steps), return_intermediates: false }
    }

    /// `steps` uniform steps from 1 back to 0, final state only.
    pub fn reverse(steps: usize) -> Self {
        Self { time_grid: linspace(1.0, 0.0, steps), return_intermediates: false }
    }

    /// A custom grid, final state only.
    pub fn grid(time_grid: Vec<f64>) -> Self {
        Self { time_grid, return_intermediates: false }
    }

    /// The same options, returning the state at every grid time.
    pub fn with_intermediates(mut self) -> Self {
        self.return_intermediates = true;
        self
    }
}

impl Default for SolveOptions {
    /// 100 uniform steps from 0 to 1.
    fn default() -> Self {
        Self::uniform(100)
    }
}

/// `steps + 1` equally spaced times from `a` to `b` (both included exactly; `[a]` for 0 steps,
/// which the solvers reject as too short a grid).
pub fn linspace(a: f64, b: f64, steps: usize) -> Vec<f64> {
    if steps == 0 {
        return vec![a];
    }
    (0..=steps).map(|k| if k == steps { b } else { a + (b - a) * k as f64 / steps as f64 }).collect()
}

/// The result of [`solve`].
#[derive(Debug, Clone)]
pub struct Solution<const D: usize> {
    /// The state at the last grid time.
    pub x: Tensor<D>,
    /// `(t, x(t))` at every grid time (first included) when requested, else empty.
    pub intermediates: Vec<(f64, Tensor<D>)>,
    /// Number of velocity evaluations.
    pub nfe: usize,
    /// Number of accepted steps.
    pub steps: usize,
}

/// Integrates `dx/dt = field(x, t)` from `x0` at `time_grid[0]` to the last grid time.
///
/// # Shapes
/// - `x0`: `[batch, ...]`; `Solution::x` and the intermediates: the shape of `x0`
///
/// # Errors
/// A grid with fewer than two times, non-finite or not strictly monotone
/// ([`SolveError::NonMonotoneGrid`]); invalid [`Dopri5`] parameters; a NaN or infinite state
/// ([`SolveError::NonFinite`], with the time); an exhausted step budget or too small a step
/// (adaptive solver); a failed read-back from the device.
pub fn solve<const D: usize, F>(
    field: &F,
    x0: Tensor<D>,
    solver: &Solver,
    options: &SolveOptions,
) -> Result<Solution<D>, SolveError>
where
    F: VelocityField<D> + ?Sized,
{
    let out = integrate(
        |x: &Tensor<D>, t| field.velocity(x.clone(), t),
        x0,
        solver,
        &options.time_grid,
        options.return_intermediates,
    )?;
    Ok(Solution { x: out.state, intermediates: out.intermediates, nfe: out.nfe, steps: out.steps })
}

/// A state the solvers can integrate: a tensor, or a tensor with extra components (the
/// likelihood's `(x, log-determinant)` pair).
pub(crate) trait OdeState: Clone {
    /// `self + a k`.
    fn axpy(self, a: f64, k: &Self) -> Self;
    /// `self + k`.
    fn plus(self, k: &Self) -> Self;
    /// `a · self`.
    fn scale(self, a: f64) -> Self;
    /// `Σ_i (e_i / (atol + rtol · max(|y_i|, |z_i|)))²` over all components, as a 1-element tensor.
    fn weighted_sq_sum(e: &Self, y: &Self, z: &Self, atol: f64, rtol: f64) -> Tensor<1>;
    /// The number of scalar components.
    fn len(&self) -> usize;
    /// Whether every component is finite (reads back one scalar in the common case).
    fn is_finite(&self) -> Result<bool, TensorReadError>;
}

impl<const D: usize> OdeState for Tensor<D> {
    fn axpy(self, a: f64, k: &Self) -> Self {
        self + k.clone().mul_scalar(a)
    }

    fn plus(self, k: &Self) -> Self {
        self + k.clone()
    }

    fn scale(self, a: f64) -> Self {
        self.mul_scalar(a)
    }

    fn weighted_sq_sum(e: &Self, y: &Self, z: &Self, atol: f64, rtol: f64) -> Tensor<1> {
        let tol = y.clone().abs().max_pair(z.clone().abs()).mul_scalar(rtol).add_scalar(atol);
        (e.clone() / tol).square().sum()
    }

    fn len(&self) -> usize {
        self.dims().iter().product()
    }

    fn is_finite(&self) -> Result<bool, TensorReadError> {
        // The sum is finite for every finite state short of f32 overflow; confirm elementwise
        // only when it is not.
        let sum = self.clone().sum().try_into_scalar::<f32>()?;
        if sum.is_finite() {
            return Ok(true);
        }
        self.clone().is_finite().all().try_into_scalar::<bool>()
    }
}

impl<const D: usize, const E: usize> OdeState for (Tensor<D>, Tensor<E>) {
    fn axpy(self, a: f64, k: &Self) -> Self {
        (self.0.axpy(a, &k.0), self.1.axpy(a, &k.1))
    }

    fn plus(self, k: &Self) -> Self {
        (self.0.plus(&k.0), self.1.plus(&k.1))
    }

    fn scale(self, a: f64) -> Self {
        (self.0.scale(a), self.1.scale(a))
    }

    fn weighted_sq_sum(e: &Self, y: &Self, z: &Self, atol: f64, rtol: f64) -> Tensor<1> {
        OdeState::weighted_sq_sum(&e.0, &y.0, &z.0, atol, rtol)
            + OdeState::weighted_sq_sum(&e.1, &y.1, &z.1, atol, rtol)
    }

    fn len(&self) -> usize {
        self.0.len() + self.1.len()
    }

    fn is_finite(&self) -> Result<bool, TensorReadError> {
        Ok(OdeState::is_finite(&self.0)? && OdeState::is_finite(&self.1)?)
    }
}

/// The generic result of [`integrate`].
pub(crate) struct Trajectory<S> {
    pub state: S,
    pub intermediates: Vec<(f64, S)>,
    pub nfe: usize,
    pub steps: usize,
}

/// Checks that `grid` has at least two finite, strictly monotone times.
pub(crate) fn validate_grid(grid: &[f64]) -> Result<(), SolveError> {
    if grid.len() < 2 {
        return Err(SolveError::GridTooShort { len: grid.len() });
    }
    if let Some((index, &value)) = grid.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(SolveError::NonFiniteGrid { index, value });
    }
    let increasing = grid[1] > grid[0];
    for (index, w) in grid.windows(2).enumerate() {
        let ok = if increasing { w[1] > w[0] } else { w[1] < w[0] };
        if !ok {
            return Err(SolveError::NonMonotoneGrid { index: index + 1, value: w[1], previous: w[0] });
        }
    }
    Ok(())
}

/// Integrates `dy/dt = f(y, t)` over `grid` with `solver`.
pub(crate) fn integrate<S, F>(
    mut f: F,
    y0: S,
    solver: &Solver,
    grid: &[f64],
    keep: bool,
) -> Result<Trajectory<S>, SolveError>
where
    S: OdeState,
    F: FnMut(&S, f64) -> S,
{
    validate_grid(grid)?;
    if !y0.is_finite()? {
        return Err(SolveError::NonFinite { time: grid[0] });
    }
    match solver {
        Solver::Dopri5(params) => {
            params.validate()?;
            dopri5(&mut f, y0, params, grid, keep)
        }
        fixed => {
            let mut out = Trajectory { state: y0, intermediates: Vec::new(), nfe: 0, steps: 0 };
            if keep {
                out.intermediates.push((grid[0], out.state.clone()));
            }
            for w in grid.windows(2) {
                let (y, nfe) = fixed_step(fixed, &mut f, &out.state, w[0], w[1]);
                if !y.is_finite()? {
                    return Err(SolveError::NonFinite { time: w[1] });
                }
                out.state = y;
                out.nfe += nfe;
                out.steps += 1;
                if keep {
                    out.intermediates.push((w[1], out.state.clone()));
                }
            }
            Ok(out)
        }
    }
}

/// One fixed step from `t0` to `t1`; returns the new state and the number of evaluations.
///
/// The increment is formed first and added to the state once, so that an accumulating component
/// (the likelihood's log-determinant) takes one rounding per step.
fn fixed_step<S, F>(solver: &Solver, f: &mut F, y: &S, t0: f64, t1: f64) -> (S, usize)
where
    S: OdeState,
    F: FnMut(&S, f64) -> S,
{
    let h = t1 - t0;
    let tm = t0 + 0.5 * h;
    match solver {
        Solver::Euler => (y.clone().axpy(h, &f(y, t0)), 1),
        Solver::Midpoint => {
            let k1 = f(y, t0);
            let k2 = f(&y.clone().axpy(0.5 * h, &k1), tm);
            (y.clone().axpy(h, &k2), 2)
        }
        Solver::Heun => {
            let k1 = f(y, t0);
            let k2 = f(&y.clone().axpy(h, &k1), t1);
            (y.clone().plus(&k1.scale(0.5 * h).axpy(0.5 * h, &k2)), 2)
        }
        // Dopri5 never reaches here; treat it (unreachably) as RK4 rather than panic.
        Solver::Rk4 | Solver::Dopri5(_) => {
            let k1 = f(y, t0);
            let k2 = f(&y.clone().axpy(0.5 * h, &k1), tm);
            let k3 = f(&y.clone().axpy(0.5 * h, &k2), tm);
            let k4 = f(&y.clone().axpy(h, &k3), t1);
            let increment = k1.scale(h / 6.0).axpy(h / 3.0, &k2).axpy(h / 3.0, &k3).axpy(h / 6.0, &k4);
            (y.clone().plus(&increment), 4)
        }
    }
}

/// The average slope `(y(t1) − y)/h` of one fixed step of `solver` from `(y, t0)` to `t1`, on
/// `f64` arrays with a fallible velocity: the stages of [`fixed_step`] (Euler `k₁`, midpoint
/// `k₂`, Heun `½(k₁ + k₂)`, RK4 `(k₁ + 2k₂ + 2k₃ + k₄)/6`). PCFM shoots with it, so its predictor
/// is any of the fixed-step solvers. Returns the slope and the number of evaluations.
///
/// # Errors
/// Whatever `f` returns; `solver` must be a fixed-step solver (the adaptive [`Dopri5`] is
/// evaluated as RK4, as in [`fixed_step`]).
pub(crate) fn fixed_slope<E>(
    solver: &Solver,
    mut f: impl FnMut(&ndarray::Array4<f64>, f64) -> Result<ndarray::Array4<f64>, E>,
    y: &ndarray::Array4<f64>,
    t0: f64,
    t1: f64,
) -> Result<(ndarray::Array4<f64>, usize), E> {
    let h = t1 - t0;
    let tm = t0 + 0.5 * h;
    Ok(match solver {
        Solver::Euler => (f(y, t0)?, 1),
        Solver::Midpoint => {
            let k1 = f(y, t0)?;
            (f(&(y + &(&k1 * (0.5 * h))), tm)?, 2)
        }
        Solver::Heun => {
            let k1 = f(y, t0)?;
            let k2 = f(&(y + &(&k1 * h)), t1)?;
            ((k1 + k2) * 0.5, 2)
        }
        Solver::Rk4 | Solver::Dopri5(_) => {
            let k1 = f(y, t0)?;
            let k2 = f(&(y + &(&k1 * (0.5 * h))), tm)?;
            let k3 = f(&(y + &(&k2 * (0.5 * h))), tm)?;
            let k4 = f(&(y + &(&k3 * h)), t1)?;
            ((k1 + (k2 + k3) * 2.0 + k4) / 6.0, 4)
        }
    })
}

// Dormand–Prince 5(4) tableau (Hairer, Nørsett & Wanner, Table II.5.2).
const C: [f64; 6] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0];
const A2: [f64; 1] = [1.0 / 5.0];
const A3: [f64; 2] = [3.0 / 40.0, 9.0 / 40.0];
const A4: [f64; 3] = [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0];
const A5: [f64; 4] = [19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0];
const A6: [f64; 5] = [9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0];
/// Fifth-order weights (k₂'s weight is 0); also the stage-7 row (FSAL).
const B: [f64; 6] = [35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0];
/// Fifth minus fourth-order weights over k₁…k₇ (as in SciPy's `RK45.E`).
const E: [f64; 7] =
    [-71.0 / 57600.0, 0.0, 71.0 / 16695.0, -71.0 / 1920.0, 17253.0 / 339200.0, -22.0 / 525.0, 1.0 / 40.0];
const MIN_FACTOR: f64 = 0.2;
const MAX_FACTOR: f64 = 10.0;
/// `−1 / (q + 1)` with `q = 4`, the order of the embedded error estimate.
const ERROR_EXPONENT: f64 = -1.0 / 5.0;

/// `h Σ_j a_j k_j` (zero weights skipped; `a[0]` is not zero in any use).
fn weighted<S: OdeState>(h: f64, a: &[f64], k: &[S]) -> S {
    let first = k[0].clone().scale(h * a[0]);
    a.iter().zip(k).skip(1).filter(|(aj, _)| **aj != 0.0).fold(first, |acc, (aj, kj)| acc.axpy(h * aj, kj))
}

/// RMS of the weighted components, read back as `f64`.
fn rms<S: OdeState>(e: &S, y: &S, z: &S, atol: f64, rtol: f64) -> Result<f64, TensorReadError> {
    let sum = S::weighted_sq_sum(e, y, z, atol, rtol).try_into_scalar::<f32>()?;
    Ok((f64::from(sum) / y.len().max(1) as f64).sqrt())
}

/// The initial step of Hairer, Nørsett & Wanner (II.4), as in SciPy's `select_initial_step`.
fn initial_step<S, F>(f: &mut F, y0: &S, f0: &S, t0: f64, span: f64, p: &Dopri5) -> Result<f64, SolveError>
where
    S: OdeState,
    F: FnMut(&S, f64) -> S,
{
    let dir = span.signum();
    let d0 = rms(y0, y0, y0, p.atol, p.rtol)?;
    let d1 = rms(f0, y0, y0, p.atol, p.rtol)?;
    let h0 = if d0 < 1e-5 || d1 < 1e-5 || !d1.is_finite() { 1e-6 } else { 0.01 * d0 / d1 };
    let h0 = h0.min(span.abs());
    let y1 = y0.clone().axpy(dir * h0, f0);
    let f1 = f(&y1, t0 + dir * h0);
    let d2 = rms(&f1.axpy(-1.0, f0), y0, y0, p.atol, p.rtol)? / h0;
    let h1 = if d1.max(d2) <= 1e-15 || !d2.is_finite() {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(-ERROR_EXPONENT)
    };
    Ok((100.0 * h0).min(h1).min(span.abs()))
}

fn dopri5<S, F>(f: &mut F, y0: S, p: &Dopri5, grid: &[f64], keep: bool) -> Result<Trajectory<S>, SolveError>
where
    S: OdeState,
    F: FnMut(&S, f64) -> S,
{
    let t_first = grid[0];
    let span = grid[grid.len() - 1] - t_first;
    let dir = span.signum();
    let mut out = Trajectory { state: y0, intermediates: Vec::new(), nfe: 0, steps: 0 };
    if keep {
        out.intermediates.push((t_first, out.state.clone()));
    }
    let mut t = t_first;
    let mut k1 = f(&out.state, t);
    out.nfe += 1;
    let mut h_abs = match p.first_step {
        Some(h) => h,
        None => {
            out.nfe += 1;
            initial_step(f, &out.state, &k1, t, span, p)?
        }
    };
    let mut attempts = 0usize;
    for &target in &grid[1..] {
        let mut rejected = false;
        while t != target {
            if attempts >= p.max_steps {
                return Err(SolveError::MaxStepsExceeded { max_steps: p.max_steps, time: t, target });
            }
            if h_abs < p.min_step {
                return Err(SolveError::StepTooSmall { step: h_abs, min_step: p.min_step, time: t });
            }
            attempts += 1;
            let remaining = (target - t).abs();
            let clamped = h_abs >= remaining;
            let (h_used, t_new) = if clamped { (remaining, target) } else { (h_abs, t + dir * h_abs) };
            let h = dir * h_used;
            let y = &out.state;
            let mut k = vec![k1.clone()];
            for (i, a) in [&A2[..], &A3[..], &A4[..], &A5[..], &A6[..]].into_iter().enumerate() {
                let yi = y.clone().plus(&weighted(h, a, &k));
                let ti = if C[i + 1] == 1.0 { t_new } else { t + C[i + 1] * h };
                k.push(f(&yi, ti));
            }
            let y_new = y.clone().plus(&weighted(h, &B, &k));
            let k7 = f(&y_new, t_new);
            out.nfe += 6;
            k.push(k7);
            let err = weighted(h, &E, &k);
            let ratio = rms(&err, y, &y_new, p.atol, p.rtol)?;
            if !ratio.is_finite() {
                return Err(SolveError::NonFinite { time: t_new });
            }
            if ratio <= 1.0 {
                let mut factor =
                    if ratio == 0.0 { MAX_FACTOR } else { (p.safety * ratio.powf(ERROR_EXPONENT)).min(MAX_FACTOR) };
                if rejected {
                    factor = factor.min(1.0);
                }
                let proposal = h_used * factor;
                // A step shortened to land on an output time says little about the natural step.
                h_abs = if clamped { proposal.max(h_abs) } else { proposal };
                t = t_new;
                out.state = y_new;
                k1 = k.swap_remove(6);
                out.steps += 1;
                rejected = false;
            } else {
                h_abs = h_used * (p.safety * ratio.powf(ERROR_EXPONENT)).max(MIN_FACTOR);
                rejected = true;
            }
        }
        if keep {
            out.intermediates.push((target, out.state.clone()));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn tensor(values: &[f64], shape: [usize; 2]) -> Tensor<2> {
        let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), &Device::default())
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
    }

    /// Decay rate `a` and angular speed `w` of the linear test field `dx/dt = A x`,
    /// `A = [[−a, −w], [w, −a]]`.
    const DECAY: f64 = 0.5;
    const OMEGA: f64 = 4.0;

    /// `dx/dt = A x` on a batch of points `[batch, 2]`.
    fn rotation_decay(x: Tensor<2>, _t: f64) -> Tensor<2> {
        let a = tensor(&[-DECAY, OMEGA, -OMEGA, -DECAY], [2, 2]); // Aᵀ, since rows are points
        x.matmul(a)
    }

    /// `exp(A t) x0` in closed form: `e^{−a t}` times a rotation by `w t`.
    fn rotation_decay_exact(x0: &[f64], t: f64) -> Vec<f64> {
        let (s, c) = (OMEGA * t).sin_cos();
        let g = (-DECAY * t).exp();
        x0.chunks(2).flat_map(|p| [g * (c * p[0] - s * p[1]), g * (s * p[0] + c * p[1])]).collect()
    }

    /// `dx/dt = (1 + 2 cos 3t) x`, exact `x(t) = x0 exp(t + (2/3) sin 3t)`.
    fn time_dependent(x: Tensor<2>, t: f64) -> Tensor<2> {
        x.mul_scalar(1.0 + 2.0 * (3.0 * t).cos())
    }

    fn time_dependent_exact(x0: &[f64], t: f64) -> Vec<f64> {
        let g = (t + 2.0 / 3.0 * (3.0 * t).sin()).exp();
        x0.iter().map(|v| v * g).collect()
    }

    type Field = fn(Tensor<2>, f64) -> Tensor<2>;

    const POINTS: [f64; 8] = [1.0, 0.0, -0.5, 0.75, 0.3, -1.2, 2.0, 1.0];

    fn max_error(got: &[f64], want: &[f64]) -> f64 {
        got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
    }

    fn error_at_one(field: Field, exact: &[f64], solver: Solver, steps: usize) -> f64 {
        let x0 = tensor(&POINTS, [4, 2]);
        let sol = solve(&field, x0, &solver, &SolveOptions::uniform(steps)).unwrap();
        max_error(&values(sol.x), exact)
    }

    /// `log2(e(n) / e(2n))` for the step counts `n = steps[i]`.
    fn observed_orders(field: Field, exact: &[f64], solver: Solver, steps: &[usize]) -> Vec<f64> {
        let errors: Vec<f64> = steps.iter().map(|&n| error_at_one(field, exact, solver, n)).collect();
        errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect()
    }

    fn assert_order(name: &str, orders: &[f64], want: f64) {
        for o in orders {
            assert!((o - want).abs() <= 0.25, "{name}: observed orders {orders:?}, expected {want}");
        }
    }

    #[test]
    fn fixed_step_orders_on_the_linear_field() {
        let exact = rotation_decay_exact(&POINTS, 1.0);
        let cases = [
            (Solver::Euler, &[64, 128, 256][..], 1.0),
            (Solver::Midpoint, &[16, 32, 64][..], 2.0),
            (Solver::Heun, &[16, 32, 64][..], 2.0),
            (Solver::Rk4, &[8, 16, 32][..], 4.0),
        ];
        for (solver, steps, order) in cases {
            let orders = observed_orders(rotation_decay, &exact, solver, steps);
            println!("linear {solver:?} {steps:?}: {orders:?}");
            assert_order(&format!("{solver:?}"), &orders, order);
        }
    }

    #[test]
    fn fixed_step_orders_on_the_time_dependent_field() {
        let exact = time_dependent_exact(&POINTS, 1.0);
        let cases = [
            (Solver::Euler, &[16, 32, 64][..], 1.0),
            (Solver::Midpoint, &[16, 32, 64][..], 2.0),
            (Solver::Heun, &[16, 32, 64][..], 2.0),
            (Solver::Rk4, &[4, 8, 16][..], 4.0),
        ];
        for (solver, steps, order) in cases {
            let orders = observed_orders(time_dependent, &exact, solver, steps);
            println!("time-dependent {solver:?} {steps:?}: {orders:?}");
            assert_order(&format!("{solver:?}"), &orders, order);
        }
    }

    #[test]
    fn dopri5_meets_its_tolerance_and_tighter_tolerances_take_more_steps() {
        let cases: [(Field, Vec<f64>); 2] = [
            (rotation_decay, rotation_decay_exact(&POINTS, 1.0)),
            (time_dependent, time_dependent_exact(&POINTS, 1.0)),
        ];
        for (field, exact) in cases {
            let mut previous_steps = 0;
            for tol in [1e-3, 1e-4, 1e-5] {
                let solver = Solver::Dopri5(Dopri5::with_tolerance(tol));
                let sol = solve(&field, tensor(&POINTS, [4, 2]), &solver, &SolveOptions::uniform(1)).unwrap();
                let err = max_error(&values(sol.x), &exact);
                println!("dopri5 tol {tol:e}: error {err:.2e}, {} steps, {} evaluations", sol.steps, sol.nfe);
                assert!(err <= 10.0 * tol, "tol {tol}: error {err}");
                assert!(sol.steps > previous_steps, "tol {tol}: {} steps", sol.steps);
                // FSAL: one evaluation to start, one for the first step size, six per attempt.
                assert!(sol.nfe >= 2 + 6 * sol.steps && (sol.nfe - 2) % 6 == 0, "nfe {}", sol.nfe);
                previous_steps = sol.steps;
            }
        }
    }

    #[test]
    fn backwards_integration_returns_to_the_start() {
        let x0 = tensor(&POINTS, [4, 2]);
        for solver in [Solver::Rk4, Solver::Dopri5(Dopri5::with_tolerance(1e-6))] {
            let there = solve(&rotation_decay, x0.clone(), &solver, &SolveOptions::uniform(64)).unwrap();
            let back = solve(&rotation_decay, there.x, &solver, &SolveOptions::reverse(64)).unwrap();
            let err = max_error(&values(back.x), &POINTS);
            assert!(err < 2e-5, "{solver:?}: round trip error {err}");
        }
        // From the exact x(1) of the time-dependent field, backwards to x(0).
        let x1 = tensor(&time_dependent_exact(&POINTS, 1.0), [4, 2]);
        let back = solve(&time_dependent, x1, &Solver::Rk4, &SolveOptions::reverse(64)).unwrap();
        assert!(max_error(&values(back.x), &POINTS) < 1e-5);
    }

    #[test]
    fn intermediates_are_returned_at_every_grid_time() {
        let grid = vec![0.0, 0.05, 0.2, 0.25, 0.6, 1.0];
        let options = SolveOptions::grid(grid.clone()).with_intermediates();
        // A fine custom grid for RK4, and the same grid as output times for Dopri5.
        let fine: Vec<f64> = (0..=200).map(|k| (k as f64 / 200.0).powi(2)).collect();
        let fine_options = SolveOptions::grid(fine.clone()).with_intermediates();
        for (solver, opts, times) in
            [(Solver::Dopri5(Dopri5::with_tolerance(1e-6)), &options, &grid), (Solver::Rk4, &fine_options, &fine)]
        {
            let sol = solve(&time_dependent, tensor(&POINTS, [4, 2]), &solver, opts).unwrap();
            assert_eq!(sol.intermediates.len(), times.len());
            for ((t, x), want_t) in sol.intermediates.iter().zip(times.iter()) {
                assert_eq!(t, want_t);
                let err = max_error(&values(x.clone()), &time_dependent_exact(&POINTS, *t));
                assert!(err < 1e-4, "{solver:?} at t = {t}: error {err}");
            }
            assert_eq!(values(sol.x), values(sol.intermediates[times.len() - 1].1.clone()));
        }
        assert!(matches!(
            solve(&time_dependent, tensor(&POINTS, [4, 2]), &Solver::Euler, &SolveOptions::uniform(0)),
            Err(SolveError::GridTooShort { len: 1 })
        ));
        let plain = solve(&time_dependent, tensor(&POINTS, [4, 2]), &Solver::Euler, &SolveOptions::uniform(4)).unwrap();
        assert!(plain.intermediates.is_empty());
        assert_eq!((plain.steps, plain.nfe), (4, 4));
    }

    #[test]
    fn nan_states_report_their_time() {
        let blows_up = |x: Tensor<2>, t: f64| if t > 0.55 { x.mul_scalar(f64::NAN) } else { x };
        let x0 = tensor(&POINTS, [4, 2]);
        let err = solve(&blows_up, x0.clone(), &Solver::Euler, &SolveOptions::uniform(10)).unwrap_err();
        assert!(matches!(err, SolveError::NonFinite { time } if (time - 0.7).abs() < 1e-12), "{err}");
        let err = solve(&blows_up, x0, &Solver::Dopri5(Dopri5::default()), &SolveOptions::uniform(10)).unwrap_err();
        assert!(matches!(err, SolveError::NonFinite { time } if time > 0.55 && time <= 1.0), "{err}");
    }

    #[test]
    fn bad_grids_and_parameters_are_errors() {
        let x0 = || tensor(&POINTS, [4, 2]);
        let run = |grid: Vec<f64>, solver: Solver| solve(&rotation_decay, x0(), &solver, &SolveOptions::grid(grid));
        assert!(matches!(run(vec![0.0], Solver::Euler), Err(SolveError::GridTooShort { len: 1 })));
        assert!(matches!(
            run(vec![0.0, 0.5, 0.4, 1.0], Solver::Rk4),
            Err(SolveError::NonMonotoneGrid { index: 2, .. })
        ));
        assert!(matches!(
            run(vec![1.0, 0.5, 0.5, 0.0], Solver::Heun),
            Err(SolveError::NonMonotoneGrid { index: 2, .. })
        ));
        assert!(matches!(run(vec![0.0, f64::NAN], Solver::Midpoint), Err(SolveError::NonFiniteGrid { index: 1, .. })));
        let bad = Dopri5 { rtol: -1.0, ..Dopri5::default() };
        let err = run(vec![0.0, 1.0], Solver::Dopri5(bad)).unwrap_err();
        assert!(matches!(err, SolveError::Parameter { name: "rtol", .. }), "{err}");
        assert!(err.to_string().contains("rtol"));
        let short = Dopri5 { max_steps: 3, ..Dopri5::with_tolerance(1e-7) };
        let err = run(vec![0.0, 1.0], Solver::Dopri5(short)).unwrap_err();
        assert!(matches!(err, SolveError::MaxStepsExceeded { max_steps: 3, .. }), "{err}");
        let tiny = Dopri5 { min_step: 0.5, first_step: Some(0.1), ..Dopri5::default() };
        assert!(matches!(run(vec![0.0, 1.0], Solver::Dopri5(tiny)), Err(SolveError::StepTooSmall { .. })));
    }
}
