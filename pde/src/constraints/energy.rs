//! Fixed energy `h(u) = w Σ u² − E` (a sphere of radius `√(E/w)`); projection = radial scaling
//! `u √(E / (w Σ u²))`.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView3};

use super::{Constraint, check_constraint_shape, check_direction, check_field, check_multiplier, max_abs};
use crate::error::{PdeError, Result};
use crate::grid::Grid2d;

/// The weighted sum of squares over all entries is fixed: `h(u) = weight · Σ u² − target`.
///
/// With `weight = 1` this is the plain squared norm; [`FixedEnergy::kinetic`] uses
/// `weight = ½ dx dy`, so that the target is the kinetic energy `½ ∫ |u|²` of a periodic
/// velocity; `weight = 1/(C ny nx)` fixes the mean square. Nonlinear (one row,
/// `J = 2 weight uᵀ`). The feasible set is the sphere of radius `R = √(target/weight)`, and the
/// closest point to `u ≠ 0` is the radial scaling `R u / ‖u‖`: for any `z` on the sphere,
/// `‖u − z‖ ≥ |‖u‖ − R| = ‖u − R u/‖u‖‖`. For `u = 0` every point of the sphere is equally close,
/// and [`project`](Constraint::project) returns an error.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedEnergy {
    shape: [usize; 3],
    target: f64,
    weight: f64,
}

impl FixedEnergy {
    /// `Σ u² = target` on fields of shape `[C, ny, nx]`.
    ///
    /// # Errors
    /// As [`with_weight`](Self::with_weight).
    pub fn new(shape: [usize; 3], target: f64) -> Result<Self> {
        Self::with_weight(shape, target, 1.0)
    }

    /// `weight · Σ u² = target`.
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] for an empty axis; [`PdeError::Parameter`] naming `target` or
    /// `weight` unless it is finite and positive.
    pub fn with_weight(shape: [usize; 3], target: f64, weight: f64) -> Result<Self> {
        check_constraint_shape(shape)?;
        for (name, value) in [("target", target), ("weight", weight)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(PdeError::Parameter { name, value, reason: "must be finite and positive" });
            }
        }
        Ok(Self { shape, target, weight })
    }

    /// Kinetic energy `½ Σ |u|² dx dy = target` of a `(2, ny, nx)` velocity on `grid` (the
    /// rectangle rule for `½ ∫ |u|²`, exact for resolved trigonometric fields).
    ///
    /// # Errors
    /// As [`with_weight`](Self::with_weight).
    pub fn kinetic(grid: &Grid2d, target: f64) -> Result<Self> {
        Self::with_weight([2, grid.ny(), grid.nx()], target, 0.5 * grid.dx() * grid.dy())
    }

    /// The target `E`.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// The weight `w` of the sum of squares.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    fn energy(&self, u: ArrayView3<f64>) -> f64 {
        self.weight * u.iter().map(|x| x * x).sum::<f64>()
    }
}

impl Constraint for FixedEnergy {
    fn name(&self) -> String {
        format!("fixed energy (target {:e})", self.target)
    }

    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn len(&self) -> usize {
        1
    }

    fn is_linear(&self) -> bool {
        false
    }

