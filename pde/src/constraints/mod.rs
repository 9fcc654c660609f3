//! Equality constraints `h(u) = 0` on a single field `u` of shape `(C, ny, nx)`, and projections
//! onto their zero sets, for physics-constrained sampling (PCFM, Utkarsh et al. 2025).
//!
//! The projection of `u` is the closest feasible field in the Euclidean norm over all entries,
//! `P(u) = argmin { ‖z − u‖₂ : h(z) = 0 }`; for nonlinear `h` the generic projection is the
//! Gauss–Newton iteration `u ← u − Jᵀ (J Jᵀ)⁻¹ h(u)` of [`gauss_newton_project`].
//!
//! # Pieces
//!
//! - [`Constraint`]: the trait (residual `h`, Jacobian products `J v` and `Jᵀ w`, projection).
//! - [`gauss_newton_project`]: the generic projection, dense Cholesky or matrix-free conjugate
//!   gradients for the normal equations `(J Jᵀ) y = h`.
//! - [`DivergenceFree`] (Leray), [`FixedMean`] (mean / total mass), [`MaskValues`] (boundary
//!   values, observations), [`FixedEnergy`] (sphere), [`DarcyPde`] (the discrete Darcy equation
//!   on a coefficient–solution pair), [`Stack`] (several constraints at once).
//! - [`project_batch`]: one projection per sample of a `[batch, C, ny, nx]` array, in parallel.
//!
//! Every method checks that `u` has the constraint's [`shape`](Constraint::shape)
//! ([`PdeError::Shape`] naming `field`) and holds only finite values ([`PdeError::NonFinite`]
//! naming `field`).
//!
//! ```
//! use fieldflow_pde::Grid2d;
//! use fieldflow_pde::constraints::{Constraint, DivergenceFree, FixedEnergy, Stack};
//! let g = Grid2d::square(16, 1.0)?;
//! let u = ndarray::Array3::from_shape_fn((2, 16, 16), |(c, i, j)| ((c + 2 * i + 3 * j) as f64).sin());
//! // Divergence-free with kinetic energy ½∫|u|² = 0.1.
//! let both = Stack::new(vec![Box::new(DivergenceFree::new(g.clone())), Box::new(FixedEnergy::kinetic(&g, 0.1)?)])?;
//! let p = both.project(u.view())?;
//! assert!(both.relative_violation(p.view())? <= 1e-10);
//! # Ok::<(), fieldflow_pde::PdeError>(())
//! ```

mod darcy;
mod darcy_normal_equations;
mod divergence;
mod energy;
mod gauss_newton;
mod mask;
mod mean;
mod stack;

#[cfg(test)]
mod testing;

pub use darcy::DarcyPde;
pub use divergence::DivergenceFree;
pub use energy::FixedEnergy;
pub use gauss_newton::{GaussNewtonParams, GnReport, gauss_newton_project};
pub use mask::MaskValues;
pub use mean::FixedMean;
pub use stack::Stack;

use std::fmt;

use ndarray::{Array1, Array2, Array3, Array4, ArrayView1, ArrayView3, ArrayView4, Axis};
use rayon::prelude::*;

use crate::error::{PdeError, Result, ensure_finite, ensure_shape};

/// A set of `m` scalar equality constraints `h(u) = 0` on fields of one shape `(C, ny, nx)`.
///
/// Object safe: samplers hold `Box<dyn Constraint>` and combine them with [`Stack`]. The
/// residual is a flat vector of length [`len`](Self::len); the Jacobian `J(u)` is the
/// `m × (C·ny·nx)` matrix of `∂h/∂u` with the field flattened in row-major order.
pub trait Constraint: Send + Sync + fmt::Debug {
    /// A short human-readable name for reports, e.g. `divergence-free`.
    fn name(&self) -> String;

    /// The shape `[C, ny, nx]` of the fields this constraint applies to.
    fn shape(&self) -> [usize; 3];

    /// The number `m` of scalar constraints (the length of [`residual`](Self::residual)).
    fn len(&self) -> usize;

