//! Exact log-likelihoods of a flow by the instantaneous change of variables.
//!
//! Along a solution of `dx/dt = v(x, t)` the log-density obeys `d/dt log p_t(x_t) = −∇·v(x_t, t)`
//! (Chen et al. 2018; FFJORD, Grathwohl et al. 2019). Integrating the augmented ODE
//!
//! ```text
//! d/dt [x; ℓ] = [v(x, t); ∇·v(x, t)],      x(1) = x₁, ℓ(1) = 0,
//! ```
//!
//! backwards from `t = 1` to `t = 0` gives the source point `x₀ = x(0)` and
//! `ℓ(0) = −∫₀¹ ∇·v(x_t, t) dt`, so that
//!
//! ```text
//! log p₁(x₁) = log p₀(x₀) + ℓ(0) = log p₀(x₀) − ∫₀¹ ∇·v(x_t, t) dt
//! ```
//!
//! (the `flow_matching` library's `ODESolver.compute_likelihood`). The divergence is either
//! exact, `Σ_i ∂v_i/∂x_i` by autodiff ([`exact_divergence`], cost proportional to the dimension:
//! for small states), or Hutchinson's unbiased estimate `εᵀ (∂v/∂x) ε` with `E[εεᵀ] = I`
//! ([`hutchinson_divergence`], one vector–Jacobian product), whose probes `ε` are drawn once per
//! sample from `fieldflow_pde::rng::stream(seed, index)` and kept fixed over the whole
//! integration, so the estimated `log p₁` is a smooth function of `x₁` (FFJORD).

use std::f64::consts::PI;

use burn::tensor::{Device, Tensor, TensorData};
use fieldflow_pde::rng::stream;
use rand::RngExt;
use rand_distr::StandardNormal;
use thiserror::Error;

use super::VelocityField;
use super::ode::{SolveError, Solver, integrate, linspace, validate_grid};

/// What can go wrong computing a likelihood.
#[derive(Debug, Error)]
pub enum LikelihoodError {
    /// The backwards integration failed (bad grid or parameters, NaN state, step budget).
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// The time grid runs forwards; the likelihood integrates from the data back to the source.
    #[error("time_grid must decrease (from 1 to 0), but runs from {first} to {last}")]
    Direction {
        /// The first grid time.
        first: f64,
        /// The last grid time.
        last: f64,
    },
    /// The source log-density returned the wrong shape.
    #[error("the source log-density returned shape {got:?}, expected [{batch}] (one value per sample)")]
    SourceShape {
        /// The batch size.
        batch: usize,
        /// The shape it returned.
        got: Vec<usize>,
    },
}

/// The distribution of Hutchinson probes (both have `E[εεᵀ] = I`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Independent ±1 entries (the smaller variance: `2 Σ_{i≠j} J_ij²`-type, exact for diagonal
    /// Jacobians).
    Rademacher,
    /// Independent standard normal entries (variance `2 ‖sym(J)‖_F²`).
    Gaussian,
}

/// How to compute `∇·v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// `Σ_i ∂v_i/∂x_i` by autodiff; the cost grows with the per-sample dimension, so use it for
    /// small states (say up to a few hundred components).
    Exact,
    /// Hutchinson's estimator with one probe per sample, drawn from
    /// `stream(seed, first_index + i)` for batch row `i` and fixed over the integration.
    Hutchinson {
        /// The probe distribution.
        probe: Probe,
        /// The seed of the probe streams.
        seed: u64,
        /// The global index of the batch's first sample.
        first_index: u64,
    },
}

/// How to integrate the likelihood ODE.
#[derive(Debug, Clone, PartialEq)]
pub struct LikelihoodOptions {
    /// The solver (fixed-step or adaptive; the adaptive error norm includes `ℓ`).
    pub solver: Solver,
    /// Strictly decreasing times, normally from 1 to 0; the source density is evaluated at the
    /// state reached at the last time.
    pub time_grid: Vec<f64>,
    /// The divergence computation.
    pub divergence: Divergence,
}

