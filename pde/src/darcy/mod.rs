//! Darcy flow `−∇·(a∇u) = f` on the unit square with zero Dirichlet boundary values.
//!
//! # Grid
//!
//! `s × s` nodes including the boundary (the FNO convention): node `(i, j)` sits at
//! `x = j h`, `y = i h` with `h = 1/(s − 1)`, and every field is an `Array2<f64>` of shape
//! `(s, s)` indexed `[y, x]` (row-major, x fastest). The unknowns are the `(s − 2)²` interior
//! nodes; `u = 0` on the boundary. The coefficient `a` is given on all nodes, boundary included
//! (the faces between interior and boundary nodes use it).
//!
//! # Discretisation
//!
//! Five-point finite differences in flux form. With `E, W, N, S` the neighbours of node `P` at
//! `x + h`, `x − h`, `y + h`, `y − h`,
//!
//! ```text
//! (A(a) u)_P = [ a_e (u_P − u_E) + a_w (u_P − u_W) + a_n (u_P − u_N) + a_s (u_P − u_S) ] / h²
//! ```
//!
//! where `a_e` is the coefficient on the face between `P` and `E`, and so on. The face value is
//! the arithmetic mean `(a_P + a_E)/2` by default ([`FaceAverage::Arithmetic`]): this is what
//! the FNO and PDEBench generators use, it is second-order accurate for smooth `a`, and it keeps
//! `A(a) u` bilinear in `(a, u)`. The harmonic mean `2 a_P a_E / (a_P + a_E)`
//! ([`FaceAverage::Harmonic`]) is the flux-continuous choice for piecewise-constant media. Either
//! way, for `a > 0` the matrix on the interior unknowns is symmetric positive definite: it is
//! `Σ_faces a_f (e_P − e_Q)(e_P − e_Q)ᵀ / h²` plus positive diagonal terms from the faces to the
//! boundary.
//!
//! # Pieces
//!
//! - [`DarcyOperator`]: the matrix-free operator [`apply`](DarcyOperator::apply), the assembled
//!   sparse matrix [`assemble`](DarcyOperator::assemble), the derivative with respect to the
//!   coefficient [`apply_da`](DarcyOperator::apply_da) and its transpose
//!   [`apply_da_transpose`](DarcyOperator::apply_da_transpose), and residuals
//!   ([`residual`](DarcyOperator::residual), [`relative_residual`](DarcyOperator::relative_residual),
//!   [`residual_summary`](DarcyOperator::residual_summary)).
//! - [`DarcySolver`]: sparse Cholesky (faer) with the symbolic analysis (AMD ordering, elimination
//!   tree, supernodes) done once per grid size and reused for every coefficient field.
//! - [`FnoCoefficient`], [`PdebenchCoefficient`], [`Forcing`]: seeded coefficient and forcing
//!   generators for datasets.
//!
//! Length: 444 lines of code, 194 of tests; kept together as one subject (the operator, its assembly and residuals).

mod coefficients;
mod solve;

pub use coefficients::{FnoCoefficient, Forcing, PdebenchCoefficient};
pub use solve::{DarcySolver, DarcySolverParams, FillOrdering};

use std::borrow::Cow;

use faer::sparse::{SparseColMat, SymbolicSparseColMat};
use ndarray::{Array2, ArrayView2};

use crate::error::{PdeError, Result, ensure_finite, ensure_shape};

/// How the coefficient on the face between two neighbouring nodes is formed from the nodal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaceAverage {
    /// `(a_P + a_Q) / 2`: linear in `a`, used by the FNO and PDEBench data generators.
    #[default]
    Arithmetic,
    /// `2 a_P a_Q / (a_P + a_Q)`: flux-continuous across jumps of piecewise-constant media.
    Harmonic,
}

impl FaceAverage {
    /// The face coefficient between nodal values `p` and `q`.
    #[inline]
    pub(crate) fn value(self, p: f64, q: f64) -> f64 {
        match self {
            Self::Arithmetic => 0.5 * (p + q),
            Self::Harmonic => 2.0 * p * q / (p + q),
        }
    }

