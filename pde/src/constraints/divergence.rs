//! Incompressibility `h(u) = ∇·u = 0` at every grid point of a periodic `(2, ny, nx)` velocity,
//! with the spectral divergence of [`crate::operators::divergence`]; projection = Leray.

use ndarray::{Array1, Array3, ArrayView1, ArrayView3};

use super::{Constraint, check_direction, check_field, check_multiplier, flatten, max_abs};
use crate::error::{PdeError, Result};
use crate::grid::Grid2d;
use crate::leray::leray;
use crate::operators::{divergence, gradient};

/// The spectral divergence vanishes at all `ny · nx` grid points of a `(2, ny, nx)` velocity.
///
/// `h(u) = D u` with `D = (∂x, ∂y)·`, the derivatives taken with the derivative wavenumbers
/// (Nyquist zeroed), flattened row-major. `D` is linear and its adjoint in the Euclidean
/// (grid) inner product is `Dᵀ w = −∇w`, since each spectral derivative is a real
/// skew-symmetric matrix.
///
/// [`project`](Constraint::project) is the Leray projection [`crate::leray::leray`], and that is
/// exactly the Euclidean-closest divergence-free field. By Parseval the grid inner product is,
/// up to the factor `1/(nx ny)`, the sum over wavenumbers of `û(k)·v̂(k)*`, so it suffices to
/// look mode by mode: at each `k` the Leray multiplier `P(k) = I − k_d k_dᵀ / |k_d|²` (`k_d` the
/// derivative wavenumber, `P = I` where `k_d = 0`) is the orthogonal projector onto
/// `{û : k_d · û = 0}`, which is the null space of the divergence at that mode. Hence `P` is the
/// orthogonal projector onto `ker D`, and `P u = argmin { ‖u − z‖₂ : D z = 0 }`. The mean flow
/// (`k = 0`) and the modes where `k_d = 0` are unconstrained and untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct DivergenceFree {
    /// The periodic grid of the velocity field.
    pub grid: Grid2d,
}

impl DivergenceFree {
    /// The constraint on velocities of `grid`.
    pub fn new(grid: Grid2d) -> Self {
        Self { grid }
    }

    /// `|kx_d|max + |ky_d|max`, the largest factor a spectral divergence applies to `‖u‖∞`.
    fn derivative_scale(&self) -> f64 {
        let kmax = |k: &[f64]| max_abs(k.iter());
        kmax(self.grid.kx_deriv()) + kmax(self.grid.ky_deriv())
    }
}

impl Constraint for DivergenceFree {
    fn name(&self) -> String {
        format!("divergence-free ({}×{})", self.grid.nx(), self.grid.ny())
    }

    fn shape(&self) -> [usize; 3] {
        [2, self.grid.ny(), self.grid.nx()]
    }

    fn len(&self) -> usize {
        self.grid.nx() * self.grid.ny()
    }

    fn is_linear(&self) -> bool {
        true
    }

    /// `∇·u` at every grid point, row-major.
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `field`.
    fn residual(&self, u: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape(), u)?;
        Ok(flatten(&divergence(&self.grid, u)?))
    }

    /// `∇·v` (the constraint is linear).
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `v` (naming `direction`).
    fn jvp(&self, u: ArrayView3<f64>, v: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape(), u)?;
        check_direction(self.shape(), v)?;
        Ok(flatten(&divergence(&self.grid, v)?))
    }

    /// `−∇w` with `w` read as a `(ny, nx)` field.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `w` (naming `multiplier`).
    fn vjp(&self, u: ArrayView3<f64>, w: ArrayView1<f64>) -> Result<Array3<f64>> {
        check_field(self.shape(), u)?;
        check_multiplier(self.len(), w)?;
        let w = w
            .to_shape(self.grid.shape())
            .map_err(|e| PdeError::Solver(format!("reshaping the divergence multiplier: {e}")))?;
        Ok(-gradient(&self.grid, w.view())?)
    }

    /// `‖u‖∞ (|kx|max + |ky|max)` with derivative wavenumbers: the size of the terms of `∇·u`.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn residual_scale(&self, u: ArrayView3<f64>) -> Result<f64> {
        check_field(self.shape(), u)?;
        Ok(max_abs(u.iter()) * self.derivative_scale())
    }

    /// The Leray projection `P u`, the closest divergence-free field (see the type docs).
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn project(&self, u: ArrayView3<f64>) -> Result<Array3<f64>> {
        check_field(self.shape(), u)?;
        leray(&self.grid, u)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::constraints::gauss_newton::rel_diff;
    use crate::constraints::testing::*;
    use crate::constraints::{GaussNewtonParams, gauss_newton_project};
    use std::f64::consts::PI;

    fn grids() -> [Grid2d; 2] {
        [Grid2d::square(32, 2.0 * PI).unwrap(), Grid2d::new(48, 24, 3.0, 1.0).unwrap()]
    }

    #[test]
    fn leray_projection_is_feasible_idempotent_and_orthogonal() {
        for (k, g) in grids().into_iter().enumerate() {
            let c = DivergenceFree::new(g);
            let u = uniform_field(c.shape(), 1, k as u64);
            let p = assert_projects(&c, u.view(), 1e-14);
            assert!(c.max_violation(u.view()).unwrap() > 1.0);
            assert!(c.relative_violation(p.view()).unwrap() <= 1e-14);
            assert_orthogonal(&c, u.view(), uniform_field(c.shape(), 2, k as u64).view());
        }
    }

    #[test]
    fn gauss_newton_agrees_with_leray() {
        for (k, g) in grids().into_iter().enumerate() {
            let c = DivergenceFree::new(g);
            let u = uniform_field(c.shape(), 3, k as u64);
            let (gn, report) = gauss_newton_project(&c, u.view(), &GaussNewtonParams::default()).unwrap();
            let exact = c.project(u.view()).unwrap();
            assert!(rel_diff(gn.view(), exact.view()) <= 1e-9, "{}", rel_diff(gn.view(), exact.view()));
            assert!(report.iterations <= 2 && report.relative <= 1e-10, "{report:?}");
        }
    }

    #[test]
    fn jacobian_is_consistent() {
        for (k, g) in grids().into_iter().enumerate() {
            let c = DivergenceFree::new(g);
            let u = uniform_field(c.shape(), 4, k as u64);
            assert_adjoint(&c, u.view(), 5);
            assert_jvp_matches_differences(&c, u.view(), 6, 1e-3, 1e-10);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let c = DivergenceFree::new(Grid2d::square(8, 1.0).unwrap());
        assert_rejects_bad_input(&c, uniform_field(c.shape(), 7, 0).view());
    }
}
