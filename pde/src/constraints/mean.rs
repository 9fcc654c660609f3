//! Fixed channel means `h_i(u) = mean(u_{c_i}) − t_i` (equivalently fixed total mass,
//! `mass = mean × area`); projection = add the constant `t_i − mean(u_{c_i})` to channel `c_i`.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView3, Axis, s};

use super::{Constraint, check_constraint_shape, check_direction, check_field, check_multiplier, max_abs};
use crate::error::{PdeError, Result};

/// The means of some channels are fixed: `h_i(u) = mean(u_{c_i}) − t_i`, one row per listed
/// channel, in the order given.
///
/// On a periodic grid covering `[0, Lx) × [0, Ly)` the rectangle rule gives the total mass
/// `∫ u_c = Σ u_c dx dy = mean(u_c) · Lx Ly`, so fixing the mean fixes the mass (mass
/// conservation); [`FixedMean::total_mass`] takes the mass and the area. The constraint is
/// linear with `J Jᵀ = diag(1/N)`, `N = ny · nx`; the closest feasible field adds the constant
/// `t_i − mean(u_{c_i})` to channel `c_i` and leaves the other channels alone.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedMean {
    shape: [usize; 3],
    targets: Vec<(usize, f64)>,
}

impl FixedMean {
    /// Fixes the mean of `channel` to `target` on fields of shape `[C, ny, nx]`.
    ///
    /// # Errors
    /// As [`with_targets`](Self::with_targets).
    pub fn new(shape: [usize; 3], channel: usize, target: f64) -> Result<Self> {
        Self::with_targets(shape, vec![(channel, target)])
    }

    /// Fixes the mean of each listed `(channel, target)`.
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] for an empty axis in `shape`; [`PdeError::Parameter`] naming
    /// `channel` for a channel out of range or listed twice, or `target` for a non-finite target.
    pub fn with_targets(shape: [usize; 3], targets: Vec<(usize, f64)>) -> Result<Self> {
        check_constraint_shape(shape)?;
        for (k, &(channel, target)) in targets.iter().enumerate() {
            if channel >= shape[0] {
                let reason = "channel index out of range for the field";
                return Err(PdeError::Parameter { name: "channel", value: channel as f64, reason });
            }
            if targets[..k].iter().any(|&(c, _)| c == channel) {
                let reason = "channel listed twice (one mean per channel)";
                return Err(PdeError::Parameter { name: "channel", value: channel as f64, reason });
            }
            if !target.is_finite() {
                return Err(PdeError::Parameter { name: "target", value: target, reason: "must be finite" });
            }
        }
        Ok(Self { shape, targets })
    }

    /// Fixes the total mass `∫ u_channel = mean · area` over a domain of the given `area`
    /// (`Lx · Ly` for a periodic grid).
    ///
    /// # Errors
    /// As [`with_targets`](Self::with_targets); [`PdeError::Parameter`] naming `area` (not finite
    /// and positive) or `mass` (not finite).
    pub fn total_mass(shape: [usize; 3], channel: usize, mass: f64, area: f64) -> Result<Self> {
        if !(area.is_finite() && area > 0.0) {
            return Err(PdeError::Parameter { name: "area", value: area, reason: "must be finite and positive" });
        }
        if !mass.is_finite() {
            return Err(PdeError::Parameter { name: "mass", value: mass, reason: "must be finite" });
        }
        Self::new(shape, channel, mass / area)
    }

    /// The `(channel, target mean)` pairs, in row order.
    pub fn targets(&self) -> &[(usize, f64)] {
        &self.targets
    }

    fn points(&self) -> f64 {
        (self.shape[1] * self.shape[2]) as f64
    }
}

impl Constraint for FixedMean {
    fn name(&self) -> String {
        let channels: Vec<String> = self.targets.iter().map(|(c, _)| c.to_string()).collect();
        format!("fixed mean (channels {})", channels.join(", "))
    }

    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn len(&self) -> usize {
        self.targets.len()
    }

    fn is_linear(&self) -> bool {
        true
    }