    /// The partial derivatives `(∂/∂p, ∂/∂q)` of [`value`](Self::value).
    #[inline]
    pub(crate) fn gradient(self, p: f64, q: f64) -> (f64, f64) {
        match self {
            Self::Arithmetic => (0.5, 0.5),
            Self::Harmonic => {
                let sum = p + q;
                let den = sum * sum;
                (2.0 * q * q / den, 2.0 * p * p / den)
            }
        }
    }
}

/// How well a field satisfies the discrete Darcy problem; see
/// [`DarcyOperator::residual_summary`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DarcyResidual {
    /// `‖A(a)u − f‖₂` over the interior nodes (plain Euclidean norm of the nodal values).
    pub norm: f64,
    /// The normalisation: `‖f‖₂` over the interior, or `‖ |A(a)| |u| ‖₂` when `f` vanishes there.
    pub scale: f64,
    /// `norm / scale` (0 when both vanish).
    pub relative: f64,
    /// `max |u|` over the boundary nodes, where the Dirichlet condition asks for 0.
    pub boundary_max: f64,
}

/// The discrete operator `u ↦ −∇·(a∇u)` on an `s × s` node grid of the unit square.
///
/// Cheap to build and `Copy`; it holds only the grid size and the face-averaging rule. Every
/// method validates its arguments: shapes `(s, s)`, finite values, and `a > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DarcyOperator {
    s: usize,
    face_average: FaceAverage,
}

