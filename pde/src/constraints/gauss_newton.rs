//! Generic projection onto `{u : h(u) = 0}` by Gauss–Newton: `u ← u − Jᵀ (J Jᵀ)⁻¹ h(u)`.
//!
//! Each step is the minimum-norm correction that zeroes the linearisation of `h` at `u`, so for
//! linear `h` one step lands on the orthogonal projection (up to the accuracy of the inner
//! solve), and every iterate differs from the start by a vector in the row space of the
//! Jacobians. The normal equations `(J Jᵀ) y = h` are solved by dense Cholesky (faer) when the
//! constraint offers a dense Jacobian with at most [`GaussNewtonParams::dense_limit`] rows, and
//! otherwise by matrix-free conjugate gradients with `p ↦ J (Jᵀ p)`.

use faer::{Mat, Side, linalg::solvers::Solve};
use ndarray::{Array1, Array2, Array3, ArrayView3, Zip};

use super::{Constraint, check_field, max_abs};
use crate::error::{PdeError, Result};

/// Tuning knobs of [`gauss_newton_project`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussNewtonParams {
    /// Stop when `‖h(u)‖∞ ≤ tol · residual_scale(u)` (see
    /// [`Constraint::scaled_violation`]). Default `1e-10`.
    pub tol: f64,
    /// Largest number of Gauss–Newton steps. Default 50.
    pub max_iter: usize,
    /// Relative tolerance `‖r‖₂ ≤ cg_tol ‖h‖₂` of the conjugate-gradient solve. Default `1e-12`.
    pub cg_tol: f64,
    /// Largest number of conjugate-gradient iterations per step. Default 2000.
    pub cg_max_iter: usize,
    /// Constraints with at most this many rows and a [`Constraint::dense_jacobian`] use the
    /// dense Cholesky solve. Default 64.
    pub dense_limit: usize,
}

impl Default for GaussNewtonParams {
    fn default() -> Self {
        Self { tol: 1e-10, max_iter: 50, cg_tol: 1e-12, cg_max_iter: 2000, dense_limit: 64 }
    }
}

impl GaussNewtonParams {
    fn validate(&self) -> Result<()> {
        for (name, value) in [("tol", self.tol), ("cg_tol", self.cg_tol)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(PdeError::Parameter { name, value, reason: "must be finite and positive" });
            }
        }
        Ok(())
    }
}

/// What a Gauss–Newton projection did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GnReport {
    /// Gauss–Newton steps taken (0 when the input was already feasible).
    pub iterations: usize,
    /// The final `‖h‖∞`.
    pub residual: f64,
    /// The final `‖h‖∞ / residual_scale` (what `tol` is compared with).
    pub relative: f64,
    /// Conjugate-gradient iterations summed over all steps (0 on the dense path).
    pub inner_iterations: usize,
}

/// Consecutive stalled steps (no new best violation after a step shorter than
/// [`SMALL_STEP`] `· ‖u‖∞`) after which the iteration is declared stuck at its round-off floor.
const STALLED_STEPS: usize = 5;

/// Relative size below which a step counts as not moving the field.
const SMALL_STEP: f64 = 1e-8;

/// Projects `u` onto `{h = 0}` by Gauss–Newton, for any constraint.
///
/// Returns the projected field and a [`GnReport`]. For linear constraints the result is the
/// orthogonal projection; for nonlinear ones it is the limit of minimum-norm linearised
/// corrections, which agrees with the closest point to first order in the distance to the
/// constraint set (and exactly for [`super::FixedEnergy`], whose iterates stay on the ray of `u`).
///
/// # Errors
/// [`PdeError::Parameter`] for a non-positive `tol` or `cg_tol`; the constraint's own errors
/// for a bad `u`; [`PdeError::NotConverged`] (with the relative violation reached) when
/// `max_iter` steps do not reach `tol`, or when five consecutive steps of relative size below
/// `1e-8` fail to improve the violation (a round-off floor above `tol`).
pub fn gauss_newton_project<C: Constraint + ?Sized>(
    c: &C,
    u: ArrayView3<f64>,
    params: &GaussNewtonParams,
) -> Result<(Array3<f64>, GnReport)> {
    gauss_newton_with(c, u, params, |x, h| generic_step(c, x, h, params))
}

