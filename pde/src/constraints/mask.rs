//! Prescribed values on a mask, `h(u) = u[mask] − values[mask]` (boundary values, observations);
//! projection = overwrite the masked entries.

use std::ops::Range;

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView3};

use super::{Constraint, check_constraint_shape, check_direction, check_field, check_multiplier, max_abs};
use crate::error::{PdeError, Result, ensure_shape};

/// The entries of `u` where `mask` is true equal `values` there: `h(u) = u[mask] − values[mask]`,
/// one row per masked entry in row-major order (channel, then y, then x).
///
/// Linear, with `J` a selection matrix and `J Jᵀ = I`; the closest feasible field overwrites the
/// masked entries and keeps the rest. Constructors: [`new`](Self::new) for any mask,
/// [`boundary`](Self::boundary) for the boundary ring of some channels (Dirichlet values),
/// [`region`](Self::region) for a rectangular observation window.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskValues {
    mask: Array3<bool>,
    values: Array3<f64>,
    /// `(channel, y, x)` of each masked entry, row-major.
    index: Vec<[usize; 3]>,
    /// `values` at the masked entries.
    targets: Vec<f64>,
}

impl MaskValues {
    /// Pins `u` to `values` where `mask` is true.
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] for an empty axis; [`PdeError::Shape`] naming `values` if its
    /// shape differs from the mask's; [`PdeError::NonFinite`] naming `values` for a non-finite
    /// value at a masked entry (unmasked values are not used and may be anything).
    pub fn new(mask: Array3<bool>, values: Array3<f64>) -> Result<Self> {
        let shape = dims(&mask);
        check_constraint_shape(shape)?;
        ensure_shape("values", mask.shape(), values.shape())?;
        let mut index = Vec::new();
        let mut targets = Vec::new();
        for (((c, i, j), &m), &v) in mask.indexed_iter().zip(values.iter()) {
            if m {
                if !v.is_finite() {
                    let flat = (c * shape[1] + i) * shape[2] + j;
                    return Err(PdeError::NonFinite { what: "values", index: flat });
                }
                index.push([c, i, j]);
                targets.push(v);
            }
        }
        Ok(Self { mask, values, index, targets })
    }

    /// Pins the boundary ring (first and last row and column) of each listed channel to `values`
    /// there, e.g. Dirichlet data; other entries of `values` are not used.
    ///
    /// # Errors
    /// As [`new`](Self::new); [`PdeError::Parameter`] naming `channel` for a channel out of range.
    pub fn boundary(values: Array3<f64>, channels: &[usize]) -> Result<Self> {
        let [_, ny, nx] = dims(&values);
        Self::from_channels(values, channels, |i, j| i == 0 || j == 0 || i + 1 == ny || j + 1 == nx)
    }

    /// Pins the rectangle `rows × cols` (half-open index ranges along y and x) of each listed
    /// channel to `values` there, e.g. an observed window.
    ///
    /// # Errors
    /// As [`boundary`](Self::boundary); [`PdeError::Parameter`] naming `rows` or `cols` for an
    /// empty range or one that leaves the grid.
    pub fn region(values: Array3<f64>, channels: &[usize], rows: Range<usize>, cols: Range<usize>) -> Result<Self> {
        let [_, ny, nx] = dims(&values);
        for (name, range, n) in [("rows", &rows, ny), ("cols", &cols, nx)] {
            if range.is_empty() || range.end > n {
                let reason = "the range must be non-empty and inside the grid";
                return Err(PdeError::Parameter { name, value: range.end as f64, reason });
            }
        }
        Self::from_channels(values, channels, |i, j| rows.contains(&i) && cols.contains(&j))
    }

    fn from_channels(values: Array3<f64>, channels: &[usize], inside: impl Fn(usize, usize) -> bool) -> Result<Self> {
        let shape = dims(&values);
        if let Some(&c) = channels.iter().find(|&&c| c >= shape[0]) {
            let reason = "channel index out of range for the field";
            return Err(PdeError::Parameter { name: "channel", value: c as f64, reason });
        }
        let mask = Array3::from_shape_fn(shape, |(c, i, j)| channels.contains(&c) && inside(i, j));
        Self::new(mask, values)
    }

    /// The mask (true = pinned).
    pub fn mask(&self) -> &Array3<bool> {
        &self.mask
    }

    /// The prescribed values (only the masked entries are used).
    pub fn values(&self) -> &Array3<f64> {
        &self.values
    }
}

fn dims<T>(a: &Array3<T>) -> [usize; 3] {
    let (c, ny, nx) = a.dim();
    [c, ny, nx]
}

impl Constraint for MaskValues {
    fn name(&self) -> String {
        format!("mask values ({} entries)", self.index.len())
    }

    fn shape(&self) -> [usize; 3] {
        dims(&self.mask)
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn is_linear(&self) -> bool {
        true
    }

    /// `u − values` at the masked entries, row-major.
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `field`.
    fn residual(&self, u: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape(), u)?;
        Ok(self.index.iter().zip(&self.targets).map(|(&k, &t)| u[k] - t).collect())
    }

