//! Batched projections of burn tensors onto a constraint set `{u : h(u) = 0}`.
//!
//! A batch `[B, C, ny, nx]` is read back from the device, converted to `f64`, and every sample
//! `u_b` is replaced by its projection `P(u_b) = argmin { ‖z − u_b‖₂ : h(z) = 0 }`
//! ([`Constraint::project`]: exact for the linear constraints, Gauss–Newton otherwise), one
//! sample per rayon task ([`project_batch`]).
//!
//! The projection is computed in `f64`, so its residual is at round-off in `f64`. Converting it
//! back to an `f32` tensor ([`project_tensor`]) rounds every entry by a relative `≈ 6e-8`, and
//! the residual of the rounded field is of that size, not of `1e-16`: samplers that must return
//! fields satisfying `h = 0` to round-off keep the `f64` result of [`project_array`].

use burn::tensor::Tensor;
use fieldflow_pde::PdeError;
use fieldflow_pde::constraints::{Constraint, project_batch};
use ndarray::{Array4, ArrayView4, Axis, Ix4};
use rayon::prelude::*;
use thiserror::Error;

use crate::bridge::{to_array, to_tensor};

/// What can go wrong while projecting a batch.
#[derive(Debug, Error)]
pub enum ConstraintError {
    /// The constraint rejected a sample (wrong shape, non-finite values, failed iteration). The
    /// message includes the cause, so it is not also the `source()` (printed once under `{:#}`).
    #[error("constraint: {0}")]
    Pde(PdeError),
    /// The tensor could not be read back from the device or is not of rank 4.
    #[error("reading the field `{what}` from the device failed: {reason}")]
    Read {
        /// Which tensor.
        what: &'static str,
        /// The backend's message.
        reason: String,
    },
}

impl From<PdeError> for ConstraintError {
    fn from(e: PdeError) -> Self {
        Self::Pde(e)
    }
}

/// The values of a rank-4 tensor as an `f64` array (`what` names it in errors).
///
/// # Errors
/// [`ConstraintError::Read`] if the backend cannot read the tensor.
pub fn tensor_to_array4(x: Tensor<4>, what: &'static str) -> Result<Array4<f64>, ConstraintError> {
    to_array(x)
        .map_err(|reason| ConstraintError::Read { what, reason })?
        .into_dimensionality::<Ix4>()
        .map_err(|e| ConstraintError::Read { what, reason: e.to_string() })
}

/// The projection of every sample of `x`, as an `f64` array (satisfying `h = 0` to round-off
/// for exact projections, to the Gauss–Newton tolerance otherwise).
///
/// # Shapes
/// - `x`: `[batch, C, ny, nx]` with `[C, ny, nx]` the constraint's [`shape`](Constraint::shape)
/// - output: the shape of `x`
///
/// # Errors
/// [`ConstraintError::Read`] if `x` cannot be read; [`ConstraintError::Pde`] (a
/// [`PdeError::Shape`] naming `field`) if the sample shape is not the constraint's, or any error
/// of a sample's projection.
pub fn project_array(constraint: &dyn Constraint, x: Tensor<4>) -> Result<Array4<f64>, ConstraintError> {
    let a = tensor_to_array4(x, "x")?;
    Ok(project_batch(constraint, a.view())?)
}

/// The projection of every sample of `x`, back as an `f32` tensor on the device of `x`.
///
/// # Shapes
/// - `x`: `[batch, C, ny, nx]`; output: the shape of `x`
///
/// # Errors
/// As [`project_array`].
pub fn project_tensor(constraint: &dyn Constraint, x: Tensor<4>) -> Result<Tensor<4>, ConstraintError> {
    let device = x.device();
    let p = project_array(constraint, x)?;
    Ok(to_tensor::<4, _>(p.view(), &device))
}

