//! Sampling from a learned velocity field: ODE solvers, guidance and exact likelihoods.
//!
//! A flow-matching model defines the ODE `dx/dt = v(x, t)` whose flow `ψ_t` carries the source
//! (noise, `t = 0`) to the data (`t = 1`). Everything here sees the model only through the
//! [`VelocityField`] trait (as the `flow_matching` library's `ODESolver` sees a `ModelWrapper`):
//!
//! - [`ode`]: fixed-step Euler, midpoint, Heun and RK4 solvers and adaptive Dormand–Prince 5(4),
//!   forwards (`0 → 1`, sampling) or backwards (`1 → 0`, inversion) on any monotone time grid.
//! - [`stochastic`]: PBFM's stochastic sampler (Euler steps, re-noised from the predicted final
//!   sample while `t` is below a threshold).
//! - [`likelihood`]: `log p₁(x)` by the instantaneous change of variables
//!   `d/dt log p_t(x_t) = −∇·v(x_t, t)` integrated from `t = 1` back to `t = 0`, with an exact
//!   (autodiff) divergence or Hutchinson's estimator.
//! - [`sampler`]: the generation pipeline, one [`Sampler`] value (source draws, normalisation,
//!   method, constraint from a [`ConstraintSpec`], band limit, streaming to a writer) that every
//!   front end calls; [`summary`]: what a run reports about the fields it wrote.
//! - This module: the [`VelocityField`] interface and two combinators, energy guidance
//!   ([`Guided`]: `v − λ ∇E`) and classifier-free guidance ([`Cfg`]: `v_u + w (v_c − v_u)`).

pub mod constraints;
pub mod eci;
pub mod likelihood;
pub mod ode;
pub mod pcfm;
pub mod project;
pub mod sampler;
pub mod stochastic;
pub mod summary;

use std::fmt;

use burn::tensor::Tensor;

pub use constraints::{ConstraintSpec, ConstraintSpecError, DarcyProjection, Observation, PdeConstraint};
pub use likelihood::{
    Divergence, Likelihood, LikelihoodError, LikelihoodOptions, Probe, draw_probes, exact_divergence,
    hutchinson_divergence, log_likelihood, standard_normal_log_density,
};
pub use ode::{Dopri5, Solution, SolveError, SolveOptions, Solver, solve};
pub use sampler::{Method, Sampler, SamplerError, SamplerSpec, StreamReport};
pub use summary::GenerationSummary;

/// A time-dependent velocity field `v(x, t)` acting on a batch of states.
///
/// The batch is axis 0 of `x`, all samples share the time `t`, and the result has the shape of
/// `x`. Closures `Fn(Tensor<D>, f64) -> Tensor<D>` implement the trait.
///
/// Fields used for likelihoods (or wrapped in [`Guided`] energies) must be differentiable: they
/// are called on tensors with autodiff enabled and must build their result from `x` with tensor
/// operations. They must also treat the samples of a batch independently (no batch statistics),
/// since the exact divergence evaluates replicated batches.
pub trait VelocityField<const D: usize> {
    /// The velocity at the states `x` and time `t`.
    ///
    /// # Shapes
    /// - `x`: `[batch, ...]`
    /// - output: the shape of `x`
    fn velocity(&self, x: Tensor<D>, t: f64) -> Tensor<D>;
}

impl<const D: usize, F> VelocityField<D> for F
where
    F: Fn(Tensor<D>, f64) -> Tensor<D>,
{
    fn velocity(&self, x: Tensor<D>, t: f64) -> Tensor<D> {
        self(x, t)
    }
}

/// Energy guidance: the velocity `v(x, t) − λ ∇ₓE(x)` that drifts samples towards low energy.
///
/// `energy` maps a batch to per-sample energies (`[batch]`); its gradient is taken by autodiff
/// on a copy of `x` with autodiff enabled (`E.sum().backward()`, so sample `i` receives
/// `∇E(x_i)`). An energy that does not depend on `x` contributes nothing. The gradient is a
/// constant as far as any outer autodiff is concerned (burn has no second-order autodiff), so the
/// divergence of a guided field computed by [`likelihood`] ignores the guidance term.
pub struct Guided<F, E> {
    /// The unguided velocity field.
    pub field: F,
    /// The per-sample energy `E(x)`, differentiable in `x`.
    pub energy: E,
    /// The guidance strength `λ` (0 recovers the unguided field).
    pub lambda: f64,
}

impl<F, E> Guided<F, E> {
    /// Wraps `field` with the energy `energy` at strength `lambda`.
    pub fn new(field: F, energy: E, lambda: f64) -> Self {
        Self { field, energy, lambda }
    }
}

impl<F, E> fmt::Debug for Guided<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guided").field("lambda", &self.lambda).finish_non_exhaustive()
    }
}