    /// `mean(u_{c_i}) − t_i` for each listed channel.
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `field`.
    fn residual(&self, u: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape, u)?;
        let n = self.points();
        Ok(self.targets.iter().map(|&(c, t)| u.index_axis(Axis(0), c).sum() / n - t).collect())
    }

    /// `mean(v_{c_i})`.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `v` (naming `direction`).
    fn jvp(&self, u: ArrayView3<f64>, v: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape, u)?;
        check_direction(self.shape, v)?;
        let n = self.points();
        Ok(self.targets.iter().map(|&(c, _)| v.index_axis(Axis(0), c).sum() / n).collect())
    }

    /// `w_i / N` on every point of channel `c_i`, 0 elsewhere.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `w` (naming `multiplier`).
    fn vjp(&self, u: ArrayView3<f64>, w: ArrayView1<f64>) -> Result<Array3<f64>> {
        check_field(self.shape, u)?;
        check_multiplier(self.len(), w)?;
        let n = self.points();
        let mut out = Array3::zeros(self.shape);
        for (&(c, _), &wi) in self.targets.iter().zip(&w) {
            out.slice_mut(s![c, .., ..]).fill(wi / n);
        }
        Ok(out)
    }

    /// Row `i` is `1/N` on channel `c_i`.
    fn dense_jacobian(&self, u: ArrayView3<f64>) -> Option<Result<Array2<f64>>> {
        Some(check_field(self.shape, u).map(|()| {
            let per_channel = self.shape[1] * self.shape[2];
            let n = self.points();
            let mut jac = Array2::zeros((self.len(), self.shape[0] * per_channel));
            for (row, &(c, _)) in self.targets.iter().enumerate() {
                jac.slice_mut(s![row, c * per_channel..(c + 1) * per_channel]).fill(1.0 / n);
            }
            jac
        }))
    }

    /// `max(|t_i|, ‖u_{c_i}‖∞)` over the listed channels.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn residual_scale(&self, u: ArrayView3<f64>) -> Result<f64> {
        check_field(self.shape, u)?;
        Ok(self.targets.iter().fold(0.0_f64, |m, &(c, t)| m.max(t.abs()).max(max_abs(u.index_axis(Axis(0), c)))))
    }

    /// Adds `t_i − mean(u_{c_i})` to channel `c_i`: the closest field with the given means.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn project(&self, u: ArrayView3<f64>) -> Result<Array3<f64>> {
        let h = self.residual(u)?;
        let mut out = u.to_owned();
        for (&(c, _), &hi) in self.targets.iter().zip(&h) {
            out.index_axis_mut(Axis(0), c).mapv_inplace(|x| x - hi);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::constraints::gauss_newton::rel_diff;
    use crate::constraints::testing::*;
    use crate::constraints::{GaussNewtonParams, gauss_newton_project};

    fn constraints() -> [FixedMean; 2] {
        [
            FixedMean::new([1, 16, 16], 0, 0.3).unwrap(),
            FixedMean::with_targets([3, 24, 40], vec![(2, -1.5), (0, 4.0)]).unwrap(),
        ]
    }

    #[test]
    fn projection_is_feasible_idempotent_and_orthogonal() {
        for (k, c) in constraints().into_iter().enumerate() {
            let u = uniform_field(c.shape(), 1, k as u64);
            let p = assert_projects(&c, u.view(), 1e-14);
            assert!(c.max_violation(p.view()).unwrap() <= 1e-14 * 4.0);
            assert_orthogonal(&c, u.view(), uniform_field(c.shape(), 2, k as u64).view());
            // Unlisted channels are untouched.
            if c.shape()[0] == 3 {
                assert_eq!(p.index_axis(Axis(0), 1), u.index_axis(Axis(0), 1));
            }
        }
    }

    #[test]
    fn gauss_newton_agrees_with_the_constant_shift() {
        for (k, c) in constraints().into_iter().enumerate() {
            let u = uniform_field(c.shape(), 3, k as u64);
            let exact = c.project(u.view()).unwrap();
            for dense_limit in [64, 0] {
                let params = GaussNewtonParams { dense_limit, ..Default::default() };
                let (gn, report) = gauss_newton_project(&c, u.view(), &params).unwrap();
                assert!(rel_diff(gn.view(), exact.view()) <= 1e-12);
                assert_eq!(report.iterations, 1);
            }
        }
    }

    #[test]
    fn jacobian_is_consistent() {
        for (k, c) in constraints().into_iter().enumerate() {
            let u = uniform_field(c.shape(), 4, k as u64);
            assert_adjoint(&c, u.view(), 5);
            assert_jvp_matches_differences(&c, u.view(), 6, 1e-3, 1e-10);
            let jac = c.dense_jacobian(u.view()).unwrap().unwrap();
            let v = uniform_field(c.shape(), 7, k as u64);
            let flat = Array1::from_iter(v.iter().copied());
            let diff = &jac.dot(&flat) - &c.jvp(u.view(), v.view()).unwrap();
            assert!(max_abs(diff.iter()) < 1e-15);
        }
    }

    #[test]
    fn total_mass_is_mean_times_area() {
        let (lx, ly) = (2.0, 0.5);
        let c = FixedMean::total_mass([2, 8, 16], 1, 3.0, lx * ly).unwrap();
        let p = c.project(uniform_field(c.shape(), 8, 0).view()).unwrap();
        let (dx, dy) = (lx / 16.0, ly / 8.0);
        let mass = p.index_axis(Axis(0), 1).sum() * dx * dy;
        assert!((mass - 3.0).abs() < 1e-13);
    }

    #[test]
    fn rejects_bad_input() {
        let c = &constraints()[1];
        assert_rejects_bad_input(c, uniform_field(c.shape(), 9, 0).view());
        let param =
            |r: Result<FixedMean>, which: &str| matches!(r, Err(PdeError::Parameter { name, .. }) if name == which);
        assert!(param(FixedMean::new([2, 4, 4], 2, 0.0), "channel"));
        assert!(param(FixedMean::with_targets([2, 4, 4], vec![(1, 0.0), (1, 1.0)]), "channel"));
        assert!(param(FixedMean::new([2, 4, 4], 0, f64::NAN), "target"));
        assert!(param(FixedMean::total_mass([2, 4, 4], 0, 1.0, 0.0), "area"));
        assert!(matches!(FixedMean::new([2, 0, 4], 0, 0.0), Err(PdeError::InvalidGrid(_))));
    }
}
