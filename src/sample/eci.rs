//! ECI sampling (extrapolate–correct–interpolate; Cheng et al., "Gradient-free generation for
//! hard-constrained systems", amazon-science/ECI-sampling).
//!
//! A gradient-free constrained sampler for a pretrained flow `v_θ`. On a time grid
//! `0 = t₀ < … < t_N = 1`, with the noise `x₀` kept, each step `t → t'` repeats `M` mixing
//! iterations of
//!
//! 1. extrapolate: `x̂₁ = x_t + (1 − t) v_θ(x_t, t)`;
//! 2. correct: `x̂₁ ← C(x̂₁)`, the constraint's (closed-form) correction, here its projection
//!    [`Constraint::project`];
//! 3. interpolate: `x_s = (1 − s) x₀ + s x̂₁` with `s = t` for the first `M − 1` iterations
//!    (mixing at the same time level) and `s = t'` for the last.
//!
//! The ECI paper interpolates with fresh noise `x₀'` at every step; this implementation reuses
//! the initial `x₀` (as PCFM does), which keeps each sample a deterministic function of its noise
//! and its path a straight OT line when the corrections agree. With `M = 1` the loop is PCFM
//! ([`super::pcfm`]) without the relaxed correction, and shares its helpers. A final projection in
//! `f64` (default on) makes the samples satisfy the constraint to round-off.

use burn::tensor::Tensor;
use fieldflow_pde::constraints::Constraint;
use ndarray::Array4;

use super::VelocityField;
use super::ode::linspace;
use super::pcfm::{PcfmError, check_time_grid, check_x0, finish, interpolate, shoot_and_project};
use crate::sample::project::tensor_to_array4;

/// Options of [`eci_sample`].
#[derive(Debug, Clone, PartialEq)]
pub struct EciOptions {
    /// Strictly increasing times in `[0, 1]`, at least two.
    pub time_grid: Vec<f64>,
    /// The number `M ≥ 1` of extrapolate–correct–interpolate iterations per step (default 1).
    pub mixing: usize,
    /// Whether to project the final state once more, in `f64` (default true).
    pub final_projection: bool,
}

impl EciOptions {
    /// `steps` uniform steps from 0 to 1, one mixing iteration, final projection on.
    pub fn uniform(steps: usize) -> Self {
        Self { time_grid: linspace(0.0, 1.0, steps), mixing: 1, final_projection: true }
    }
}

impl Default for EciOptions {
    /// 100 uniform steps.
    fn default() -> Self {
        Self::uniform(100)
    }
}

/// Samples with ECI from the noise `x0`: see the [module docs](self).
///
/// # Shapes
/// - `x0`: `[batch, C, ny, nx]` with `[C, ny, nx]` the constraint's shape
/// - output: the shape of `x0`, in `f64`
///
/// # Errors
/// [`PcfmError::TimeGrid`] for a bad grid; [`PcfmError::Parameter`] naming `mixing` if it is 0;
/// [`PcfmError::Shape`] naming `x0` or `velocity`; [`PcfmError::NonFinite`] for a NaN/∞
/// velocity; [`PcfmError::Constraint`] if a correction fails or a tensor cannot be read.
pub fn eci_sample<F>(
    field: &F,
    constraint: &dyn Constraint,
    x0: Tensor<4>,
    options: &EciOptions,
) -> Result<Array4<f64>, PcfmError>
where
    F: VelocityField<4> + ?Sized,
{
    check_time_grid(&options.time_grid)?;
    if options.mixing == 0 {
        return Err(PcfmError::Parameter { name: "mixing", value: 0.0, reason: "must be at least 1" });
    }
    check_x0(constraint, &x0)?;
    let device = x0.device();
    let x0 = tensor_to_array4(x0, "x0")?;
    let mut x = x0.clone();
    for w in options.time_grid.windows(2) {
        let (t, t_next) = (w[0], w[1]);
        for j in 0..options.mixing {
            let (_, x1) = shoot_and_project(field, constraint, &x, t, &device)?;
            let s = if j + 1 == options.mixing { t_next } else { t };
            x = interpolate(&x0, &x1, s);
        }
    }
    finish(constraint, x, options.final_projection)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::pcfm::fixtures::*;
    use super::super::pcfm::{PcfmOptions, pcfm_sample};
    use super::*;

    #[test]
    fn eci_satisfies_every_constraint_the_free_sampler_violates() {
        let (field, x0) = setup();
        let free = unconstrained(&field, x0.clone(), 20);
        for (name, c) in constraints() {
            let tol = if c.is_linear() { 1e-10 } else { 1e-8 };
            let mut options = EciOptions::uniform(20);
            options.mixing = 2;
            let u = eci_sample(&field, c.as_ref(), x0.clone(), &options).unwrap();
            let (got, base) = (worst(c.as_ref(), &u), worst(c.as_ref(), &free));
            eprintln!("eci {name}: constrained {got:.3e}, unconstrained {base:.3e}");
            assert!(got <= tol, "{name}: {got:e}");
            assert!(base >= 1e6 * got.max(1e-16), "{name}: {base:e} vs {got:e}");
        }
    }

    #[test]
    fn eci_with_one_mixing_iteration_is_pcfm_without_relaxation() {
        let (field, x0) = setup();
        let (_, c) = constraints().swap_remove(0);
        let eci = eci_sample(&field, c.as_ref(), x0.clone(), &EciOptions::uniform(8)).unwrap();
        let pcfm = pcfm_sample(&field, c.as_ref(), x0, &PcfmOptions::uniform(8)).unwrap();
        assert_eq!(eci, pcfm);
    }

    #[test]
    fn zero_mixing_and_bad_shapes_are_errors() {
        let (field, x0) = setup();
        let (_, c) = constraints().swap_remove(1);
        let mut options = EciOptions::uniform(4);
        options.mixing = 0;
        let err = eci_sample(&field, c.as_ref(), x0.clone(), &options).unwrap_err();
        assert!(matches!(err, PcfmError::Parameter { name: "mixing", .. }), "{err}");
        let err = eci_sample(&field, c.as_ref(), x0.slice([0..1, 0..1]), &EciOptions::uniform(4)).unwrap_err();
        assert!(matches!(err, PcfmError::Shape { what: "x0", .. }), "{err}");
    }
}