/// `∇ₓ Σᵢ E(xᵢ)` at `x`, without autodiff; zero when the energy does not depend on `x`.
///
/// # Shapes
/// - `x`: `[batch, ...]`, `energy(x)`: `[batch]`
/// - output: the shape of `x`
pub fn energy_gradient<const D: usize, E>(energy: &E, x: Tensor<D>) -> Tensor<D>
where
    E: Fn(Tensor<D>) -> Tensor<1>,
{
    let leaf = x.without_autodiff().autodiff().require_grad();
    let total = energy(leaf.clone()).sum();
    if !total.is_tracked() {
        return leaf.without_autodiff().zeros_like();
    }
    let grads = total.backward();
    match leaf.grad(&grads) {
        Some(g) => g,
        None => leaf.without_autodiff().zeros_like(),
    }
}

impl<const D: usize, F, E> VelocityField<D> for Guided<F, E>
where
    F: VelocityField<D>,
    E: Fn(Tensor<D>) -> Tensor<1>,
{
    fn velocity(&self, x: Tensor<D>, t: f64) -> Tensor<D> {
        let v = self.field.velocity(x.clone(), t);
        if self.lambda == 0.0 {
            return v;
        }
        v - energy_gradient(&self.energy, x).mul_scalar(self.lambda)
    }
}

/// Classifier-free guidance: `v = v_u + w (v_c − v_u)` from a conditional and an unconditional
/// field (Ho & Salimans 2022; `w = 1` is the conditional field, `w = 0` the unconditional one,
/// `w > 1` extrapolates towards the condition).
pub struct Cfg<C, U> {
    /// The conditional velocity `v_c(x, t)` (the condition is captured by the field).
    pub conditional: C,
    /// The unconditional velocity `v_u(x, t)`.
    pub unconditional: U,
    /// The guidance scale `w`.
    pub scale: f64,
}

impl<C, U> fmt::Debug for Cfg<C, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cfg").field("scale", &self.scale).finish_non_exhaustive()
    }
}

impl<const D: usize, C, U> VelocityField<D> for Cfg<C, U>
where
    C: VelocityField<D>,
    U: VelocityField<D>,
{
    fn velocity(&self, x: Tensor<D>, t: f64) -> Tensor<D> {
        let vu = self.unconditional.velocity(x.clone(), t);
        let vc = self.conditional.velocity(x, t);
        vu.clone() + (vc - vu).mul_scalar(self.scale)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn tensor2(values: &[f32], rows: usize, cols: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), &Device::default())
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
    }

    #[test]
    fn guided_subtracts_the_energy_gradient() {
        // E(x) = ½ Σ_j c_j x_j² per sample, so ∇E = c ⊙ x.
        let c = [2.0_f32, -0.5, 3.0];
        let energy = move |x: Tensor<2>| {
            let w = tensor2(&c, 1, 3);
            (x.clone() * x * w).sum_dim(1).reshape([-1]).mul_scalar(0.5)
        };
        let field = |x: Tensor<2>, t: f64| x.ones_like().mul_scalar(t);
        let guided = Guided::new(field, energy, 0.25);
        let x = tensor2(&[1.0, 2.0, -1.0, 0.5, -3.0, 4.0], 2, 3);
        let got = values(guided.velocity(x.clone(), 0.5));
        let xs = values(x);
        for (i, (g, xv)) in got.iter().zip(&xs).enumerate() {
            let want = 0.5 - 0.25 * c[i % 3] * xv;
            assert!((g - want).abs() < 1e-6, "{i}: {g} vs {want}");
        }
    }

    #[test]
    fn guided_with_a_constant_energy_is_the_field() {
        let energy = |x: Tensor<2>| Tensor::<1>::ones([x.dims()[0]], &Device::default());
        let guided = Guided::new(|x: Tensor<2>, _t: f64| x.mul_scalar(3.0), energy, 10.0);
        let x = tensor2(&[1.0, -2.0], 1, 2);
        assert_eq!(values(guided.velocity(x, 0.0)), vec![3.0, -6.0]);
    }

    #[test]
    fn cfg_interpolates_and_extrapolates() {
        let vc = |x: Tensor<2>, _t: f64| x.ones_like().mul_scalar(2.0);
        let vu = |x: Tensor<2>, _t: f64| x.ones_like().mul_scalar(-1.0);
        let x = tensor2(&[0.0, 0.0], 1, 2);
        for (scale, want) in [(0.0, -1.0), (1.0, 2.0), (2.0, 5.0), (0.5, 0.5)] {
            let cfg = Cfg { conditional: vc, unconditional: vu, scale };
            assert_eq!(values(cfg.velocity(x.clone(), 0.3)), vec![want; 2], "scale {scale}");
        }
    }
}
