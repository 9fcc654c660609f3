//! The discrete Darcy problem as a constraint on a generated pair `(a, u)`:
//! `h(a, u) = A(a) u − f` at interior nodes and `u` at boundary nodes (bilinear in `(a, u)`).
//!
//! The projection of the pair is Gauss–Newton whose normal equations `(J Jᵀ) y = h` are solved by
//! a sparse Cholesky factorisation of `J Jᵀ`, `J = [B(u) | A(a)]`; with the coefficient held
//! fixed it is the PDE solve `u = A(a)⁻¹ f`.

use std::fmt;
use std::sync::OnceLock;

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, Axis, Zip, s};

use super::darcy_normal_equations::NormalEquations;
use super::gauss_newton::gauss_newton_with;
use super::{Constraint, GaussNewtonParams, GnReport, check_direction, check_field, check_multiplier, max_abs};
use crate::darcy::{DarcyOperator, DarcySolver, DarcySolverParams, FaceAverage};
use crate::error::{PdeError, Result, ensure_finite, ensure_shape};

/// The discrete Darcy equation `−∇·(a∇u) = f` with zero Dirichlet values, as `s²` constraints on
/// a `(2, s, s)` field whose channel 0 is the coefficient `a` and channel 1 the solution `u`.
///
/// `h` is an `(s, s)` array flattened row-major: `(A(a)u − f)` at interior nodes (the finite
/// volume operator of [`DarcyOperator::apply`], boundary values of `u` entering the stencil) and
/// `u` itself at boundary nodes. With the arithmetic face average `A(a)u` is bilinear, so `h`
/// is a quadratic polynomial of the pair, defined for every `a` (only the fixed-coefficient
/// solve needs `a > 0`); with the harmonic average `h` needs `a > 0` ([`PdeError::Parameter`]
/// naming `a` otherwise) and the projection shortens steps that would leave `a > 0`.
///
/// The Jacobian is `J(a, u) = [B(u) | A_b(a)]` with `B(u) da = A(da)u` (more generally the
/// derivative [`DarcyOperator::apply_da`]) and `A_b(a)` the stencil on all nodes plus identity
/// rows at the boundary; `Jᵀ` uses [`DarcyOperator::apply_da_transpose`] and the symmetry of
/// `A(a)` on the interior unknowns.
///
/// Two modes:
/// - [`new`](Self::new): the pair varies jointly. [`project`](Constraint::project) is
///   Gauss–Newton ([`project_with`](Self::project_with)) with a sparse direct solve of
///   `(J Jᵀ) y = h` per step (faer sparse product and Cholesky, the symbolic analysis done once
///   and reused), stopped at `‖h‖∞ ≤ tol · max(1, ‖f‖∞)`.
/// - [`with_fixed_coefficient`](Self::with_fixed_coefficient): channel 0 is data, not an
///   unknown; `J = [0 | A_b(a)]` (the Jacobian-vector products ignore the `a` direction and
///   return 0 there), and the closest feasible field is the PDE solution `u = A(a)⁻¹ f` from
///   [`DarcySolver`], with `a` unchanged: with `a` fixed the constraint pins `u` to the PDE
///   solution.
pub struct DarcyPde {
    operator: DarcyOperator,
    f: Array2<f64>,
    fixed_coefficient: bool,
    /// `max(1, ‖f‖∞)` over the interior nodes.
    scale: f64,
    /// All ones: a valid coefficient for the `a`-independent arithmetic `apply_da`.
    ones: Array2<f64>,
    solver: OnceLock<DarcySolver>,
    normal: OnceLock<NormalEquations>,
}

impl fmt::Debug for DarcyPde {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DarcyPde")
            .field("operator", &self.operator)
            .field("fixed_coefficient", &self.fixed_coefficient)
            .field("forcing_scale", &self.scale)
            .finish_non_exhaustive()
    }
}

impl Clone for DarcyPde {
    fn clone(&self) -> Self {
        Self {
            operator: self.operator,
            f: self.f.clone(),
            fixed_coefficient: self.fixed_coefficient,
            scale: self.scale,
            ones: self.ones.clone(),
            solver: OnceLock::new(),
            normal: OnceLock::new(),
        }
    }
}

