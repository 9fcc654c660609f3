//! Direct solve of `A(a) u = f` by sparse Cholesky `P A Pᵀ = L Lᵀ`, the symbolic part (fill-reducing
//! ordering, elimination tree, supernode structure) computed once per grid and reused.
//!
//! Every coefficient field on a given grid gives a matrix with the same sparsity pattern, so a
//! dataset of `N` samples pays for one symbolic analysis and `N` numeric factorisations. The
//! numeric work is done in buffers kept by the solver (one set per concurrent caller), so
//! repeated solves do not allocate the factor again.

use std::sync::{Mutex, PoisonError};

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::cholesky::llt::factor::LltRegularization;
use faer::perm::PermRef;
use faer::sparse::linalg::SupernodalThreshold;
use faer::sparse::linalg::cholesky::{
    CholeskySymbolicParams, SymbolicCholesky, SymbolicCholeskyRaw, SymmetricOrdering, factorize_symbolic_cholesky,
};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMat};
use faer::{Conj, MatMut, Par, Side};
use ndarray::{Array2, ArrayView2};

use super::{DarcyOperator, FaceAverage, contiguous};
use crate::error::{PdeError, Result};

/// Tuning knobs of [`DarcySolver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DarcySolverParams {
    /// Face-averaging rule of the operator.
    pub face_average: FaceAverage,
    /// Threads used inside one factorisation (faer's dense kernels on rayon); 1 = sequential.
    /// Data pipelines that solve many samples in parallel should keep 1.
    pub threads: usize,
    /// Fill-reducing ordering of the unknowns.
    pub ordering: FillOrdering,
}

impl Default for DarcySolverParams {
    fn default() -> Self {
        Self { face_average: FaceAverage::Arithmetic, threads: 1, ordering: FillOrdering::default() }
    }
}

/// Fill-reducing ordering of the unknowns before the Cholesky factorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FillOrdering {
    /// Geometric nested dissection of the grid (George 1973): split the interior box by a line of
    /// nodes across its longer side, order both halves recursively (boxes of at most 16 nodes in
    /// natural order) and number the separator last. Factorised with supernodes. The fastest
    /// choice measured on 129² and 257² grids.
    #[default]
    NestedDissection,
    /// Approximate minimum degree (faer's AMD) from the sparsity pattern, with faer's automatic
    /// choice between the simplicial and supernodal factorisations. Less fill than this nested
    /// dissection, but slower numeric factorisations.
    Amd,
}

/// Geometric nested-dissection order of an `m × m` grid of row-major unknowns: `order[new] = old`.
fn nested_dissection(m: usize) -> Vec<usize> {
    /// Appends the order of the box `rows × cols` (half-open ranges).
    fn split(order: &mut Vec<usize>, m: usize, rows: (usize, usize), cols: (usize, usize)) {
        let (r0, r1) = rows;
        let (c0, c1) = cols;
        let (nr, nc) = (r1 - r0, c1 - c0);
        if nr == 0 || nc == 0 {
            return;
        }
        if nr * nc <= 16 || (nr <= 2 && nc <= 2) {
            for i in r0..r1 {
                for j in c0..c1 {
                    order.push(i * m + j);
                }
            }
            return;
        }
        if nr >= nc {
            let mid = r0 + nr / 2;
            split(order, m, (r0, mid), cols);
            split(order, m, (mid + 1, r1), cols);
            order.extend((c0..c1).map(|j| mid * m + j));
        } else {
            let mid = c0 + nc / 2;
            split(order, m, rows, (c0, mid));
            split(order, m, rows, (mid + 1, c1));
            order.extend((r0..r1).map(|i| i * m + mid));
        }
    }
    let mut order = Vec::with_capacity(m * m);
    split(&mut order, m, (0, m), (0, m));
    order
}

/// Buffers of one numeric factorisation and solve.
struct Workspace {
    /// Upper triangle of `A(a)`, in the order of the solver's pattern.
    values: Vec<f64>,
    /// Values of the Cholesky factor.
    factor: Vec<f64>,
    /// Right-hand side, overwritten by the solution (interior unknowns, row-major).
    rhs: Vec<f64>,
    /// Scratch memory of the factorisation and the triangular solves.
    mem: MemBuffer,
}

