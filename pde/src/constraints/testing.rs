//! Checks shared by the constraint tests: random fields, the adjoint identity, finite
//! differences, projection properties and input validation.

#![allow(clippy::unwrap_used)]

use ndarray::{Array1, Array3, ArrayView3, Zip};
use rand::RngExt;

use super::Constraint;
use crate::error::PdeError;
use crate::rng::stream;

/// Uniform values in `[−0.5, 0.5)` from stream `(seed, index)`.
pub(crate) fn uniform_field(shape: [usize; 3], seed: u64, index: u64) -> Array3<f64> {
    let mut rng = stream(seed, index);
    Array3::from_shape_simple_fn(shape, || rng.random::<f64>() - 0.5)
}

pub(crate) fn dot3(a: &Array3<f64>, b: &Array3<f64>) -> f64 {
    Zip::from(a).and(b).fold(0.0, |s, x, y| s + x * y)
}

pub(crate) fn norm3(a: &Array3<f64>) -> f64 {
    dot3(a, a).sqrt()
}

/// `⟨J v, w⟩ = ⟨v, Jᵀ w⟩` to `1e-12` relative, for random `v`, `w`.
pub(crate) fn assert_adjoint(c: &dyn Constraint, u: ArrayView3<f64>, seed: u64) {
    for trial in 0..3 {
        let v = uniform_field(c.shape(), seed, 100 + trial);
        let w = Array1::from_iter(uniform_field([1, 1, c.len()], seed, 200 + trial));
        let jv = c.jvp(u, v.view()).unwrap();
        let jtw = c.vjp(u, w.view()).unwrap();
        let (lhs, rhs) = (jv.dot(&w), dot3(&v, &jtw));
        let scale = (jv.dot(&jv) * w.dot(&w)).sqrt().max(norm3(&v) * norm3(&jtw));
        assert!((lhs - rhs).abs() <= 1e-12 * scale, "{}: ⟨Jv,w⟩ = {lhs}, ⟨v,Jᵀw⟩ = {rhs}", c.name());
    }
}

/// `J v` against central differences of `h` with step `eps`, to `tol` relative.
pub(crate) fn assert_jvp_matches_differences(c: &dyn Constraint, u: ArrayView3<f64>, seed: u64, eps: f64, tol: f64) {
    let v = uniform_field(c.shape(), seed, 300);
    let jv = c.jvp(u, v.view()).unwrap();
    let plus = c.residual((&u + &(eps * &v)).view()).unwrap();
    let minus = c.residual((&u - &(eps * &v)).view()).unwrap();
    let fd = (plus - minus) / (2.0 * eps);
    let err = super::max_abs((&fd - &jv).iter());
    let size = super::max_abs(jv.iter());
    assert!(err <= tol * size, "{}: jvp vs differences {err:e} (size {size:e})", c.name());
}

/// The projection satisfies the constraint to `tol` (relative violation) and is idempotent.
pub(crate) fn assert_projects(c: &dyn Constraint, u: ArrayView3<f64>, tol: f64) -> Array3<f64> {
    let p = c.project(u).unwrap();
    let violation = c.relative_violation(p.view()).unwrap();
    assert!(violation <= tol, "{}: relative violation {violation:e}", c.name());
    let pp = c.project(p.view()).unwrap();
    let change = super::gauss_newton::rel_diff(pp.view(), p.view());
    assert!(change <= 1e-12, "{}: projecting a feasible field moved it by {change:e}", c.name());
    p
}

/// `⟨u − P u, P u − z⟩ = 0` for a feasible `z` (the projection of another field): `P u` is the
/// closest point of an affine set.
pub(crate) fn assert_orthogonal(c: &dyn Constraint, u: ArrayView3<f64>, other: ArrayView3<f64>) {
    let p = c.project(u).unwrap();
    let z = c.project(other).unwrap();
    let (a, b) = (&u - &p, &p - &z);
    let inner = dot3(&a, &b);
    assert!(inner.abs() <= 1e-11 * norm3(&a) * norm3(&b), "{}: ⟨u − Pu, Pu − z⟩ = {inner:e}", c.name());
}

/// Wrong shapes and non-finite values are errors naming the argument, for every method.
pub(crate) fn assert_rejects_bad_input(c: &dyn Constraint, good: ArrayView3<f64>) {
    let [ch, ny, nx] = c.shape();
    let wrong = Array3::<f64>::zeros((ch, ny + 1, nx));
    let mut nan = good.to_owned();
    nan[[ch - 1, ny / 2, nx / 2]] = f64::NAN;
    let index = (ch - 1) * ny * nx + (ny / 2) * nx + nx / 2;
    let w = Array1::zeros(c.len());
    let is_shape = |e: PdeError| matches!(e, PdeError::Shape { what: "field", .. });
    let is_nan = |e: PdeError| matches!(e, PdeError::NonFinite { what: "field", index: i } if i == index);
    for (x, check) in [(wrong.view(), &is_shape as &dyn Fn(PdeError) -> bool), (nan.view(), &is_nan)] {
        assert!(check(c.residual(x).unwrap_err()), "{}: residual", c.name());
        assert!(check(c.jvp(x, good).unwrap_err()), "{}: jvp", c.name());
        assert!(check(c.vjp(x, w.view()).unwrap_err()), "{}: vjp", c.name());
        assert!(check(c.project(x).unwrap_err()), "{}: project", c.name());
        assert!(check(c.max_violation(x).unwrap_err()), "{}: max_violation", c.name());
        assert!(check(c.relative_violation(x).unwrap_err()), "{}: relative_violation", c.name());
        assert!(check(c.residual_scale(x).unwrap_err()), "{}: residual_scale", c.name());
        if let Some(j) = c.dense_jacobian(x) {
            assert!(check(j.unwrap_err()), "{}: dense_jacobian", c.name());
        }
    }
    assert!(matches!(c.jvp(good, wrong.view()), Err(PdeError::Shape { what: "direction", .. })));
    assert!(matches!(c.jvp(good, nan.view()), Err(PdeError::NonFinite { what: "direction", .. })));
    let short = Array1::zeros(c.len() + 1);
    assert!(matches!(c.vjp(good, short.view()), Err(PdeError::Shape { what: "multiplier", .. })));
    let mut w_nan = Array1::zeros(c.len());
    w_nan[0] = f64::INFINITY;
    assert!(matches!(c.vjp(good, w_nan.view()), Err(PdeError::NonFinite { what: "multiplier", .. })));
    assert!(matches!(c.scaled_violation(good, short.view()), Err(PdeError::Shape { what: "residual", .. })));
    // Still usable afterwards.
    assert!(c.project(good).is_ok());
}