impl DarcyPde {
    /// The constraint on jointly varying pairs `(a, u)` with forcing `f` (shape `(s, s)`, boundary
    /// values unused).
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `f`.
    pub fn new(operator: DarcyOperator, f: Array2<f64>) -> Result<Self> {
        let s = operator.size();
        ensure_shape("f", &[s, s], f.shape())?;
        ensure_finite("f", f.iter())?;
        let scale = max_abs(f.slice(s![1..s - 1, 1..s - 1])).max(1.0);
        let ones = Array2::ones((s, s));
        Ok(Self {
            operator,
            f,
            fixed_coefficient: false,
            scale,
            ones,
            solver: OnceLock::new(),
            normal: OnceLock::new(),
        })
    }

    /// The constraint with the coefficient (channel 0) held fixed: only `u` varies, and the
    /// projection is the PDE solve.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_fixed_coefficient(operator: DarcyOperator, f: Array2<f64>) -> Result<Self> {
        Ok(Self { fixed_coefficient: true, ..Self::new(operator, f)? })
    }

    /// The operator `A(a)`.
    pub fn operator(&self) -> &DarcyOperator {
        &self.operator
    }

    /// The forcing `f`.
    pub fn forcing(&self) -> &Array2<f64> {
        &self.f
    }

    /// Whether the coefficient is held fixed.
    pub fn is_coefficient_fixed(&self) -> bool {
        self.fixed_coefficient
    }

    /// Projects with explicit Gauss–Newton parameters and reports the iteration (pair mode); in
    /// fixed-coefficient mode, solves the PDE (`iterations = 1`, no inner iterations).
    ///
    /// # Errors
    /// As [`Constraint::residual`] for `pair`; [`PdeError::Parameter`] naming `a` if the
    /// fixed-coefficient solve meets `a ≤ 0`; [`PdeError::Solver`] if a factorisation fails;
    /// [`PdeError::NotConverged`] if Gauss–Newton does not reach `params.tol`.
    pub fn project_with(&self, pair: ArrayView3<f64>, params: &GaussNewtonParams) -> Result<(Array3<f64>, GnReport)> {
        check_field(self.shape(), pair)?;
        if self.fixed_coefficient {
            let a = pair.index_axis(Axis(0), 0);
            let u = self.solver()?.solve(a, self.f.view())?;
            let mut out = pair.to_owned();
            out.index_axis_mut(Axis(0), 1).assign(&u);
            let h = self.residual(out.view())?;
            let relative = self.scaled_violation(out.view(), h.view())?;
            let report = GnReport { iterations: 1, residual: max_abs(h.iter()), relative, inner_iterations: 0 };
            return Ok((out, report));
        }
        let normal = self.normal_equations()?;
        let mut work = normal.workspace()?;
        gauss_newton_with(self, pair, params, |x, h| {
            let inv_h2 = 1.0 / (self.operator.spacing() * self.operator.spacing());
            let mut step = normal.step(self.operator.face_average(), inv_h2, &mut work, x, h)?;
            if self.operator.face_average() == FaceAverage::Harmonic {
                keep_coefficient_positive(x, &mut step)?;
            }
            Ok((step, 0))
        })
    }

    fn solver(&self) -> Result<&DarcySolver> {
        if let Some(solver) = self.solver.get() {
            return Ok(solver);
        }
        let params = DarcySolverParams { face_average: self.operator.face_average(), ..Default::default() };
        let solver = DarcySolver::with_params(self.operator.size(), params)?;
        Ok(self.solver.get_or_init(|| solver))
    }

    fn normal_equations(&self) -> Result<&NormalEquations> {
        if let Some(normal) = self.normal.get() {
            return Ok(normal);
        }
        let normal = NormalEquations::new(self.operator.size())?;
        Ok(self.normal.get_or_init(|| normal))
    }

    fn s(&self) -> usize {
        self.operator.size()
    }

    /// `A(a) u` at interior nodes (0 on the boundary rows).
    fn stiffness(&self, a: ArrayView2<f64>, u: ArrayView2<f64>) -> Result<Array2<f64>> {
        match self.operator.face_average() {
            // Bilinear: A(a)u = apply_da(·, u, a), valid for any sign of a.
            FaceAverage::Arithmetic => self.operator.apply_da(self.ones.view(), u, a),
            FaceAverage::Harmonic => self.operator.apply(a, u),
        }
    }

    /// `B(u) da`, the derivative of `A(a)u` in `a` along `da`.
    fn coefficient_derivative(
        &self,
        a: ArrayView2<f64>,
        u: ArrayView2<f64>,
        da: ArrayView2<f64>,
    ) -> Result<Array2<f64>> {
        match self.operator.face_average() {
            FaceAverage::Arithmetic => self.operator.apply_da(self.ones.view(), u, da),
            FaceAverage::Harmonic => self.operator.apply_da(a, u, da),
        }
    }

    fn coefficient_derivative_transpose(
        &self,
        a: ArrayView2<f64>,
        u: ArrayView2<f64>,
        r: ArrayView2<f64>,
    ) -> Result<Array2<f64>> {
        match self.operator.face_average() {
            FaceAverage::Arithmetic => self.operator.apply_da_transpose(self.ones.view(), u, r),
            FaceAverage::Harmonic => self.operator.apply_da_transpose(a, u, r),
        }
    }

    /// `A_b(a)ᵀ w`: the stencil transpose (symmetric on interior unknowns, plus the columns of the
    /// boundary nodes next to the interior) and the identity rows of the boundary.
    fn stiffness_transpose(&self, a: ArrayView2<f64>, w: ArrayView2<f64>) -> Result<Array2<f64>> {
        let s = self.s();
        let mut w_int = w.to_owned();
        for_each_boundary(s, |i, j| w_int[[i, j]] = 0.0);
        let mut out = self.stiffness(a, w_int.view())?;
        let inv_h2 = 1.0 / (self.operator.spacing() * self.operator.spacing());
        let face = self.operator.face_average();
        for_each_boundary(s, |i, j| {
            let mut acc = w[[i, j]];
            if let Some((p, q)) = interior_neighbour(s, i, j) {
                acc -= face.value(a[[p, q]], a[[i, j]]) * w[[p, q]] * inv_h2;
            }
            out[[i, j]] = acc;
        });
        Ok(out)
    }
}