/// Direct solver of the Darcy system on a fixed `s × s` grid.
///
/// ```
/// use fieldflow_pde::darcy::DarcySolver;
/// use ndarray::Array2;
/// let s = 33;
/// let solver = DarcySolver::new(s)?;
/// let a = Array2::from_elem((s, s), 1.0);
/// let f = Array2::from_elem((s, s), 1.0);
/// let u = solver.solve(a.view(), f.view())?;
/// let rel = solver.operator().relative_residual(a.view(), u.view(), f.view())?;
/// assert!(rel < 1e-12);
/// // Torsion of the unit square: max u ≈ 0.0737 for −Δu = 1.
/// assert!((u[[16, 16]] - 0.0737).abs() < 1e-3);
/// # Ok::<(), fieldflow_pde::PdeError>(())
/// ```
pub struct DarcySolver {
    op: DarcyOperator,
    /// Upper-triangular pattern of `A` on the interior unknowns (rows `S, W, P` of column `P`).
    pattern: SymbolicSparseColMat<usize>,
    symbolic: SymbolicCholesky<usize>,
    par: Par,
    scratch: StackReq,
    pool: Mutex<Vec<Workspace>>,
}

impl std::fmt::Debug for DarcySolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DarcySolver")
            .field("s", &self.op.size())
            .field("face_average", &self.op.face_average())
            .field("unknowns", &self.op.n_unknowns())
            .field("factor_len", &self.factor_len())
            .field("supernodal", &self.is_supernodal())
            .field("par", &self.par)
            .finish_non_exhaustive()
    }
}