/// The Gauss–Newton loop with a custom step: `step(u, h)` returns `(Jᵀ (J Jᵀ)⁻¹ h, inner
/// iterations)`, or any other correction to subtract from `u` (e.g. a shortened one).
pub(crate) fn gauss_newton_with<C, S>(
    c: &C,
    u: ArrayView3<f64>,
    params: &GaussNewtonParams,
    mut step: S,
) -> Result<(Array3<f64>, GnReport)>
where
    C: Constraint + ?Sized,
    S: FnMut(ArrayView3<f64>, &Array1<f64>) -> Result<(Array3<f64>, usize)>,
{
    params.validate()?;
    check_field(c.shape(), u)?;
    let mut x = u.to_owned();
    let mut inner_iterations = 0;
    let (mut best, mut stalled, mut small_step) = (f64::INFINITY, 0, false);
    let mut iterations = 0;
    loop {
        let h = c.residual(x.view())?;
        let relative = c.scaled_violation(x.view(), h.view())?;
        if relative <= params.tol {
            return Ok((x, GnReport { iterations, residual: max_abs(h.iter()), relative, inner_iterations }));
        }
        if relative < best {
            (best, stalled) = (relative, 0);
        } else if small_step {
            stalled += 1;
        }
        if iterations == params.max_iter || stalled >= STALLED_STEPS || !relative.is_finite() {
            return Err(PdeError::NotConverged {
                method: "Gauss-Newton projection",
                iterations,
                residual: relative,
                tolerance: params.tol,
            });
        }
        let (dx, inner) = step(x.view(), &h)?;
        small_step = max_abs(dx.iter()) <= SMALL_STEP * max_abs(x.iter());
        x -= &dx;
        inner_iterations += inner;
        iterations += 1;
    }
}

/// `Jᵀ (J Jᵀ)⁻¹ h` by dense Cholesky when available, else conjugate gradients.
fn generic_step<C: Constraint + ?Sized>(
    c: &C,
    x: ArrayView3<f64>,
    h: &Array1<f64>,
    params: &GaussNewtonParams,
) -> Result<(Array3<f64>, usize)> {
    let dense = if c.len() <= params.dense_limit { c.dense_jacobian(x) } else { None };
    if let Some(jac) = dense {
        let jac = jac?;
        if let Some(y) = dense_normal_solve(&jac, h) {
            let dx = jac.t().dot(&y);
            return Array3::from_shape_vec(c.shape(), dx.to_vec())
                .map_err(|e| PdeError::Solver(format!("dense Gauss-Newton step: {e}")))
                .map(|dx| (dx, 0));
        }
        // Singular J Jᵀ (redundant rows): conjugate gradients handle consistent singular systems.
    }
    let (y, iterations) = conjugate_gradients(
        |p| {
            let jtp = c.vjp(x, p.view())?;
            c.jvp(x, jtp.view())
        },
        h,
        params.cg_tol,
        params.cg_max_iter,
    )?;
    Ok((c.vjp(x, y.view())?, iterations))
}

/// Solves `(J Jᵀ) y = h` by dense Cholesky; `None` if `J Jᵀ` is not numerically positive definite.
fn dense_normal_solve(jac: &Array2<f64>, h: &Array1<f64>) -> Option<Array1<f64>> {
    let gram = jac.dot(&jac.t());
    let m = gram.nrows();
    if m != h.len() {
        return None;
    }
    let gram = Mat::from_fn(m, m, |i, j| gram[[i, j]]);
    let llt = gram.llt(Side::Lower).ok()?;
    let mut y = Mat::from_fn(m, 1, |i, _| h[i]);
    llt.solve_in_place(y.as_mut());
    let y = Array1::from_shape_fn(m, |i| y[(i, 0)]);
    y.iter().all(|v| v.is_finite()).then_some(y)
}