    /// Whether there are no scalar constraints (every field is feasible).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `h` is affine in `u`, so that one Gauss–Newton step is exact.
    fn is_linear(&self) -> bool;

    /// The residual `h(u)`, length [`len`](Self::len).
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `field` for a bad `u`; implementations
    /// may add their own parameter checks (documented on the type).
    fn residual(&self, u: ArrayView3<f64>) -> Result<Array1<f64>>;

    /// The Jacobian-vector product `J(u) v` (the directional derivative of `h` at `u` along `v`).
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and [`PdeError::Shape`] / [`PdeError::NonFinite`] naming
    /// `direction` for a bad `v`.
    fn jvp(&self, u: ArrayView3<f64>, v: ArrayView3<f64>) -> Result<Array1<f64>>;

    /// The vector-Jacobian product `J(u)ᵀ w`, a field of the constraint's shape.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and [`PdeError::Shape`] / [`PdeError::NonFinite`] naming
    /// `multiplier` for a bad `w` (length must be [`len`](Self::len)).
    fn vjp(&self, u: ArrayView3<f64>, w: ArrayView1<f64>) -> Result<Array3<f64>>;

    /// The dense Jacobian `J(u)` (`m × C·ny·nx`), for constraints with few rows; `None` when the
    /// constraint does not offer one (the Gauss–Newton projection then runs matrix-free).
    ///
    /// # Errors
    /// As [`residual`](Self::residual), inside the `Some`.
    fn dense_jacobian(&self, u: ArrayView3<f64>) -> Option<Result<Array2<f64>>> {
        let _ = u;
        None
    }

    /// The size of the terms that make up `h(u)`, against which a violation is judged: the
    /// Gauss–Newton projection stops when `‖h(u)‖∞ ≤ tol · residual_scale(u)`. The default is 1
    /// (absolute); each implementation documents its choice (e.g. `‖u‖∞ k_max` for a divergence).
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn residual_scale(&self, u: ArrayView3<f64>) -> Result<f64> {
        check_field(self.shape(), u)?;
        Ok(1.0)
    }

    /// The violation `‖h‖∞ / residual_scale(u)` given `h = h(u)` (so callers that hold the
    /// residual need not recompute it); `0/0` counts as 0. [`Stack`] judges each member against
    /// its own scale.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and [`PdeError::Shape`] naming `residual` if `h` does not
    /// have length [`len`](Self::len).
    fn scaled_violation(&self, u: ArrayView3<f64>, h: ArrayView1<f64>) -> Result<f64> {
        ensure_shape("residual", &[self.len()], h.shape())?;
        Ok(ratio(max_abs(h.iter()), self.residual_scale(u)?))
    }

    /// The closest field to `u` (Euclidean norm over all entries) with `h = 0`.
    ///
    /// The default runs [`gauss_newton_project`] with [`GaussNewtonParams::default`];
    /// implementations override it with exact or closed forms where those exist.
    ///
    /// # Errors
    /// As [`residual`](Self::residual); [`PdeError::NotConverged`] if the iteration fails.
    fn project(&self, u: ArrayView3<f64>) -> Result<Array3<f64>> {
        gauss_newton_project(self, u, &GaussNewtonParams::default()).map(|(p, _)| p)
    }

    /// The largest violation `‖h(u)‖∞`.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn max_violation(&self, u: ArrayView3<f64>) -> Result<f64> {
        Ok(max_abs(self.residual(u)?.iter()))
    }

    /// The scale-free violation [`scaled_violation`](Self::scaled_violation)`(u, h(u))`: about
    /// `1e-16` means "satisfied to round-off", whatever the units of the field.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn relative_violation(&self, u: ArrayView3<f64>) -> Result<f64> {
        let h = self.residual(u)?;
        self.scaled_violation(u, h.view())
    }
}