    /// `[weight Σ u² − target]`.
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `field`.
    fn residual(&self, u: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape, u)?;
        Ok(Array1::from_elem(1, self.energy(u) - self.target))
    }

    /// `[2 weight ⟨u, v⟩]`.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `v` (naming `direction`).
    fn jvp(&self, u: ArrayView3<f64>, v: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape, u)?;
        check_direction(self.shape, v)?;
        let inner: f64 = u.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
        Ok(Array1::from_elem(1, 2.0 * self.weight * inner))
    }

    /// `2 weight w₀ u`.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `w` (naming `multiplier`).
    fn vjp(&self, u: ArrayView3<f64>, w: ArrayView1<f64>) -> Result<Array3<f64>> {
        check_field(self.shape, u)?;
        check_multiplier(1, w)?;
        let factor = 2.0 * self.weight * w[0];
        Ok(u.mapv(|x| factor * x))
    }

    /// The single row `2 weight uᵀ`.
    fn dense_jacobian(&self, u: ArrayView3<f64>) -> Option<Result<Array2<f64>>> {
        Some(check_field(self.shape, u).map(|()| {
            let row: Vec<f64> = u.iter().map(|x| 2.0 * self.weight * x).collect();
            let n = row.len();
            Array2::from_shape_fn((1, n), |(_, k)| row[k])
        }))
    }

    /// The target `E` (the violation is judged relative to the energy itself).
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn residual_scale(&self, u: ArrayView3<f64>) -> Result<f64> {
        check_field(self.shape, u)?;
        Ok(self.target)
    }

    /// The radial scaling `u √(target / (weight Σ u²))`, the closest point of the sphere.
    ///
    /// # Errors
    /// As [`residual`](Self::residual); [`PdeError::Parameter`] naming `field` (value 0) if
    /// `u = 0`, which has no unique closest point.
    fn project(&self, u: ArrayView3<f64>) -> Result<Array3<f64>> {
        check_field(self.shape, u)?;
        // Scaled by max |u| so that fields near the overflow threshold still project.
        let peak = max_abs(u.iter());
        if peak == 0.0 {
            let reason = "the zero field has no closest point of fixed energy (all are equally close)";
            return Err(PdeError::Parameter { name: "field", value: 0.0, reason });
        }
        let scaled: f64 = u.iter().map(|x| (x / peak) * (x / peak)).sum();
        let factor = (self.target / (self.weight * scaled)).sqrt() / peak;
        Ok(u.mapv(|x| factor * x))
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

    fn constraints() -> [FixedEnergy; 2] {
        [
            FixedEnergy::new([1, 16, 16], 40.0).unwrap(),
            FixedEnergy::kinetic(&Grid2d::new(48, 32, 2.0 * PI, PI).unwrap(), 0.3).unwrap(),
        ]
    }

    #[test]
    fn projection_is_feasible_idempotent_and_closest() {
        for (k, c) in constraints().into_iter().enumerate() {
            let u = uniform_field(c.shape(), 1, k as u64);
            let p = assert_projects(&c, u.view(), 1e-14);
            assert!(c.max_violation(p.view()).unwrap() <= 1e-8);
            // Random points of the sphere, and small perturbations of p moved back onto it, are
            // all farther from u than p.
            let dist = |z: &Array3<f64>| norm3(&(&u - z));
            let best = dist(&p);
            for trial in 0..8 {
                let z = c.project(uniform_field(c.shape(), 2, trial).view()).unwrap();
                assert!(dist(&z) > best);
                let near = c.project((&p + &(1e-3 * &uniform_field(c.shape(), 3, trial))).view()).unwrap();
                assert!(dist(&near) >= best);
            }
        }
    }

    #[test]
    fn gauss_newton_agrees_with_radial_scaling() {
        for (k, c) in constraints().into_iter().enumerate() {
            // Far inside the sphere the first step overshoots far outside; Newton then halves the
            // radius per step until it is close, so the violation first grows for several steps.
            for scale in [1e-3, 0.1, 10.0] {
                let u = scale * uniform_field(c.shape(), 4, k as u64);
                let exact = c.project(u.view()).unwrap();
                for dense_limit in [64, 0] {
                    let params = GaussNewtonParams { dense_limit, ..Default::default() };
                    let (gn, report) = gauss_newton_project(&c, u.view(), &params).unwrap();
                    let diff = rel_diff(gn.view(), exact.view());
                    assert!(diff <= 1e-9, "{diff:e}");
                    assert!(report.iterations <= 20, "{report:?}");
                }
            }
        }
    }

    #[test]
    fn jacobian_is_consistent() {
        for (k, c) in constraints().into_iter().enumerate() {
            let u = uniform_field(c.shape(), 5, k as u64);
            assert_adjoint(&c, u.view(), 6);
            assert_jvp_matches_differences(&c, u.view(), 7, 1e-4, 1e-8);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let c = &constraints()[0];
        assert_rejects_bad_input(c, uniform_field(c.shape(), 8, 0).view());
        let huge = 1e200 * uniform_field(c.shape(), 8, 1);
        assert!(c.relative_violation(c.project(huge.view()).unwrap().view()).unwrap() <= 1e-14);
        let zero = Array3::zeros(c.shape());
        assert!(matches!(c.project(zero.view()), Err(PdeError::Parameter { name: "field", .. })));
        for (target, weight, name) in [(0.0, 1.0, "target"), (-1.0, 1.0, "target"), (1.0, f64::INFINITY, "weight")] {
            let err = FixedEnergy::with_weight([1, 4, 4], target, weight).unwrap_err();
            assert!(matches!(err, PdeError::Parameter { name: n, .. } if n == name));
        }
    }
}