impl Constraint for DarcyPde {
    fn name(&self) -> String {
        let mode = if self.fixed_coefficient { "fixed a" } else { "pair (a, u)" };
        format!("darcy pde ({mode}, s = {})", self.s())
    }

    fn shape(&self) -> [usize; 3] {
        [2, self.s(), self.s()]
    }

    fn len(&self) -> usize {
        self.s() * self.s()
    }

    /// `false` for the pair (bilinear), `true` with the coefficient fixed.
    fn is_linear(&self) -> bool {
        self.fixed_coefficient
    }

    /// `A(a)u − f` at interior nodes and `u` at boundary nodes, row-major over the `s × s` nodes.
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] naming `field`; [`PdeError::Parameter`]
    /// naming `a` for `a ≤ 0` with the harmonic face average.
    fn residual(&self, pair: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape(), pair)?;
        let (a, u) = split(pair);
        let mut r = self.stiffness(a, u)?;
        let s = self.s();
        Zip::from(r.slice_mut(s![1..s - 1, 1..s - 1]))
            .and(self.f.slice(s![1..s - 1, 1..s - 1]))
            .for_each(|r, f| *r -= f);
        for_each_boundary(s, |i, j| r[[i, j]] = u[[i, j]]);
        Ok(super::flatten(&r))
    }

    /// `B(u) da + A(a) du` at interior nodes and `du` at boundary nodes (`B` term omitted with the
    /// coefficient fixed).
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `v` (naming `direction`).
    fn jvp(&self, pair: ArrayView3<f64>, v: ArrayView3<f64>) -> Result<Array1<f64>> {
        check_field(self.shape(), pair)?;
        check_direction(self.shape(), v)?;
        let (a, u) = split(pair);
        let (da, du) = split(v);
        let mut out = self.stiffness(a, du)?;
        if !self.fixed_coefficient {
            out += &self.coefficient_derivative(a, u, da)?;
        }
        for_each_boundary(self.s(), |i, j| out[[i, j]] = du[[i, j]]);
        Ok(super::flatten(&out))
    }

    /// `(B(u)ᵀ w, A_b(a)ᵀ w)` (the first channel 0 with the coefficient fixed).
    ///
    /// # Errors
    /// As [`residual`](Self::residual), and for `w` (naming `multiplier`).
    fn vjp(&self, pair: ArrayView3<f64>, w: ArrayView1<f64>) -> Result<Array3<f64>> {
        check_field(self.shape(), pair)?;
        check_multiplier(self.len(), w)?;
        let (a, u) = split(pair);
        let s = self.s();
        let w = w.to_shape((s, s)).map_err(|e| PdeError::Solver(format!("reshaping the Darcy multiplier: {e}")))?;
        let mut out = Array3::zeros((2, s, s));
        if !self.fixed_coefficient {
            out.index_axis_mut(Axis(0), 0).assign(&self.coefficient_derivative_transpose(a, u, w.view())?);
        }
        out.index_axis_mut(Axis(0), 1).assign(&self.stiffness_transpose(a, w.view())?);
        Ok(out)
    }

    /// `max(1, ‖f‖∞)` over the interior nodes.
    ///
    /// # Errors
    /// As [`residual`](Self::residual) for the shape and finiteness of `pair`.
    fn residual_scale(&self, pair: ArrayView3<f64>) -> Result<f64> {
        check_field(self.shape(), pair)?;
        Ok(self.scale)
    }

    /// Pair mode: sparse Gauss–Newton with the default [`GaussNewtonParams`] (see
    /// [`project_with`](Self::project_with)). Fixed coefficient: `(a, A(a)⁻¹ f)`.
    ///
    /// # Errors
    /// As [`project_with`](Self::project_with).
    fn project(&self, pair: ArrayView3<f64>) -> Result<Array3<f64>> {
        self.project_with(pair, &GaussNewtonParams::default()).map(|(p, _)| p)
    }
}