impl DarcySolver {
    /// A solver for `s × s` grids with the default parameters (arithmetic face average, nested
    /// dissection, sequential factorisation).
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] if `s < 3`; [`PdeError::Solver`] if the symbolic analysis fails
    /// (out of memory).
    pub fn new(s: usize) -> Result<Self> {
        Self::with_params(s, DarcySolverParams::default())
    }

    /// A solver for `s × s` grids: builds the sparsity pattern and runs the symbolic Cholesky
    /// analysis (fill-reducing ordering, elimination tree, supernodes) once.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_params(s: usize, params: DarcySolverParams) -> Result<Self> {
        let op = DarcyOperator::new(s, params.face_average)?;
        let m = s - 2;
        let n = m * m;
        let mut col_ptr = Vec::with_capacity(n + 1);
        let mut row_idx = Vec::with_capacity(3 * n);
        col_ptr.push(0);
        for p in 0..n {
            let (i, j) = (p / m, p % m);
            if i > 0 {
                row_idx.push(p - m);
            }
            if j > 0 {
                row_idx.push(p - 1);
            }
            row_idx.push(p);
            col_ptr.push(row_idx.len());
        }
        let pattern = SymbolicSparseColMat::new_checked(n, n, col_ptr, None, row_idx);
        let symbolic = match params.ordering {
            FillOrdering::Amd => factorize_symbolic_cholesky(
                pattern.as_ref(),
                Side::Upper,
                SymmetricOrdering::Amd,
                CholeskySymbolicParams::default(),
            ),
            FillOrdering::NestedDissection => {
                let fwd = nested_dissection(m);
                let mut inv = vec![0; n];
                for (new, &old) in fwd.iter().enumerate() {
                    inv[old] = new;
                }
                // The separators are dense cliques of the factor: always block them into
                // supernodes (faer's flop-ratio heuristic would pick the simplicial code at
                // s ≤ 129, which measures 1.5–2× slower there).
                let params = CholeskySymbolicParams {
                    supernodal_flop_ratio_threshold: SupernodalThreshold::FORCE_SUPERNODAL,
                    ..CholeskySymbolicParams::default()
                };
                factorize_symbolic_cholesky(
                    pattern.as_ref(),
                    Side::Upper,
                    SymmetricOrdering::Custom(PermRef::new_checked(&fwd, &inv, n)),
                    params,
                )
            }
        }
        .map_err(|e| PdeError::Solver(format!("symbolic Cholesky analysis failed: {e:?}")))?;
        let par = if params.threads > 1 { Par::rayon(params.threads) } else { Par::Seq };
        let scratch = StackReq::any_of(&[
            symbolic.factorize_numeric_llt_scratch::<f64>(par, Default::default()),
            symbolic.solve_in_place_scratch::<f64>(1, par),
        ]);
        Ok(Self { op, pattern, symbolic, par, scratch, pool: Mutex::new(Vec::new()) })
    }

    /// The operator this solver inverts (for residuals and Jacobians).
    pub fn operator(&self) -> &DarcyOperator {
        &self.op
    }

    /// Number of stored values of the Cholesky factor (a measure of fill-in and memory).
    pub fn factor_len(&self) -> usize {
        self.symbolic.len_val()
    }

    /// Whether faer chose the supernodal (blocked) numeric factorisation over the simplicial one.
    pub fn is_supernodal(&self) -> bool {
        matches!(self.symbolic.raw(), SymbolicCholeskyRaw::Supernodal(_))
    }

    /// Solves `−∇·(a∇u) = f` with `u = 0` on the boundary.
    ///
    /// Returns `u` of shape `(s, s)`, zero on the boundary. Boundary values of `f` are not used.
    /// Safe to call from several threads at once; each concurrent call uses its own buffers.
    ///
    /// # Errors
    /// [`PdeError::Shape`] or [`PdeError::NonFinite`] naming `a` or `f`; [`PdeError::Parameter`]
    /// naming `a` if `a ≤ 0` somewhere; [`PdeError::Solver`] if the factorisation fails (not
    /// expected for valid `a`: the matrix is then positive definite).
    pub fn solve(&self, a: ArrayView2<f64>, f: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.op.check_solvable(a)?;
        self.op.check_field("f", f)?;
        let mut ws = self.take_workspace()?;
        let u = self.solve_in(&mut ws, a, f);
        self.pool.lock().unwrap_or_else(PoisonError::into_inner).push(ws);
        u
    }

    fn take_workspace(&self) -> Result<Workspace> {
        if let Some(ws) = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Ok(ws);
        }
        let mem = MemBuffer::try_new(self.scratch)
            .map_err(|_| PdeError::Solver("out of memory for the Cholesky workspace".into()))?;
        Ok(Workspace {
            values: vec![0.0; self.pattern.row_idx().len()],
            factor: vec![0.0; self.symbolic.len_val()],
            rhs: vec![0.0; self.op.n_unknowns()],
            mem,
        })
    }

    fn solve_in(&self, ws: &mut Workspace, a: ArrayView2<f64>, f: ArrayView2<f64>) -> Result<Array2<f64>> {
        let s = self.op.size();
        let m = s - 2;
        let n = m * m;
        let inv_h2 = 1.0 / (self.op.spacing() * self.op.spacing());

        // Upper triangle of A, column by column: rows S, W (when interior) and the diagonal.
        let a = contiguous(a);
        let mut slot = 0;
        for i in 1..s - 1 {
            for j in 1..s - 1 {
                let [e, w, north, south] = self.op.faces(&a, i * s + j);
                if i > 1 {
                    ws.values[slot] = -south * inv_h2;
                    slot += 1;
                }
                if j > 1 {
                    ws.values[slot] = -w * inv_h2;
                    slot += 1;
                }
                ws.values[slot] = (e + w + north + south) * inv_h2;
                slot += 1;
            }
        }

        let stack = MemStack::new(&mut ws.mem);
        let llt = self
            .symbolic
            .factorize_numeric_llt(
                &mut ws.factor,
                SparseColMatRef::new(self.pattern.as_ref(), &ws.values),
                Side::Upper,
                LltRegularization::default(),
                self.par,
                stack,
                Default::default(),
            )
            .map_err(|e| PdeError::Solver(format!("sparse Cholesky factorisation failed: {e}")))?;

        for (dst, src) in ws.rhs.iter_mut().zip(f.slice(ndarray::s![1..s - 1, 1..s - 1])) {
            *dst = *src;
        }
        let rhs = MatMut::from_column_major_slice_mut(&mut ws.rhs, n, 1);
        llt.solve_in_place_with_conj(Conj::No, rhs, self.par, stack);

        let mut u = Array2::zeros((s, s));
        for (dst, src) in u.slice_mut(ndarray::s![1..s - 1, 1..s - 1]).iter_mut().zip(&ws.rhs) {
            *dst = *src;
        }
        Ok(u)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::darcy::{FnoCoefficient, Forcing};
    use std::f64::consts::PI;

    /// u = sin(πx) sin(πy), a = 1 + ½ sin(2πx) cos(πy), f = −∇·(a∇u) = 2π² a u − ∇a·∇u.
    fn manufactured(s: usize) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
        let h = 1.0 / (s - 1) as f64;
        let node = |(i, j): (usize, usize)| (j as f64 * h, i as f64 * h);
        let coef = |x: f64, y: f64| 1.0 + 0.5 * (2.0 * PI * x).sin() * (PI * y).cos();
        let exact = |x: f64, y: f64| (PI * x).sin() * (PI * y).sin();
        let a = Array2::from_shape_fn((s, s), |ij| {
            let (x, y) = node(ij);
            coef(x, y)
        });
        let u = Array2::from_shape_fn((s, s), |ij| {
            let (x, y) = node(ij);
            exact(x, y)
        });
        let f = Array2::from_shape_fn((s, s), |ij| {
            let (x, y) = node(ij);
            let (ux, uy) = (PI * (PI * x).cos() * (PI * y).sin(), PI * (PI * x).sin() * (PI * y).cos());
            let ax = PI * (2.0 * PI * x).cos() * (PI * y).cos();
            let ay = -0.5 * PI * (2.0 * PI * x).sin() * (PI * y).sin();
            2.0 * PI * PI * coef(x, y) * exact(x, y) - (ax * ux + ay * uy)
        });
        (a, u, f)
    }

    #[test]
    fn manufactured_solution_converges_at_second_order() {
        for face_average in [FaceAverage::Arithmetic, FaceAverage::Harmonic] {
            let mut errors = Vec::new();
            for s in [17, 33, 65, 129] {
                let (a, exact, f) = manufactured(s);
                let solver =
                    DarcySolver::with_params(s, DarcySolverParams { face_average, ..Default::default() }).unwrap();
                let u = solver.solve(a.view(), f.view()).unwrap();
                let err = (&u - &exact).mapv(f64::abs).fold(0.0_f64, |m, v| m.max(*v));
                errors.push(err);
            }
            for pair in errors.windows(2) {
                let order = (pair[0] / pair[1]).log2();
                assert!((1.9..=2.1).contains(&order), "{face_average:?}: {errors:?}, order {order}");
            }
            assert!(errors[3] < 1e-4, "{errors:?}");
        }
    }

    #[test]
    fn solve_reaches_round_off_for_a_thresholded_coefficient() {
        let s = 65;
        let a = FnoCoefficient::default().sample(s, 3, 0).unwrap();
        let f = Array2::from_elem((s, s), 1.0);
        let solver = DarcySolver::new(s).unwrap();
        for _ in 0..2 {
            // The second call reuses the pooled workspace.
            let u = solver.solve(a.view(), f.view()).unwrap();
            let summary = solver.operator().residual_summary(a.view(), u.view(), f.view()).unwrap();
            assert!(summary.relative <= 1e-10, "{summary:?}");
            assert_eq!(summary.boundary_max, 0.0);
            assert!(u.iter().all(|v| *v >= 0.0), "maximum principle: f ≥ 0 gives u ≥ 0");
        }
        assert!(solver.factor_len() > solver.operator().n_unknowns());
    }

    #[test]
    fn solve_is_thread_safe_and_deterministic() {
        let s = 33;
        let solver = DarcySolver::new(s).unwrap();
        let f = Array2::from_elem((s, s), 1.0);
        let coefficients: Vec<_> = (0..4).map(|i| FnoCoefficient::default().sample(s, 9, i).unwrap()).collect();
        let serial: Vec<_> = coefficients.iter().map(|a| solver.solve(a.view(), f.view()).unwrap()).collect();
        let parallel: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                coefficients.iter().map(|a| scope.spawn(|| solver.solve(a.view(), f.view()).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(serial, parallel);
    }

    #[test]
    fn orderings_and_threads_agree() {
        for m in [1, 2, 3, 7, 16, 31] {
            let mut order = nested_dissection(m);
            order.sort_unstable();
            assert_eq!(order, (0..m * m).collect::<Vec<_>>(), "m = {m}");
        }
        let s = 41;
        let a = FnoCoefficient::default().sample(s, 4, 1).unwrap();
        let f = Forcing::Piecewise { left: 1.0, right: -2.0, split: 0.5 }.field(s).unwrap();
        let reference = DarcySolver::new(s).unwrap().solve(a.view(), f.view()).unwrap();
        let peak = reference.mapv(f64::abs).fold(0.0_f64, |m, v| m.max(*v));
        for (ordering, threads) in [(FillOrdering::Amd, 1), (FillOrdering::NestedDissection, 2)] {
            let params = DarcySolverParams { ordering, threads, ..Default::default() };
            let u = DarcySolver::with_params(s, params).unwrap().solve(a.view(), f.view()).unwrap();
            let diff = (&u - &reference).mapv(f64::abs).fold(0.0_f64, |m, v| m.max(*v));
            assert!(diff <= 1e-13 * peak, "{ordering:?}, {threads} threads: {diff}");
        }
        // Smallest grid: one unknown, (4a/h²) u = f with h = 1/2.
        let s = 3;
        let u = DarcySolver::new(s)
            .unwrap()
            .solve(Array2::from_elem((s, s), 2.0).view(), Array2::from_elem((s, s), 1.0).view())
            .unwrap();
        assert!((u[[1, 1]] - 1.0 / 32.0).abs() <= 4.0 * f64::EPSILON / 32.0, "{}", u[[1, 1]]);
        assert_eq!(u.sum(), u[[1, 1]], "zero boundary");
    }

    #[test]
    fn solver_rejects_bad_input() {
        assert!(matches!(DarcySolver::new(2), Err(PdeError::InvalidGrid(_))));
        let s = 8;
        let solver = DarcySolver::new(s).unwrap();
        let a = Array2::from_elem((s, s), 1.0);
        let f = Array2::from_elem((s, s), 1.0);

        let err = solver.solve(Array2::from_elem((s, s - 1), 1.0).view(), f.view()).unwrap_err();
        assert!(
            matches!(&err, PdeError::Shape { what: "a", expected, got } if *expected == vec![s, s] && *got == vec![s, s - 1])
        );
        let err = solver.solve(a.view(), Array2::zeros((s + 1, s)).view()).unwrap_err();
        assert!(matches!(err, PdeError::Shape { what: "f", .. }));

        let mut neg = a.clone();
        neg[[3, 4]] = -1.0;
        let err = solver.solve(neg.view(), f.view()).unwrap_err();
        assert!(matches!(err, PdeError::Parameter { name: "a", value, .. } if value == -1.0));

        let mut nan = f.clone();
        nan[[2, 5]] = f64::NAN;
        let err = solver.solve(a.view(), nan.view()).unwrap_err();
        assert!(matches!(err, PdeError::NonFinite { what: "f", index: 21 }));

        let mut inf = a.clone();
        inf[[0, 1]] = f64::INFINITY;
        let err = solver.solve(inf.view(), f.view()).unwrap_err();
        assert!(matches!(err, PdeError::NonFinite { what: "a", index: 1 }));

        // Still usable after errors.
        assert!(solver.solve(a.view(), f.view()).is_ok());
    }
}