/// Conjugate gradients for `G y = b` with `G` symmetric positive semidefinite and `b` in its
/// range, from `y = 0`: stops when `‖r‖₂ ≤ tol ‖b‖₂`, at `max_iter`, or when a search direction
/// has no positive curvature (the current iterate is returned in every case).
pub(crate) fn conjugate_gradients(
    mut apply: impl FnMut(&Array1<f64>) -> Result<Array1<f64>>,
    b: &Array1<f64>,
    tol: f64,
    max_iter: usize,
) -> Result<(Array1<f64>, usize)> {
    let dot = |a: &Array1<f64>, b: &Array1<f64>| a.dot(b);
    let mut y = Array1::zeros(b.len());
    let mut r = b.clone();
    let mut p = r.clone();
    let mut rr = dot(&r, &r);
    let stop = tol * tol * rr;
    let mut iterations = 0;
    while rr > stop && iterations < max_iter {
        let gp = apply(&p)?;
        let pgp = dot(&p, &gp);
        if pgp.is_nan() || pgp <= 0.0 {
            break;
        }
        let alpha = rr / pgp;
        Zip::from(&mut y).and(&p).for_each(|y, &p| *y += alpha * p);
        Zip::from(&mut r).and(&gp).for_each(|r, &g| *r -= alpha * g);
        iterations += 1;
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        rr = rr_new;
        Zip::from(&mut p).and(&r).for_each(|p, &r| *p = r + beta * *p);
    }
    Ok((y, iterations))
}

/// Relative difference `‖a − b‖∞ / ‖b‖∞` (test helper shared by the constraint tests).
#[cfg(test)]
pub(crate) fn rel_diff<D: ndarray::Dimension>(a: ndarray::ArrayView<f64, D>, b: ndarray::ArrayView<f64, D>) -> f64 {
    let diff = Zip::from(&a).and(&b).fold(0.0_f64, |m, x, y| m.max((x - y).abs()));
    super::ratio(diff, max_abs(b.iter()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::constraints::testing::uniform_field;
    use crate::constraints::{FixedEnergy, FixedMean};

    #[test]
    fn conjugate_gradients_solve_a_small_spd_system() {
        let g = Array2::from_shape_vec((3, 3), vec![4.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 2.0]).unwrap();
        let b = Array1::from_vec(vec![1.0, 2.0, 3.0]);
        let (y, it) = conjugate_gradients(|p| Ok(g.dot(p)), &b, 1e-14, 100).unwrap();
        assert!(it <= 4, "{it}");
        assert!(max_abs((&g.dot(&y) - &b).iter()) < 1e-13);
        let (y0, it0) = conjugate_gradients(|p| Ok(g.dot(p)), &Array1::zeros(3), 1e-14, 100).unwrap();
        assert_eq!((y0.sum(), it0), (0.0, 0));
    }

    #[test]
    fn dense_and_matrix_free_paths_agree() {
        let shape = [2, 12, 10];
        let u = uniform_field(shape, 3, 0);
        let c = FixedEnergy::new(shape, 7.0).unwrap();
        let dense = gauss_newton_project(&c, u.view(), &GaussNewtonParams::default()).unwrap();
        let cg_params = GaussNewtonParams { dense_limit: 0, ..Default::default() };
        let cg = gauss_newton_project(&c, u.view(), &cg_params).unwrap();
        assert_eq!(dense.1.inner_iterations, 0);
        assert!(cg.1.inner_iterations >= cg.1.iterations);
        assert!(rel_diff(cg.0.view(), dense.0.view()) < 1e-13);
        assert!(dense.1.relative <= 1e-10 && cg.1.relative <= 1e-10);
    }

    #[test]
    fn failures_are_errors() {
        let shape = [1, 6, 6];
        let u = uniform_field(shape, 4, 0);
        let c = FixedMean::new(shape, 0, 1.0).unwrap();
        let no_steps = GaussNewtonParams { max_iter: 0, ..Default::default() };
        let err = gauss_newton_project(&c, u.view(), &no_steps).unwrap_err();
        assert!(matches!(err, PdeError::NotConverged { iterations: 0, residual, .. } if residual > 1e-3), "{err}");
        for bad in [
            GaussNewtonParams { tol: 0.0, ..Default::default() },
            GaussNewtonParams { cg_tol: f64::NAN, ..Default::default() },
        ] {
            assert!(matches!(gauss_newton_project(&c, u.view(), &bad), Err(PdeError::Parameter { .. })));
        }
        // The zero field has no closest point of fixed energy: J = 0, the iteration stalls.
        let e = FixedEnergy::new(shape, 1.0).unwrap();
        let zero = Array3::zeros(shape);
        assert!(matches!(
            gauss_newton_project(&e, zero.view(), &GaussNewtonParams::default()),
            Err(PdeError::NotConverged { .. })
        ));
        // A feasible input is returned unchanged without a step.
        let p = c.project(u.view()).unwrap();
        let (q, report) = gauss_newton_project(&c, p.view(), &GaussNewtonParams::default()).unwrap();
        assert_eq!((q, report.iterations), (p, 0));
    }
}