/// The coefficient and solution channels of a pair.
fn split(pair: ArrayView3<f64>) -> (ArrayView2<f64>, ArrayView2<f64>) {
    (pair.index_axis_move(Axis(0), 0), pair.index_axis_move(Axis(0), 1))
}

/// Calls `f(i, j)` for every boundary node of an `s × s` grid, each once.
fn for_each_boundary(s: usize, mut f: impl FnMut(usize, usize)) {
    for j in 0..s {
        f(0, j);
        f(s - 1, j);
    }
    for i in 1..s - 1 {
        f(i, 0);
        f(i, s - 1);
    }
}

/// The interior neighbour of boundary node `(i, j)`, if any (corners have none).
fn interior_neighbour(s: usize, i: usize, j: usize) -> Option<(usize, usize)> {
    let inner = |k: usize| k > 0 && k < s - 1;
    match (i, j) {
        (0, j) if inner(j) => Some((1, j)),
        (i, j) if i == s - 1 && inner(j) => Some((s - 2, j)),
        (i, 0) if inner(i) => Some((i, 1)),
        (i, j) if j == s - 1 && inner(i) => Some((i, s - 2)),
        _ => None,
    }
}

/// Shortens a step `(da, du)` by halving until `a − da > 0` everywhere (harmonic faces need it).
fn keep_coefficient_positive(pair: ArrayView3<f64>, step: &mut Array3<f64>) -> Result<()> {
    let a = pair.index_axis(Axis(0), 0);
    for _ in 0..60 {
        let positive = Zip::from(&a).and(step.index_axis(Axis(0), 0)).all(|&a, &da| a - da > 0.0);
        if positive {
            return Ok(());
        }
        step.mapv_inplace(|x| 0.5 * x);
    }
    Err(PdeError::Solver("Gauss-Newton step cannot keep the Darcy coefficient positive".into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::constraints::gauss_newton::rel_diff;
    use crate::constraints::gauss_newton_project;
    use crate::constraints::testing::*;
    use crate::darcy::{FnoCoefficient, Forcing};

    /// A thresholded FNO coefficient (values 3 and 12) plus noise, and a random `u`.
    fn random_pair(s: usize, seed: u64, u_amplitude: f64) -> Array3<f64> {
        let a = FnoCoefficient::default().sample(s, seed, 0).unwrap();
        let noise = uniform_field([2, s, s], seed, 1);
        let mut pair = Array3::zeros((2, s, s));
        pair.index_axis_mut(Axis(0), 0).assign(&(&a + &noise.index_axis(Axis(0), 0)));
        pair.index_axis_mut(Axis(0), 1).assign(&(u_amplitude * &noise.index_axis(Axis(0), 1)));
        pair
    }

    fn constraint(s: usize, face: FaceAverage, fixed: bool) -> DarcyPde {
        let op = DarcyOperator::new(s, face).unwrap();
        let f = Forcing::Piecewise { left: 1.0, right: -3.0, split: 0.4 }.field(s).unwrap();
        if fixed { DarcyPde::with_fixed_coefficient(op, f).unwrap() } else { DarcyPde::new(op, f).unwrap() }
    }

    fn pde_residual(c: &DarcyPde, pair: &Array3<f64>) -> (f64, f64) {
        let (a, u) = split(pair.view());
        let r = c.operator().residual(a, u, c.forcing().view()).unwrap();
        let s = c.s();
        let mut boundary = 0.0_f64;
        for_each_boundary(s, |i, j| boundary = boundary.max(u[[i, j]].abs()));
        (max_abs(r.iter()), boundary)
    }

    #[test]
    fn pair_projection_satisfies_the_pde() {
        for face in [FaceAverage::Arithmetic, FaceAverage::Harmonic] {
            for (s, amplitude) in [(17, 1.0), (33, 0.05)] {
                let c = constraint(s, face, false);
                let pair = random_pair(s, 1, amplitude);
                let (p, report) = c.project_with(pair.view(), &GaussNewtonParams::default()).unwrap();
                let (interior, boundary) = pde_residual(&c, &p);
                let f_max = max_abs(c.forcing().iter());
                assert!(interior <= 1e-8 * f_max.max(1.0), "{face:?} s={s}: {interior:e}");
                assert!(boundary <= 1e-12, "{face:?} s={s}: boundary {boundary:e}");
                assert!(report.iterations <= 10, "{face:?} s={s}: {report:?}");
                assert!(p.index_axis(Axis(0), 0).iter().all(|&a| a > 0.0));
                // Idempotent: a feasible pair is returned unchanged.
                let again = c.project(p.view()).unwrap();
                assert!(rel_diff(again.view(), p.view()) <= 1e-12);
            }
        }
    }

    #[test]
    fn sparse_normal_equations_match_the_matrix_free_jacobian() {
        // The sparse and the generic (conjugate-gradient) Gauss–Newton take the same steps.
        for face in [FaceAverage::Arithmetic, FaceAverage::Harmonic] {
            let s = 9;
            let c = constraint(s, face, false);
            let pair = random_pair(s, 2, 0.1);
            let (sparse, r1) = c.project_with(pair.view(), &GaussNewtonParams::default()).unwrap();
            let params = GaussNewtonParams { cg_tol: 1e-14, cg_max_iter: 5000, ..Default::default() };
            let (generic, r2) = gauss_newton_project(&c, pair.view(), &params).unwrap();
            let diff = rel_diff(generic.view(), sparse.view());
            assert!(diff <= 1e-9, "{face:?}: {diff:e} ({r1:?}, {r2:?})");
            // And J from the sparse assembly agrees with jvp / vjp.
            let normal = NormalEquations::new(s).unwrap();
            let mut ws = normal.workspace().unwrap();
            let (a, u) = (pair.index_axis(Axis(0), 0).to_owned(), pair.index_axis(Axis(0), 1).to_owned());
            let inv_h2 = 1.0 / (c.operator.spacing() * c.operator.spacing());
            normal.fill_jacobian(face, inv_h2, a.as_slice().unwrap(), u.as_slice().unwrap(), &mut ws.jac);
            let v = uniform_field([2, s, s], 3, 0);
            let jv = c.jvp(pair.view(), v.view()).unwrap();
            let vflat: Vec<f64> = v.iter().copied().collect();
            for r in 0..s * s {
                let row: f64 =
                    (normal.row_ptr[r]..normal.row_ptr[r + 1]).map(|p| ws.jac[p] * vflat[normal.col_idx[p]]).sum();
                assert!((row - jv[r]).abs() <= 1e-12 * max_abs(jv.iter()), "{face:?} row {r}");
            }
        }
    }

    #[test]
    fn fixed_coefficient_projection_is_the_pde_solution() {
        for s in [17, 33] {
            let c = constraint(s, FaceAverage::Arithmetic, true);
            let pair = random_pair(s, 4, 1.0);
            let p = c.project(pair.view()).unwrap();
            let solver = DarcySolver::new(s).unwrap();
            let u = solver.solve(pair.index_axis(Axis(0), 0), c.forcing().view()).unwrap();
            let diff = rel_diff(p.index_axis(Axis(0), 1), u.view());
            assert!(diff <= 1e-10, "{diff:e}");
            assert_eq!(p.index_axis(Axis(0), 0), pair.index_axis(Axis(0), 0));
            assert!(c.relative_violation(p.view()).unwrap() <= 1e-10);
            assert!(c.is_linear());
        }
        // The generic Gauss–Newton, moving only u, reaches the same solution.
        let s = 9;
        let c = constraint(s, FaceAverage::Arithmetic, true);
        let pair = random_pair(s, 5, 1.0);
        let params = GaussNewtonParams { cg_tol: 1e-14, cg_max_iter: 5000, ..Default::default() };
        let (generic, _) = gauss_newton_project(&c, pair.view(), &params).unwrap();
        let exact = c.project(pair.view()).unwrap();
        assert!(rel_diff(generic.view(), exact.view()) <= 1e-9);
        assert_orthogonal(&c, pair.view(), random_pair(s, 5, 0.5).view());
    }

    #[test]
    fn jacobian_is_consistent() {
        for face in [FaceAverage::Arithmetic, FaceAverage::Harmonic] {
            for fixed in [false, true] {
                for s in [3, 12] {
                    let c = constraint(s, face, fixed);
                    let pair = random_pair(s.max(4), 6, 1.0).slice_move(s![.., ..s, ..s]);
                    assert_adjoint(&c, pair.view(), 7);
                    if !fixed {
                        assert_jvp_matches_differences(&c, pair.view(), 8, 1e-5, 1e-8);
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        let c = constraint(8, FaceAverage::Harmonic, false);
        let pair = random_pair(8, 9, 1.0);
        assert_rejects_bad_input(&c, pair.view());
        let mut negative = pair.clone();
        negative[[0, 3, 3]] = -1.0;
        assert!(matches!(c.residual(negative.view()), Err(PdeError::Parameter { name: "a", .. })));
        // Arithmetic faces: h is a polynomial, defined for any a; the fixed-a solve is not.
        let arithmetic = constraint(8, FaceAverage::Arithmetic, false);
        assert!(arithmetic.residual(negative.view()).is_ok());
        let fixed = constraint(8, FaceAverage::Arithmetic, true);
        assert!(matches!(fixed.project(negative.view()), Err(PdeError::Parameter { name: "a", .. })));
        let op = DarcyOperator::new(8, FaceAverage::Arithmetic).unwrap();
        assert!(matches!(DarcyPde::new(op, Array2::zeros((8, 9))), Err(PdeError::Shape { what: "f", .. })));
        assert!(matches!(
            DarcyPde::new(op, Array2::from_elem((8, 8), f64::NAN)),
            Err(PdeError::NonFinite { what: "f", .. })
        ));
    }
}