impl LikelihoodOptions {
    /// `steps` uniform steps from 1 to 0.
    pub fn new(solver: Solver, steps: usize, divergence: Divergence) -> Self {
        Self { solver, time_grid: linspace(1.0, 0.0, steps), divergence }
    }
}

impl Default for LikelihoodOptions {
    /// RK4 with 100 steps and the exact divergence.
    fn default() -> Self {
        Self::new(Solver::Rk4, 100, Divergence::Exact)
    }
}

/// The result of [`log_likelihood`].
#[derive(Debug, Clone)]
pub struct Likelihood<const D: usize> {
    /// The source points `x₀`, the backwards solution at the last grid time.
    pub x0: Tensor<D>,
    /// `log p₁(x₁)` per sample, `[batch]`.
    pub log_p1: Tensor<1>,
    /// `log p₀(x₀)` per sample, `[batch]`.
    pub log_p0: Tensor<1>,
    /// Number of evaluations of the augmented dynamics (each one velocity forward and backward).
    pub nfe: usize,
    /// Number of accepted steps.
    pub steps: usize,
}

/// `log p₁(x₁)` under the flow of `field` from the source density `source_log_density`.
///
/// `field` is evaluated on tensors with autodiff enabled (see [`VelocityField`]); the source
/// log-density maps a batch `x₀` to `[batch]` log-densities (e.g.
/// [`standard_normal_log_density`]).
///
/// # Shapes
/// - `x1`: `[batch, ...]`; `Likelihood::x0`: the same; `log_p1`, `log_p0`: `[batch]`
///
/// # Errors
/// An increasing grid ([`LikelihoodError::Direction`]); everything [`super::solve`] reports; a
/// source log-density of the wrong shape.
pub fn log_likelihood<const D: usize, F, L>(
    field: &F,
    x1: Tensor<D>,
    source_log_density: L,
    options: &LikelihoodOptions,
) -> Result<Likelihood<D>, LikelihoodError>
where
    F: VelocityField<D> + ?Sized,
    L: Fn(&Tensor<D>) -> Tensor<1>,
{
    let grid = &options.time_grid;
    validate_grid(grid)?;
    let (first, last) = (grid[0], grid[grid.len() - 1]);
    if last > first {
        return Err(LikelihoodError::Direction { first, last });
    }
    let x1 = x1.without_autodiff();
    let batch = x1.dims()[0];
    let device = x1.device();
    let probes = match options.divergence {
        Divergence::Exact => None,
        Divergence::Hutchinson { probe, seed, first_index } => {
            Some(draw_probes(probe, seed, first_index, x1.dims(), &device))
        }
    };
    let dynamics = |s: &(Tensor<D>, Tensor<1>), t: f64| match &probes {
        Some(eps) => hutchinson_divergence(field, s.0.clone(), t, eps),
        None => exact_divergence(field, s.0.clone(), t),
    };
    let start = (x1, Tensor::<1>::zeros([batch], &device));
    let out = integrate(dynamics, start, &options.solver, grid, false)?;
    let (x0, log_det) = out.state;
    let log_p0 = source_log_density(&x0);
    if log_p0.dims() != [batch] {
        return Err(LikelihoodError::SourceShape { batch, got: log_p0.dims().to_vec() });
    }
    Ok(Likelihood { x0, log_p1: log_p0.clone() + log_det, log_p0, nfe: out.nfe, steps: out.steps })
}

/// The standard normal log-density `−½‖x‖² − (n/2) log 2π` of each sample (`n` components).
///
/// # Shapes
/// - `x`: `[batch, ...]`; output: `[batch]`
pub fn standard_normal_log_density<const D: usize>(x: &Tensor<D>) -> Tensor<1> {
    let (batch, n) = batch_and_size(&x.dims());
    x.clone()
        .square()
        .reshape([batch, n])
        .sum_dim(1)
        .reshape([batch])
        .mul_scalar(-0.5)
        .sub_scalar(0.5 * n as f64 * (2.0 * PI).ln())
}