/// The largest violation `‖h(u_b)‖∞` of every sample `u_b` of `fields`
/// ([`Constraint::max_violation`]).
///
/// # Shapes
/// - `fields`: `[batch, C, ny, nx]`; output: `batch` values
///
/// # Errors
/// [`ConstraintError::Pde`] for a sample of the wrong shape or with non-finite values.
pub fn violations(constraint: &dyn Constraint, fields: ArrayView4<f64>) -> Result<Vec<f64>, ConstraintError> {
    per_sample(fields, |u| constraint.max_violation(u))
}

/// The scale-free violation of every sample ([`Constraint::relative_violation`]: about `1e-16`
/// means satisfied to round-off).
///
/// # Shapes
/// - `fields`: `[batch, C, ny, nx]`; output: `batch` values
///
/// # Errors
/// As [`violations`].
pub fn relative_violations(constraint: &dyn Constraint, fields: ArrayView4<f64>) -> Result<Vec<f64>, ConstraintError> {
    per_sample(fields, |u| constraint.relative_violation(u))
}

/// `f` on every sample, in parallel, in batch order.
fn per_sample<F>(fields: ArrayView4<f64>, f: F) -> Result<Vec<f64>, ConstraintError>
where
    F: Fn(ndarray::ArrayView3<f64>) -> fieldflow_pde::Result<f64> + Sync + Send,
{
    let out: fieldflow_pde::Result<Vec<f64>> = fields.axis_iter(Axis(0)).into_par_iter().map(f).collect();
    Ok(out?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use fieldflow_pde::Grid2d;
    use fieldflow_pde::constraints::{DivergenceFree, FixedEnergy};
    use ndarray::s;

    fn batch() -> Array4<f64> {
        Array4::from_shape_fn((3, 2, 16, 16), |(b, c, i, j)| ((b + 2 * c + 3 * i + 5 * j) as f64 * 0.37).sin())
    }

    #[test]
    fn projections_match_the_single_sample_projection_and_reach_round_off_in_f64() {
        let g = Grid2d::square(16, 1.0).unwrap();
        let c = DivergenceFree::new(g.clone());
        let a = batch();
        let x: Tensor<4> = to_tensor(a.view(), &Device::default());
        let before = relative_violations(&c, a.view()).unwrap();
        assert!(before.iter().all(|&v| v > 1e-2), "{before:?}");
        let p = project_array(&c, x.clone()).unwrap();
        let a32 = tensor_to_array4(x.clone(), "x").unwrap();
        for b in 0..3 {
            assert_eq!(p.slice(s![b, .., .., ..]), c.project(a32.slice(s![b, .., .., ..])).unwrap());
        }
        let after = relative_violations(&c, p.view()).unwrap();
        assert!(after.iter().all(|&v| v < 1e-14), "{after:?}");
        // Back in f32 the residual is at f32 round-off, not f64's.
        let t = tensor_to_array4(project_tensor(&c, x).unwrap(), "p").unwrap();
        let in_f32 = relative_violations(&c, t.view()).unwrap();
        assert!(in_f32.iter().all(|&v| v < 1e-5), "{in_f32:?}");
        // Absolute violations agree with the trait's.
        let abs = violations(&c, a.view()).unwrap();
        assert_eq!(abs[1], c.max_violation(a.slice(s![1, .., .., ..])).unwrap());
    }

    #[test]
    fn nonlinear_projection_and_bad_shapes() {
        let e = FixedEnergy::new([2, 16, 16], 3.0).unwrap();
        let x: Tensor<4> = to_tensor(batch().view(), &Device::default());
        let p = project_array(&e, x).unwrap();
        for b in 0..3 {
            let s: f64 = p.slice(s![b, .., .., ..]).iter().map(|v| v * v).sum();
            assert!((s - 3.0).abs() < 1e-12, "{s}");
        }
        let bad: Tensor<4> = Tensor::zeros([1, 3, 16, 16], &Device::default());
        let err = project_tensor(&e, bad).unwrap_err();
        assert!(matches!(err, ConstraintError::Pde(PdeError::Shape { what: "field", .. })), "{err}");
        let bad = Array4::<f64>::zeros((2, 2, 8, 16));
        assert!(violations(&e, bad.view()).is_err());
    }
}