impl DarcyOperator {
    /// The operator on `s × s` nodes (boundary included).
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] if `s < 3` (there would be no interior node).
    pub fn new(s: usize, face_average: FaceAverage) -> Result<Self> {
        check_grid(s)?;
        Ok(Self { s, face_average })
    }

    /// Nodes per side, boundary included.
    pub fn size(&self) -> usize {
        self.s
    }

    /// Grid spacing `h = 1/(s − 1)`.
    pub fn spacing(&self) -> f64 {
        1.0 / (self.s - 1) as f64
    }

    /// Number of unknowns `(s − 2)²`.
    pub fn n_unknowns(&self) -> usize {
        (self.s - 2) * (self.s - 2)
    }

    /// The face-averaging rule.
    pub fn face_average(&self) -> FaceAverage {
        self.face_average
    }

    /// The assembled sparse matrix of `A(a)` on the interior unknowns.
    ///
    /// Unknown `p = (i − 1)(s − 2) + (j − 1)` is interior node `(i, j)` (row-major, x fastest).
    /// Both triangles are stored; row indices are sorted within each column. For fields `u`
    /// vanishing on the boundary, `assemble(a) · u_interior` equals the interior of
    /// [`apply`](Self::apply)`(a, u)`.
    ///
    /// # Errors
    /// [`PdeError::Shape`], [`PdeError::NonFinite`] or [`PdeError::Parameter`] (for `a ≤ 0`), all
    /// naming `a`.
    pub fn assemble(&self, a: ArrayView2<f64>) -> Result<SparseColMat<usize, f64>> {
        self.check_solvable(a)?;
        let s = self.s;
        let m = s - 2;
        let n = m * m;
        let a = contiguous(a);
        let inv_h2 = 1.0 / (self.spacing() * self.spacing());
        let mut col_ptr = Vec::with_capacity(n + 1);
        let mut row_idx = Vec::with_capacity(5 * n);
        let mut values = Vec::with_capacity(5 * n);
        col_ptr.push(0);
        for i in 1..s - 1 {
            for j in 1..s - 1 {
                let p = (i - 1) * m + (j - 1);
                let k = i * s + j;
                let [e, w, nn, so] = self.faces(&a, k);
                let mut push = |row: usize, value: f64| {
                    row_idx.push(row);
                    values.push(value * inv_h2);
                };
                if i > 1 {
                    push(p - m, -so);
                }
                if j > 1 {
                    push(p - 1, -w);
                }
                push(p, e + w + nn + so);
                if j < s - 2 {
                    push(p + 1, -e);
                }
                if i < s - 2 {
                    push(p + m, -nn);
                }
                col_ptr.push(row_idx.len());
            }
        }
        let symbolic = SymbolicSparseColMat::new_checked(n, n, col_ptr, None, row_idx);
        Ok(SparseColMat::new(symbolic, values))
    }

    /// `A(a) u` at the interior nodes, 0 on the boundary rows.
    ///
    /// The stencil reads `u` at all nodes, so boundary values of `u` that are not zero enter the
    /// rows next to the boundary (this is the finite-difference operator applied to the grid
    /// function `u` as given). Restricted to fields vanishing on the boundary, the map is the
    /// symmetric positive definite matrix of [`assemble`](Self::assemble).
    ///
    /// # Errors
    /// [`PdeError::Shape`], [`PdeError::NonFinite`] naming `a` or `u`; [`PdeError::Parameter`] if
    /// `a ≤ 0` somewhere with harmonic face averages (arithmetic ones are defined for any `a`:
    /// the residual of a generated pair whose coefficient strays below 0 can still be measured).
    pub fn apply(&self, a: ArrayView2<f64>, u: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.check_coefficient(a)?;
        self.check_field("u", u)?;
        let (a, u) = (contiguous(a), contiguous(u));
        Ok(self.map_interior(|k, out| {
            let faces = self.faces(&a, k);
            let mut acc = 0.0;
            for (face, q) in faces.into_iter().zip(self.neighbours(k)) {
                acc += face * (u[k] - u[q]);
            }
            *out = acc;
        }))
    }

    /// The derivative of `A(a) u` with respect to `a` in the direction `da`:
    /// `d/dε A(a + ε da) u` at `ε = 0`, 0 on the boundary rows.
    ///
    /// With [`FaceAverage::Arithmetic`] the operator is bilinear in `(a, u)`, so this equals
    /// `A(da) u` and does not depend on `a` (which is still validated). `da` may have any sign.
    ///
    /// # Errors
    /// As [`apply`](Self::apply), and [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `da`.
    pub fn apply_da(&self, a: ArrayView2<f64>, u: ArrayView2<f64>, da: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.check_coefficient(a)?;
        self.check_field("u", u)?;
        self.check_field("da", da)?;
        let (a, u, da) = (contiguous(a), contiguous(u), contiguous(da));
        Ok(self.map_interior(|k, out| {
            let mut acc = 0.0;
            for q in self.neighbours(k) {
                let (gp, gq) = self.face_average.gradient(a[k], a[q]);
                acc += (gp * da[k] + gq * da[q]) * (u[k] - u[q]);
            }
            *out = acc;
        }))
    }

    /// The transpose of [`apply_da`](Self::apply_da): the gradient `∂⟨A(a)u, r⟩/∂a`, so that
    /// `⟨apply_da(a, u, da), r⟩ = ⟨da, apply_da_transpose(a, u, r)⟩` for all `da`, `r`.
    ///
    /// Boundary values of `r` are ignored (there are no boundary rows); the result is nonzero on
    /// boundary nodes next to the interior, because their `a` enters the boundary faces.
    ///
    /// # Errors
    /// As [`apply`](Self::apply), and [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `r`.
    pub fn apply_da_transpose(
        &self,
        a: ArrayView2<f64>,
        u: ArrayView2<f64>,
        r: ArrayView2<f64>,
    ) -> Result<Array2<f64>> {
        self.check_coefficient(a)?;
        self.check_field("u", u)?;
        self.check_field("r", r)?;
        let s = self.s;
        let (a, u, r) = (contiguous(a), contiguous(u), contiguous(r));
        let inv_h2 = 1.0 / (self.spacing() * self.spacing());
        let interior = |k: usize| {
            let (i, j) = (k / s, k % s);
            i > 0 && i < s - 1 && j > 0 && j < s - 1
        };
        let r_at = |k: usize| if interior(k) { r[k] } else { 0.0 };
        let mut grad = vec![0.0; s * s];
        // A face between P and Q contributes a_f (u_P − u_Q) to row P and a_f (u_Q − u_P) to row
        // Q, so ∂⟨A u, r⟩/∂a_f = (r_P − r_Q)(u_P − u_Q) / h², spread to a_P and a_Q by the chain rule.
        let mut face = |p: usize, q: usize| {
            let t = (r_at(p) - r_at(q)) * (u[p] - u[q]) * inv_h2;
            if t != 0.0 {
                let (gp, gq) = self.face_average.gradient(a[p], a[q]);
                grad[p] += gp * t;
                grad[q] += gq * t;
            }
        };
        for i in 0..s {
            for j in 0..s {
                let k = i * s + j;
                if j + 1 < s {
                    face(k, k + 1);
                }
                if i + 1 < s {
                    face(k, k + s);
                }
            }
        }
        Array2::from_shape_vec((s, s), grad).map_err(|e| PdeError::InvalidGrid(e.to_string()))
    }

    /// The residual `A(a) u − f` at the interior nodes, 0 on the boundary.
    ///
    /// Boundary values of `f` are not used. Boundary values of `u` enter the stencil (see
    /// [`apply`](Self::apply)); [`residual_summary`](Self::residual_summary) reports them.
    ///
    /// # Errors
    /// As [`apply`](Self::apply), and [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `f`.
    pub fn residual(&self, a: ArrayView2<f64>, u: ArrayView2<f64>, f: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.check_field("f", f)?;
        let mut r = self.apply(a, u)?;
        let s = self.s;
        for i in 1..s - 1 {
            for j in 1..s - 1 {
                r[[i, j]] -= f[[i, j]];
            }
        }
        Ok(r)
    }

    /// The normalised residual `‖A(a)u − f‖₂ / ‖f‖₂`, norms over the interior nodes.
    ///
    /// The ratio is independent of `h` and of the scale of the problem, so `1e-12` means "solved
    /// to round-off" at any resolution. When `f` vanishes on the interior (the solution is
    /// `u = 0`) the denominator is `‖ |A(a)| |u| ‖₂`, the size of the terms that cancel in
    /// `A(a)u`; the result is then at most 1, and 0 if `A(a)u = 0`. See
    /// [`residual_summary`](Self::residual_summary) for the parts.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    pub fn relative_residual(&self, a: ArrayView2<f64>, u: ArrayView2<f64>, f: ArrayView2<f64>) -> Result<f64> {
        Ok(self.residual_summary(a, u, f)?.relative)
    }

    /// The residual norm, its normalisation (see [`relative_residual`](Self::relative_residual))
    /// and the largest boundary value of `u`.
    ///
    /// # Errors
    /// As [`residual`](Self::residual).
    pub fn residual_summary(
        &self,
        a: ArrayView2<f64>,
        u: ArrayView2<f64>,
        f: ArrayView2<f64>,
    ) -> Result<DarcyResidual> {
        let r = self.residual(a, u, f)?;
        let s = self.s;
        let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        let interior = f.slice(ndarray::s![1..s - 1, 1..s - 1]);
        let f_norm = interior.iter().map(|v| v * v).sum::<f64>().sqrt();
        let scale = if f_norm > 0.0 {
            f_norm
        } else {
            let (ac, uc) = (contiguous(a), contiguous(u));
            let abs = self.map_interior(|k, out| {
                let faces = self.faces(&ac, k);
                let mut acc = 0.0;
                for (face, q) in faces.into_iter().zip(self.neighbours(k)) {
                    acc += face * (uc[k].abs() + uc[q].abs());
                }
                *out = acc;
            });
            abs.iter().map(|v| v * v).sum::<f64>().sqrt()
        };
        let relative = if scale > 0.0 { norm / scale } else { 0.0 };
        let boundary_max = u
            .indexed_iter()
            .filter(|((i, j), _)| *i == 0 || *j == 0 || *i == s - 1 || *j == s - 1)
            .fold(0.0_f64, |m, (_, v)| m.max(v.abs()));
        Ok(DarcyResidual { norm, scale, relative, boundary_max })
    }

    /// Face coefficients `[a_e, a_w, a_n, a_s]` of interior node `k` (flat index).
    #[inline]
    fn faces(&self, a: &[f64], k: usize) -> [f64; 4] {
        let p = a[k];
        self.neighbours(k).map(|q| self.face_average.value(p, a[q]))
    }

    /// Flat indices of the neighbours `[E, W, N, S]` of interior node `k`.
    #[inline]
    fn neighbours(&self, k: usize) -> [usize; 4] {
        [k + 1, k - 1, k + self.s, k - self.s]
    }

    /// An `(s, s)` array whose interior node `k` is set by `fill(k, &mut value)` and then scaled
    /// by `1/h²`; boundary nodes are 0.
    fn map_interior(&self, mut fill: impl FnMut(usize, &mut f64)) -> Array2<f64> {
        let s = self.s;
        let inv_h2 = 1.0 / (self.spacing() * self.spacing());
        let mut out = Array2::zeros((s, s));
        for i in 1..s - 1 {
            for j in 1..s - 1 {
                let v = &mut out[[i, j]];
                fill(i * s + j, v);
                *v *= inv_h2;
            }
        }
        out
    }

    fn check_field(&self, what: &'static str, x: ArrayView2<f64>) -> Result<()> {
        ensure_shape(what, &[self.s, self.s], x.shape())?;
        ensure_finite(what, x.iter())
    }

    /// A coefficient the operator can be applied to: finite, and positive for harmonic face
    /// averages (`2pq/(p + q)` needs it). With arithmetic faces `A(a)u` is bilinear and defined
    /// for any `a`, so residuals of generated pairs can be measured wherever they stray.
    fn check_coefficient(&self, a: ArrayView2<f64>) -> Result<()> {
        self.check_field("a", a)?;
        match self.face_average {
            FaceAverage::Harmonic => check_positive("a", a),
            FaceAverage::Arithmetic => Ok(()),
        }
    }

    /// A coefficient of a solvable problem: finite and strictly positive (the matrix is then
    /// symmetric positive definite).
    pub(crate) fn check_solvable(&self, a: ArrayView2<f64>) -> Result<()> {
        self.check_field("a", a)?;
        check_positive("a", a)
    }
}