/// Projects every sample of a `[batch, C, ny, nx]` array with [`Constraint::project`], one sample
/// per rayon task.
///
/// # Errors
/// The first error of any sample's projection ([`PdeError::Shape`] naming `field` if the sample
/// shape is not the constraint's).
pub fn project_batch(c: &dyn Constraint, fields: ArrayView4<f64>) -> Result<Array4<f64>> {
    let mut out = Array4::zeros(fields.raw_dim());
    out.axis_iter_mut(Axis(0)).into_par_iter().zip(fields.axis_iter(Axis(0))).try_for_each(|(mut o, u)| {
        o.assign(&c.project(u)?);
        Ok::<(), PdeError>(())
    })?;
    Ok(out)
}

/// Checks that `u` has shape `shape` and finite values, naming it `field`.
pub(crate) fn check_field(shape: [usize; 3], u: ArrayView3<f64>) -> Result<()> {
    ensure_shape("field", &shape, u.shape())?;
    ensure_finite("field", u.iter())
}

/// Checks a Jacobian-vector product's direction `v`.
pub(crate) fn check_direction(shape: [usize; 3], v: ArrayView3<f64>) -> Result<()> {
    ensure_shape("direction", &shape, v.shape())?;
    ensure_finite("direction", v.iter())
}

/// Checks a vector-Jacobian product's multiplier `w` of length `m`.
pub(crate) fn check_multiplier(m: usize, w: ArrayView1<f64>) -> Result<()> {
    ensure_shape("multiplier", &[m], w.shape())?;
    ensure_finite("multiplier", w.iter())
}

/// Checks that a constraint's field shape has no zero extent.
pub(crate) fn check_constraint_shape(shape: [usize; 3]) -> Result<()> {
    if shape.contains(&0) {
        return Err(PdeError::InvalidGrid(format!("constraint field shape {shape:?} has an empty axis")));
    }
    Ok(())
}

/// `max |x|` (0 for an empty iterator).
pub(crate) fn max_abs<'a>(x: impl IntoIterator<Item = &'a f64>) -> f64 {
    x.into_iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

/// `num / den` with `0/0 = 0` and `x/0 = ∞` for `x > 0`.
pub(crate) fn ratio(num: f64, den: f64) -> f64 {
    if num == 0.0 {
        0.0
    } else if den > 0.0 {
        num / den
    } else {
        f64::INFINITY
    }
}

/// The entries of an array in row-major order, as a vector.
pub(crate) fn flatten<S: ndarray::Data<Elem = f64>, D: ndarray::Dimension>(
    a: &ndarray::ArrayBase<S, D>,
) -> Array1<f64> {
    a.iter().copied().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::grid::Grid2d;
    use ndarray::s;

    #[test]
    fn batch_projection_matches_single_and_reports_bad_samples() {
        let g = Grid2d::square(16, 1.0).unwrap();
        let c = DivergenceFree::new(g);
        let fields = Array4::from_shape_fn((3, 2, 16, 16), |(b, ch, i, j)| ((b + 2 * ch + 3 * i + 5 * j) as f64).sin());
        let out = project_batch(&c, fields.view()).unwrap();
        for b in 0..3 {
            let single = c.project(fields.slice(s![b, .., .., ..])).unwrap();
            assert_eq!(out.slice(s![b, .., .., ..]), single);
        }
        let bad = Array4::<f64>::zeros((2, 3, 16, 16));
        assert!(matches!(project_batch(&c, bad.view()), Err(PdeError::Shape { what: "field", .. })));
    }

    #[test]
    fn helpers_behave() {
        assert_eq!(ratio(0.0, 0.0), 0.0);
        assert_eq!(ratio(1.0, 0.0), f64::INFINITY);
        assert_eq!(ratio(1.0, 4.0), 0.25);
        let a = Array3::from_shape_fn((2, 2, 3), |(c, i, j)| (c * 6 + i * 3 + j) as f64);
        assert_eq!(flatten(&a).to_vec(), (0..12).map(|v| v as f64).collect::<Vec<_>>());
        let t = a.permuted_axes([2, 1, 0]).as_standard_layout().into_owned().permuted_axes([2, 1, 0]);
        assert!(!t.is_standard_layout());
        assert_eq!(flatten(&t).to_vec(), (0..12).map(|v| v as f64).collect::<Vec<_>>());
        assert!(check_constraint_shape([1, 0, 3]).is_err());
    }
}