/// Hutchinson probes of shape `shape`: row `i` comes from `stream(seed, first_index + i)`.
///
/// # Shapes
/// - output: `shape` (`[batch, ...]`)
pub fn draw_probes<const D: usize>(
    probe: Probe,
    seed: u64,
    first_index: u64,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    let (batch, n) = batch_and_size(&shape);
    let mut values = Vec::with_capacity(batch * n);
    for i in 0..batch {
        let mut rng = stream(seed, first_index.wrapping_add(i as u64));
        values.extend((0..n).map(|_| match probe {
            Probe::Rademacher => {
                if rng.random::<bool>() {
                    1.0_f32
                } else {
                    -1.0
                }
            }
            Probe::Gaussian => rng.sample::<f64, _>(StandardNormal) as f32,
        }));
    }
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The batch size and the number of components per sample of a `[batch, ...]` shape.
fn batch_and_size(dims: &[usize]) -> (usize, usize) {
    let batch = dims.first().copied().unwrap_or(1);
    (batch, dims.iter().skip(1).product())
}

/// Upper bound on `replicas · batch · n` elements per autodiff pass of [`exact_divergence`].
const EXACT_CHUNK_ELEMENTS: usize = 1 << 22;

/// The velocity and its exact divergence `Σ_i ∂v_i/∂x_i` per sample.
///
/// The batch is replicated once per component `j` (in chunks), the replica-`j` velocities are
/// reduced to `Σ v_j`, and one backward pass per chunk yields every `∂v_j/∂x_j`: the cost is
/// about `n` velocity evaluations with their backward passes for `n` components per sample.
/// Requires a field that treats samples independently and is differentiable on autodiff tensors.
///
/// # Shapes
/// - `x`: `[batch, ...]`; outputs: the velocity (shape of `x`, no autodiff) and `[batch]`
pub fn exact_divergence<const D: usize, F>(field: &F, x: Tensor<D>, t: f64) -> (Tensor<D>, Tensor<1>)
where
    F: VelocityField<D> + ?Sized,
{
    let x = x.without_autodiff();
    let dims = x.dims();
    let device = x.device();
    let (batch, n) = batch_and_size(&dims);
    let mut div = Tensor::<1>::zeros([batch], &device);
    if batch == 0 || n == 0 {
        let v = field.velocity(x, t).without_autodiff();
        return (v, div);
    }
    let chunk = (EXACT_CHUNK_ELEMENTS / (batch * n)).clamp(1, n);
    let flat: Tensor<2> = x.clone().reshape([batch, n]);
    let mut velocity = None;
    for j0 in (0..n).step_by(chunk) {
        let c = chunk.min(n - j0);
        let mut shape = dims;
        shape[0] = c * batch;
        let leaf: Tensor<D> =
            flat.clone().unsqueeze_dim::<3>(0).repeat_dim(0, c).reshape(shape).autodiff().require_grad();
        let v: Tensor<3> = field.velocity(leaf.clone(), t).reshape([c, batch, n]);
        if velocity.is_none() {
            velocity = Some(v.clone().without_autodiff().narrow(0, 0, 1).reshape(dims));
        }
        // Replica r keeps component j0 + r only.
        let mut mask = vec![0.0_f32; c * n];
        for r in 0..c {
            mask[r * n + j0 + r] = 1.0;
        }
        let mask: Tensor<3> = Tensor::from_data(TensorData::new(mask, [c, 1, n]), &device);
        let selected = (v * mask.clone()).sum();
        if !selected.is_tracked() {
            continue; // v does not depend on x: zero divergence
        }
        let grads = selected.backward();
        if let Some(g) = leaf.grad(&grads) {
            let g: Tensor<3> = g.reshape([c, batch, n]);
            div = div + (g * mask).sum_dim(2).sum_dim(0).reshape([batch]);
        }
    }
    let velocity = velocity.unwrap_or_else(|| x.zeros_like());
    (velocity, div)
}

/// The velocity and Hutchinson's divergence estimate `εᵀ (∂v/∂x) ε` per sample (one
/// vector–Jacobian product), with the probes `probe` (e.g. from [`draw_probes`]).
///
/// # Shapes
/// - `x`, `probe`: `[batch, ...]`; outputs: the velocity (shape of `x`, no autodiff) and `[batch]`
pub fn hutchinson_divergence<const D: usize, F>(
    field: &F,
    x: Tensor<D>,
    t: f64,
    probe: &Tensor<D>,
) -> (Tensor<D>, Tensor<1>)
where
    F: VelocityField<D> + ?Sized,
{
    let dims = x.dims();
    let (batch, n) = batch_and_size(&dims);
    let leaf = x.without_autodiff().autodiff().require_grad();
    let v = field.velocity(leaf.clone(), t);
    let velocity = v.clone().without_autodiff();
    let device = velocity.device();
    let zero = || Tensor::<1>::zeros([batch], &device);
    let projected = (v * probe.clone()).sum();
    if !projected.is_tracked() || batch * n == 0 {
        return (velocity, zero());
    }
    let grads = projected.backward();
    let div = match leaf.grad(&grads) {
        Some(g) => (g * probe.clone()).reshape([batch, n]).sum_dim(1).reshape([batch]),
        None => zero(),
    };
    (velocity, div)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sample::Dopri5;

    fn tensor2(values: &[f64], shape: [usize; 2]) -> Tensor<2> {
        let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), &Device::default())
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
    }

    /// The marginal velocity of the CondOT path (σ_min = 0) from N(0, I) to N(μ, s² I):
    /// `x_t ~ N(t μ, σ_t² I)`, `σ_t² = t² s² + (1 − t)²`, `v = μ + (σ̇_t/σ_t)(x − t μ)`.
    struct GaussianFlow {
        mu: Vec<f64>,
        s: f64,
    }

    impl GaussianFlow {
        fn rate(&self, t: f64) -> f64 {
            let var = t * t * self.s * self.s + (1.0 - t) * (1.0 - t);
            (t * self.s * self.s - (1.0 - t)) / var
        }

        fn log_density(&self, x: &[f64]) -> Vec<f64> {
            let d = self.mu.len();
            x.chunks(d)
                .map(|p| {
                    let r2: f64 = p.iter().zip(&self.mu).map(|(a, m)| (a - m) * (a - m)).sum();
                    -r2 / (2.0 * self.s * self.s) - d as f64 * self.s.ln() - 0.5 * d as f64 * (2.0 * PI).ln()
                })
                .collect()
        }
    }

    impl VelocityField<2> for GaussianFlow {
        fn velocity(&self, x: Tensor<2>, t: f64) -> Tensor<2> {
            let mu = tensor2(&self.mu, [1, self.mu.len()]);
            (x - mu.clone().mul_scalar(t)).mul_scalar(self.rate(t)) + mu
        }
    }

    /// Points of dimension `d` spread over a few standard deviations of the target.
    fn points(d: usize, batch: usize) -> Vec<f64> {
        (0..batch * d).map(|k| 1.7 * ((k as f64) * 0.9 + 0.3).sin() + 0.2 * (k % d) as f64).collect()
    }

    #[test]
    fn gaussian_to_gaussian_log_density_is_exact() {
        for (mu, s) in [(vec![1.5], 0.6), (vec![1.5, -0.5], 0.6), (vec![-1.0, 2.0], 1.8)] {
            let d = mu.len();
            let flow = GaussianFlow { mu, s };
            let x1 = points(d, 16);
            let opts = LikelihoodOptions::new(Solver::Rk4, 32, Divergence::Exact);
            let out = log_likelihood(&flow, tensor2(&x1, [16, d]), standard_normal_log_density, &opts).unwrap();
            let want = flow.log_density(&x1);
            let got = values(out.log_p1);
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            println!("d = {d}, s = {s}: max |log p1 error| = {err:.2e}");
            assert!(err < 2e-5, "d = {d}, s = {s}: {got:?} vs {want:?}");
            // The source point is (x1 − μ)/s.
            let x0 = values(out.x0);
            for (k, (a, x)) in x0.iter().zip(&x1).enumerate() {
                let want = (x - flow.mu[k % d]) / s;
                assert!((a - want).abs() < 1e-5, "x0[{k}] = {a}, want {want}");
            }
            assert_eq!(out.nfe, 4 * 32);
        }
    }

    #[test]
    fn adaptive_likelihood_meets_its_tolerance() {
        let flow = GaussianFlow { mu: vec![1.5, -0.5], s: 0.6 };
        let x1 = points(2, 8);
        let opts = LikelihoodOptions {
            solver: Solver::Dopri5(Dopri5::with_tolerance(1e-6)),
            time_grid: vec![1.0, 0.0],
            divergence: Divergence::Exact,
        };
        let out = log_likelihood(&flow, tensor2(&x1, [8, 2]), standard_normal_log_density, &opts).unwrap();
        let want = flow.log_density(&x1);
        let err = values(out.log_p1).iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        println!("dopri5 likelihood: max error {err:.2e} in {} steps", out.steps);
        assert!(err < 1e-4, "error {err}");
    }

    /// A general (non-symmetric, non-diagonal) 3 × 3 matrix.
    const A: [[f64; 3]; 3] = [[0.3, -1.2, 0.5], [0.8, -0.4, 0.7], [-0.6, 0.9, 0.2]];
    const TRACE_A: f64 = 0.3 - 0.4 + 0.2;

    /// `v = A x` for rows `x` of a `[batch, 3]` tensor.
    fn linear(x: Tensor<2>, _t: f64) -> Tensor<2> {
        let at: Vec<f64> = (0..9).map(|k| A[k % 3][k / 3]).collect(); // Aᵀ
        x.matmul(tensor2(&at, [3, 3]))
    }

    #[test]
    fn exact_divergence_of_a_linear_field_is_its_trace() {
        let x = points(3, 7);
        let (v, div) = exact_divergence(&linear, tensor2(&x, [7, 3]), 0.4);
        for d in values(div) {
            assert!((d - TRACE_A).abs() < 1e-6, "divergence {d}, trace {TRACE_A}");
        }
        // The returned velocity is A x.
        let v = values(v);
        for (k, p) in x.chunks(3).enumerate() {
            for i in 0..3 {
                let want: f64 = (0..3).map(|j| A[i][j] * p[j]).sum();
                assert!((v[3 * k + i] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn hutchinson_estimates_the_trace_without_bias() {
        let k = 4000;
        let x = tensor2(&points(3, k), [k, 3]);
        // Variance of εᵀAε: 2‖S‖_F² (Gaussian), 2 Σ_{i≠j} S_ij² (Rademacher), S = (A + Aᵀ)/2.
        let s2 = |i: usize, j: usize| (0.5 * (A[i][j] + A[j][i])).powi(2);
        let off: f64 =
            (0..3).flat_map(|i| (0..3).map(move |j| (i, j))).filter(|(i, j)| i != j).map(|(i, j)| s2(i, j)).sum();
        let diag: f64 = (0..3).map(|i| s2(i, i)).sum();
        for (probe, var_theory) in [(Probe::Gaussian, 2.0 * (off + diag)), (Probe::Rademacher, 2.0 * off)] {
            let eps = draw_probes(probe, 11, 0, [k, 3], &Device::default());
            let (_, div) = hutchinson_divergence(&linear, x.clone(), 0.7, &eps);
            let div = values(div);
            let mean = div.iter().sum::<f64>() / k as f64;
            let var = div.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
            let se = (var / k as f64).sqrt();
            println!(
                "{probe:?}: mean {mean:.4} ± {se:.4} (trace {TRACE_A}), variance {var:.4} (theory {var_theory:.4})"
            );
            assert!((mean - TRACE_A).abs() < 3.0 * se, "{probe:?}: mean {mean}, se {se}");
            assert!((var / var_theory - 1.0).abs() < 0.15, "{probe:?}: variance {var}, theory {var_theory}");
        }
    }

    /// `exp(M)` by scaling and squaring of a Taylor series (f64, for small 3 × 3 matrices).
    fn expm(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
        let mul = |a: [[f64; 3]; 3], b: [[f64; 3]; 3]| {
            let mut c = [[0.0; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    c[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
                }
            }
            c
        };
        let scaled = m.map(|r| r.map(|v| v / 1024.0));
        let mut sum = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let mut term = sum;
        for n in 1..20 {
            term = mul(term, scaled).map(|r| r.map(|v| v / n as f64));
            for i in 0..3 {
                for j in 0..3 {
                    sum[i][j] += term[i][j];
                }
            }
        }
        (0..10).fold(sum, |acc, _| mul(acc, acc))
    }

    #[test]
    fn linear_flow_likelihood_matches_the_change_of_variables() {
        // x1 = e^A x0, so x0 = e^{−A} x1 and log p1(x1) = log N(x0; 0, I) − tr A.
        let batch = 6;
        let x1 = points(3, batch);
        let inv = expm(A.map(|r| r.map(|v| -v)));
        let opts = LikelihoodOptions::new(Solver::Rk4, 40, Divergence::Exact);
        let out = log_likelihood(&linear, tensor2(&x1, [batch, 3]), standard_normal_log_density, &opts).unwrap();
        let (x0, log_p1) = (values(out.x0), values(out.log_p1));
        for (k, p) in x1.chunks(3).enumerate() {
            let z: Vec<f64> = (0..3).map(|i| (0..3).map(|j| inv[i][j] * p[j]).sum()).collect();
            let want = -0.5 * z.iter().map(|v| v * v).sum::<f64>() - 1.5 * (2.0 * PI).ln() - TRACE_A;
            for i in 0..3 {
                assert!((x0[3 * k + i] - z[i]).abs() < 1e-5, "x0 row {k}");
            }
            assert!((log_p1[k] - want).abs() < 1e-5, "log p1 row {k}: {} vs {want}", log_p1[k]);
        }
    }

    #[test]
    fn hutchinson_probes_stay_fixed_over_the_integration() {
        // For a constant Jacobian A the integrated estimate is exactly −εᵀAε (one probe per
        // sample for the whole path); redrawing probes per step would average them instead.
        let batch = 5;
        let (seed, first) = (3, 100);
        let x1 = tensor2(&points(3, batch), [batch, 3]);
        let divergence = Divergence::Hutchinson { probe: Probe::Gaussian, seed, first_index: first };
        let opts = LikelihoodOptions::new(Solver::Heun, 10, divergence);
        let out = log_likelihood(&linear, x1, standard_normal_log_density, &opts).unwrap();
        let delta: Vec<f64> = values(out.log_p1).iter().zip(values(out.log_p0)).map(|(a, b)| a - b).collect();
        let eps = values(draw_probes(Probe::Gaussian, seed, first, [batch, 3], &Device::default()));
        for (k, e) in eps.chunks(3).enumerate() {
            let quad: f64 = (0..3).flat_map(|i| (0..3).map(move |j| (i, j))).map(|(i, j)| e[i] * A[i][j] * e[j]).sum();
            assert!((delta[k] + quad).abs() < 1e-5 * (1.0 + quad.abs()), "row {k}: {} vs {}", delta[k], -quad);
        }
    }

    #[test]
    fn hutchinson_likelihood_converges_to_the_exact_one() {
        let flow = GaussianFlow { mu: vec![1.5, -0.5], s: 0.6 };
        let point = [0.9, 0.2];
        let k = 2000;
        let x1: Vec<f64> = (0..k).flat_map(|_| point).collect();
        let x1 = tensor2(&x1, [k, 2]);
        let exact = flow.log_density(&point)[0];
        // Rademacher probes are exact for this diagonal Jacobian (ε_i² = 1).
        let run = |probe| {
            let divergence = Divergence::Hutchinson { probe, seed: 5, first_index: 0 };
            let opts = LikelihoodOptions::new(Solver::Rk4, 64, divergence);
            values(log_likelihood(&flow, x1.clone(), standard_normal_log_density, &opts).unwrap().log_p1)
        };
        for v in run(Probe::Rademacher) {
            assert!((v - exact).abs() < 1e-4, "Rademacher {v} vs {exact}");
        }
        // Gaussian probes: unbiased, with the error shrinking like 1/√k.
        let est = run(Probe::Gaussian);
        let mean = est.iter().sum::<f64>() / k as f64;
        let sd = (est.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1) as f64).sqrt();
        let se = sd / (k as f64).sqrt();
        println!("Gaussian Hutchinson: mean {mean:.5} ± {se:.5}, exact {exact:.5}, per-sample sd {sd:.3}");
        // Here εᵀJε = (‖ε‖²/d) tr J, so the estimates scatter with sd |Δ| √(2/d), Δ = −d log s.
        let sd_theory = 2.0 * 0.6_f64.ln().abs() * (2.0_f64 / 2.0).sqrt();
        assert!((sd / sd_theory - 1.0).abs() < 0.1, "sd {sd}, theory {sd_theory}");
        assert!((mean - exact).abs() < 3.0 * se, "mean {mean} ± {se} vs {exact}");
    }

    #[test]
    fn probes_are_keyed_by_sample_index() {
        let device = Device::default();
        let all = values(draw_probes(Probe::Gaussian, 9, 0, [6, 4], &device));
        let tail = values(draw_probes(Probe::Gaussian, 9, 2, [4, 4], &device));
        assert_eq!(&all[8..], &tail[..]);
        let signs = values(draw_probes(Probe::Rademacher, 9, 0, [50, 4], &device));
        assert!(signs.iter().all(|v| v.abs() == 1.0));
        let mean = signs.iter().sum::<f64>() / signs.len() as f64;
        assert!(mean.abs() < 3.0 / (signs.len() as f64).sqrt());
    }

    #[test]
    fn bad_inputs_are_reported() {
        let x1 = tensor2(&[0.0, 1.0], [1, 2]);
        let forwards = LikelihoodOptions { time_grid: vec![0.0, 1.0], ..LikelihoodOptions::default() };
        let err = log_likelihood(&linear_2d, x1.clone(), standard_normal_log_density, &forwards).unwrap_err();
        assert!(matches!(err, LikelihoodError::Direction { first: 0.0, last: 1.0 }), "{err}");
        let bad_source = |x: &Tensor<2>| x.clone().reshape([2]);
        let err = log_likelihood(&linear_2d, x1.clone(), bad_source, &LikelihoodOptions::default()).unwrap_err();
        assert!(matches!(err, LikelihoodError::SourceShape { batch: 1, .. }), "{err}");
        let zigzag = LikelihoodOptions { time_grid: vec![1.0, 0.2, 0.5, 0.0], ..LikelihoodOptions::default() };
        let err = log_likelihood(&linear_2d, x1, standard_normal_log_density, &zigzag).unwrap_err();
        assert!(matches!(err, LikelihoodError::Solve(SolveError::NonMonotoneGrid { index: 2, .. })), "{err}");
    }

    fn linear_2d(x: Tensor<2>, _t: f64) -> Tensor<2> {
        x.mul_scalar(0.5)
    }

    #[test]
    fn standard_normal_log_density_matches_the_formula() {
        let x = tensor2(&[0.0, 0.0, 0.0, 1.0, -2.0, 0.5], [2, 3]);
        let got = values(standard_normal_log_density(&x));
        let c = -1.5 * (2.0 * PI).ln();
        assert!((got[0] - c).abs() < 1e-6);
        assert!((got[1] - (c - 0.5 * 5.25)).abs() < 1e-5);
    }
}