/// `s ≥ 3`, so that the grid has an interior node.
fn check_grid(s: usize) -> Result<()> {
    if s < 3 {
        return Err(PdeError::InvalidGrid(format!(
            "a Darcy grid needs s >= 3 nodes per side (boundary included), got s = {s}"
        )));
    }
    Ok(())
}

/// Every value strictly positive (NaN has been excluded before).
fn check_positive(name: &'static str, x: ArrayView2<f64>) -> Result<()> {
    match x.iter().find(|v| **v <= 0.0) {
        Some(&value) => Err(PdeError::Parameter {
            name,
            value,
            reason: "the Darcy coefficient must be strictly positive everywhere",
        }),
        None => Ok(()),
    }
}

/// The values of `x` in row-major order, borrowed when `x` is already contiguous.
fn contiguous(x: ArrayView2<'_, f64>) -> Cow<'_, [f64]> {
    match x.to_slice() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(x.iter().copied().collect()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use ndarray::{Array1, s};
    use rand::RngExt;
    use rand_distr::StandardNormal;

    /// Standard-normal field of shape (s, s) from stream (seed, index).
    pub(super) fn normal_field(s: usize, seed: u64, index: u64) -> Array2<f64> {
        let mut rng = stream(seed, index);
        Array2::from_shape_simple_fn((s, s), || rng.sample(StandardNormal))
    }

    /// Positive, rough coefficient with contrast about 10.
    fn rough_coefficient(s: usize, index: u64) -> Array2<f64> {
        let mut rng = stream(11, index);
        Array2::from_shape_simple_fn((s, s), || 10f64.powf(rng.random::<f64>()))
    }

    fn zero_boundary(mut x: Array2<f64>) -> Array2<f64> {
        let s = x.nrows();
        for k in 0..s {
            x[[0, k]] = 0.0;
            x[[s - 1, k]] = 0.0;
            x[[k, 0]] = 0.0;
            x[[k, s - 1]] = 0.0;
        }
        x
    }

    fn dot(x: &Array2<f64>, y: &Array2<f64>) -> f64 {
        (x * y).sum()
    }

    const FACES: [FaceAverage; 2] = [FaceAverage::Arithmetic, FaceAverage::Harmonic];

    #[test]
    fn operator_is_symmetric_and_positive() {
        let s = 24;
        for face in FACES {
            let op = DarcyOperator::new(s, face).unwrap();
            let a = rough_coefficient(s, 0);
            for trial in 0..3 {
                let x = zero_boundary(normal_field(s, 1, trial));
                let y = zero_boundary(normal_field(s, 2, trial));
                let ax = op.apply(a.view(), x.view()).unwrap();
                let ay = op.apply(a.view(), y.view()).unwrap();
                let (lhs, rhs) = (dot(&ax, &y), dot(&x, &ay));
                let scale = (dot(&ax, &ax) * dot(&y, &y)).sqrt();
                assert!((lhs - rhs).abs() <= 1e-12 * scale, "{face:?}: {lhs} vs {rhs}");
                assert!(dot(&ax, &x) > 0.0);
            }
        }
    }

    #[test]
    fn assembled_matrix_matches_apply_and_is_symmetric() {
        let s = 13;
        let m = s - 2;
        for face in FACES {
            let op = DarcyOperator::new(s, face).unwrap();
            let a = rough_coefficient(s, 1);
            let mat = op.assemble(a.view()).unwrap();
            assert_eq!(mat.nrows(), m * m);
            assert_eq!(mat.compute_nnz(), 5 * m * m - 4 * m);
            let dense = mat.to_dense();
            let mut asym = 0.0_f64;
            for p in 0..m * m {
                for q in 0..m * m {
                    asym = asym.max((dense[(p, q)] - dense[(q, p)]).abs());
                }
            }
            assert_eq!(asym, 0.0);
            let x = zero_boundary(normal_field(s, 3, 0));
            let ax = op.apply(a.view(), x.view()).unwrap();
            let xi = Array1::from_iter(x.slice(s![1..s - 1, 1..s - 1]).iter().copied());
            let mut max_diff = 0.0_f64;
            for p in 0..m * m {
                let row: f64 = (0..m * m).map(|q| dense[(p, q)] * xi[q]).sum();
                let (i, j) = (p / m + 1, p % m + 1);
                max_diff = max_diff.max((row - ax[[i, j]]).abs() / ax[[i, j]].abs().max(1.0));
            }
            assert!(max_diff < 1e-12, "{face:?}: {max_diff}");
            assert!(ax.slice(s![0, ..]).iter().all(|v| *v == 0.0));
        }
    }

    #[test]
    fn apply_da_satisfies_the_adjoint_identity() {
        let s = 20;
        for face in FACES {
            let op = DarcyOperator::new(s, face).unwrap();
            let a = rough_coefficient(s, 2);
            for trial in 0..3 {
                // u, r and da are nonzero on the boundary too: the identity must still hold.
                let u = normal_field(s, 4, trial);
                let da = normal_field(s, 5, trial);
                let r = normal_field(s, 6, trial);
                let jda = op.apply_da(a.view(), u.view(), da.view()).unwrap();
                let jtr = op.apply_da_transpose(a.view(), u.view(), r.view()).unwrap();
                let (lhs, rhs) = (dot(&jda, &r), dot(&da, &jtr));
                let scale = (dot(&jda, &jda) * dot(&r, &r)).sqrt();
                assert!((lhs - rhs).abs() <= 1e-12 * scale, "{face:?}: {lhs} vs {rhs}");
            }
        }
    }

    #[test]
    fn apply_da_matches_finite_differences() {
        let s = 20;
        for face in FACES {
            let op = DarcyOperator::new(s, face).unwrap();
            let a = rough_coefficient(s, 3);
            let u = normal_field(s, 7, 0);
            let da = normal_field(s, 8, 0);
            let jda = op.apply_da(a.view(), u.view(), da.view()).unwrap();
            let eps = 1e-5;
            let plus = op.apply(((&a) + eps * &da).view(), u.view()).unwrap();
            let minus = op.apply(((&a) - eps * &da).view(), u.view()).unwrap();
            let fd = (plus - minus) / (2.0 * eps);
            let err = (&fd - &jda).mapv(f64::abs).fold(0.0_f64, |m, v| m.max(*v));
            let size = jda.mapv(f64::abs).fold(0.0_f64, |m, v| m.max(*v));
            // Arithmetic: exact up to cancellation; harmonic: central-difference error O(eps²).
            assert!(err <= 1e-8 * size, "{face:?}: {err} vs {size}");
        }
        // Bilinearity of the arithmetic rule: apply_da(a, u, da) = A(da) u for positive da.
        let op = DarcyOperator::new(s, FaceAverage::Arithmetic).unwrap();
        let (a, da) = (rough_coefficient(s, 4), rough_coefficient(s, 5));
        let u = normal_field(s, 9, 0);
        let jda = op.apply_da(a.view(), u.view(), da.view()).unwrap();
        let direct = op.apply(da.view(), u.view()).unwrap();
        let err = (&jda - &direct).mapv(f64::abs).fold(0.0_f64, |m, v| m.max(*v));
        assert!(err <= 1e-12 * direct.mapv(f64::abs).sum());
    }

    #[test]
    fn residual_summary_reports_boundary_and_normalisation() {
        let s = 9;
        let op = DarcyOperator::new(s, FaceAverage::Arithmetic).unwrap();
        let a = Array2::from_elem((s, s), 2.0);
        let f = Array2::from_elem((s, s), 1.0);
        let mut u = Array2::zeros((s, s));
        u[[0, 4]] = -0.25;
        let summary = op.residual_summary(a.view(), u.view(), f.view()).unwrap();
        assert_eq!(summary.boundary_max, 0.25);
        assert_eq!(summary.scale, 7.0);
        // Only row (1, 4) sees the boundary value: (Au)_P = a (0 − (−0.25)) / h² = 0.5 · 64 = 32.
        let r = op.residual(a.view(), u.view(), f.view()).unwrap();
        assert_eq!(r[[1, 4]], 32.0 - 1.0);
        assert_eq!(r[[0, 4]], 0.0);
        let expected = (48.0_f64 + 31.0 * 31.0).sqrt() / 7.0;
        assert!((summary.relative - expected).abs() < 1e-14);
        // Zero forcing: normalised by ‖|A||u|‖, so a nonzero u is at most 1, u = 0 gives 0.
        let zero = Array2::zeros((s, s));
        let u = zero_boundary(normal_field(s, 10, 0));
        let rel = op.relative_residual(a.view(), u.view(), zero.view()).unwrap();
        assert!(rel > 0.0 && rel <= 1.0, "{rel}");
        assert_eq!(op.relative_residual(a.view(), zero.view(), zero.view()).unwrap(), 0.0);
    }

    #[test]
    fn operator_rejects_bad_input() {
        assert!(matches!(DarcyOperator::new(2, FaceAverage::Arithmetic), Err(PdeError::InvalidGrid(_))));
        let s = 6;
        let op = DarcyOperator::new(s, FaceAverage::Arithmetic).unwrap();
        let a = Array2::from_elem((s, s), 1.0);
        let u = Array2::zeros((s, s));
        let err = op.apply(a.view(), Array2::zeros((s, s + 1)).view()).unwrap_err();
        assert!(matches!(err, PdeError::Shape { what: "u", .. }));
        let mut bad = a.clone();
        bad[[0, 0]] = 0.0;
        let err = op.assemble(bad.view()).unwrap_err();
        assert!(matches!(err, PdeError::Parameter { name: "a", value, .. } if value == 0.0));
        // Applying the operator needs no sign with arithmetic faces (bilinear: A(−a)u = −A(a)u);
        // harmonic faces and every solve do.
        let u1 = Array2::from_shape_fn((s, s), |(i, j)| ((i * j) as f64).sin());
        let a1 = Array2::from_shape_fn((s, s), |(i, j)| 1.0 + 0.1 * (i + 2 * j) as f64);
        let minus = op.apply(a1.mapv(|v| -v).view(), u1.view()).unwrap();
        let plus = op.apply(a1.view(), u1.view()).unwrap();
        assert!(minus.iter().zip(&plus).all(|(m, p)| (m + p).abs() <= 1e-12 * p.abs().max(1.0)));
        let harmonic = DarcyOperator::new(s, FaceAverage::Harmonic).unwrap();
        let err = harmonic.apply(a1.mapv(|v| -v).view(), u1.view()).unwrap_err();
        assert!(matches!(err, PdeError::Parameter { name: "a", .. }));
        let mut bad = u.clone();
        bad[[2, 3]] = f64::INFINITY;
        let err = op.apply_da(a.view(), u.view(), bad.view()).unwrap_err();
        assert!(matches!(err, PdeError::NonFinite { what: "da", index: 15 }));
        let err = op.residual(a.view(), u.view(), bad.view()).unwrap_err();
        assert!(matches!(err, PdeError::NonFinite { what: "f", .. }));
    }
}