    /// `v` at the masked entries.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `v` (naming `direction`).
    fn jvp(&self, u: ArrayView3<f64>, v: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape(), u)?;
        check_direction(self.shape(), v)?;
        Ok(self.index.iter().map(|&k| v[k]).collect())
    }

    /// `w` scattered to the masked entries, 0 elsewhere.
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `w` (naming `multiplier`).
    fn vjp(&self, u: ArrayView3<f64>, w: ArrayView1<f64>) -> Result<Array3<f64>> {
        check_field(self.shape(), u)?;
        check_multiplier(self.len(), w)?;
        let mut out = Array3::zeros(self.shape());
        for (&k, &wi) in self.index.iter().zip(&w) {
            out[k] = wi;
        }
        Ok(out)
    }

    /// The selection matrix: row `r` has a 1 at the flat index of the `r`-th masked entry.
    fn dense_jacobian(&self, u: ArrayView3<f64>) -> Option<Result<Array2<f64>>> {
        let shape = self.shape();
        Some(check_field(shape, u).map(|()| {
            let mut jac = Array2::zeros((self.len(), shape.iter().product()));
            for (row, &[c, i, j]) in self.index.iter().enumerate() {
                jac[[row, (c * shape[1] + i) * shape[2] + j]] = 1.0;
            }
            jac
        }))
    }

    /// `max(‖values[mask]‖∞, ‖u[mask]‖∞)`.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn residual_scale(&self, u: ArrayView3<f64>) -> Result<f64> {
        check_field(self.shape(), u)?;
        Ok(self.index.iter().fold(max_abs(&self.targets), |m, &k| m.max(u[k].abs())))
    }

    /// `u` with the masked entries replaced by `values`: exactly feasible.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    fn project(&self, u: ArrayView3<f64>) -> Result<Array3<f64>> {
        check_field(self.shape(), u)?;
        let mut out = u.to_owned();
        for (&k, &t) in self.index.iter().zip(&self.targets) {
            out[k] = t;
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

    fn constraints() -> [MaskValues; 2] {
        let ring = MaskValues::boundary(uniform_field([2, 9, 9], 10, 0), &[1]).unwrap();
        let window = MaskValues::region(uniform_field([1, 20, 30], 11, 0), &[0], 3..7, 10..25).unwrap();
        [ring, window]
    }

    #[test]
    fn constructors_build_the_expected_masks() {
        let [ring, window] = constraints();
        assert_eq!(ring.len(), 4 * 8);
        assert!(ring.mask().index_axis(ndarray::Axis(0), 0).iter().all(|m| !m));
        assert!(ring.mask()[[1, 0, 4]] && ring.mask()[[1, 8, 8]] && !ring.mask()[[1, 1, 1]]);
        assert_eq!(window.len(), 4 * 15);
        assert!(window.mask()[[0, 3, 10]] && !window.mask()[[0, 7, 10]] && !window.mask()[[0, 3, 25]]);
        let mut mask = Array3::from_elem((1, 3, 3), false);
        mask[[0, 2, 1]] = true;
        mask[[0, 0, 2]] = true;
        let points = MaskValues::new(mask, Array3::from_shape_fn((1, 3, 3), |(_, i, j)| (3 * i + j) as f64)).unwrap();
        // Row-major order of the masked entries.
        assert_eq!(points.residual(Array3::zeros((1, 3, 3)).view()).unwrap().to_vec(), vec![-2.0, -7.0]);
    }

    #[test]
    fn projection_is_feasible_idempotent_and_orthogonal() {
        for (k, c) in constraints().into_iter().enumerate() {
            let u = uniform_field(c.shape(), 1, k as u64);
            let p = assert_projects(&c, u.view(), 0.0);
            assert_eq!(c.max_violation(p.view()).unwrap(), 0.0);
            assert_orthogonal(&c, u.view(), uniform_field(c.shape(), 2, k as u64).view());
            let unmasked = ndarray::Zip::from(&p).and(&u).and(c.mask()).all(|p, u, &m| m || p == u);
            assert!(unmasked);
        }
    }

    #[test]
    fn gauss_newton_agrees_with_overwriting() {
        for (k, c) in constraints().into_iter().enumerate() {
            let u = uniform_field(c.shape(), 3, k as u64);
            let exact = c.project(u.view()).unwrap();
            for dense_limit in [64, 0] {
                let params = GaussNewtonParams { dense_limit, ..Default::default() };
                let (gn, report) = gauss_newton_project(&c, u.view(), &params).unwrap();
                assert!(rel_diff(gn.view(), exact.view()) <= 1e-15);
                assert_eq!(report.iterations, 1);
            }
        }
    }

    #[test]
    fn jacobian_is_consistent() {
        for (k, c) in constraints().into_iter().enumerate() {
            let u = uniform_field(c.shape(), 4, k as u64);
            assert_adjoint(&c, u.view(), 5);
            assert_jvp_matches_differences(&c, u.view(), 6, 1e-3, 1e-12);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let c = &constraints()[0];
        assert_rejects_bad_input(c, uniform_field(c.shape(), 9, 0).view());
        let mut values = Array3::zeros((1, 4, 4));
        values[[0, 0, 1]] = f64::NAN;
        assert!(matches!(
            MaskValues::boundary(values.clone(), &[0]),
            Err(PdeError::NonFinite { what: "values", index: 1 })
        ));
        values[[0, 0, 1]] = 0.0;
        values[[0, 2, 2]] = f64::NAN; // not masked: fine
        assert!(MaskValues::boundary(values.clone(), &[0]).is_ok());
        assert!(matches!(MaskValues::boundary(values.clone(), &[1]), Err(PdeError::Parameter { name: "channel", .. })));
        assert!(matches!(
            MaskValues::region(values.clone(), &[0], 2..5, 0..1),
            Err(PdeError::Parameter { name: "rows", .. })
        ));
        assert!(matches!(
            MaskValues::region(values.clone(), &[0], 1..2, 3..3),
            Err(PdeError::Parameter { name: "cols", .. })
        ));
        let wrong = MaskValues::new(Array3::from_elem((1, 4, 5), true), values);
        assert!(matches!(wrong, Err(PdeError::Shape { what: "values", .. })));
    }
}
