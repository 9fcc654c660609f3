//! Sparse normal equations of the Darcy pair constraint: `J = [B(u) | A_b(a)]` assembled in a
//! fixed pattern, `J Jᵀ` by a faer sparse product, and its sparse Cholesky factorisation, giving
//! the Gauss–Newton correction `Jᵀ (J Jᵀ)⁻¹ h`.

use std::fmt;

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::cholesky::llt::factor::LltRegularization;
use faer::sparse::linalg::cholesky::{
    CholeskySymbolicParams, SymbolicCholesky, SymmetricOrdering, factorize_symbolic_cholesky,
};
use faer::sparse::linalg::matmul::{
    SparseMatMulInfo, sparse_sparse_matmul_numeric, sparse_sparse_matmul_numeric_scratch, sparse_sparse_matmul_symbolic,
};
use faer::sparse::{SparseColMatMut, SparseColMatRef, SymbolicSparseColMat};
use faer::{Accum, Conj, MatMut, Par, Side};
use ndarray::{Array1, Array3, ArrayView3, Axis};

use crate::darcy::FaceAverage;
use crate::error::{PdeError, Result};

/// The sparse Jacobian pattern of the pair constraint and the symbolic analysis of `J Jᵀ`, built
/// once per grid size.
///
/// `J` has one row per node `k = i s + j` and `2 s²` columns (`a` at column `k`, `u` at
/// `s² + k`); a boundary row holds the single entry `∂h_k/∂u_k = 1`, an interior row the five
/// `a`-columns and five `u`-columns of the stencil `S, W, P, E, N`. Every structurally possible
/// entry is stored even when its value is 0, so the pattern and the symbolic factorisation of
/// `J Jᵀ` (13-point, approximate minimum degree ordering) do not depend on `(a, u)`.
pub(super) struct NormalEquations {
    s: usize,
    /// `J` in row-compressed form (`Jᵀ` column-compressed): row pointers and column indices.
    pub(super) row_ptr: Vec<usize>,
    pub(super) col_idx: Vec<usize>,
    /// `J` column-compressed, and where each row-compressed entry lands in it.
    csc: SymbolicSparseColMat<usize>,
    csr_to_csc: Vec<usize>,
    jt: SymbolicSparseColMat<usize>,
    gram: SymbolicSparseColMat<usize>,
    product: SparseMatMulInfo,
    cholesky: SymbolicCholesky<usize>,
    scratch: StackReq,
}

/// Buffers for one projection.
pub(super) struct Workspace {
    pub(super) jac: Vec<f64>,
    jac_csc: Vec<f64>,
    gram: Vec<f64>,
    factor: Vec<f64>,
    rhs: Vec<f64>,
    mem: MemBuffer,
}

impl NormalEquations {
    pub(super) fn new(s: usize) -> Result<Self> {
        let (n_nodes, n_cols) = (s * s, 2 * s * s);
        let mut row_ptr = Vec::with_capacity(n_nodes + 1);
        let mut col_idx = Vec::with_capacity(10 * n_nodes);
        row_ptr.push(0);
        for k in 0..n_nodes {
            let (i, j) = (k / s, k % s);
            if i == 0 || j == 0 || i == s - 1 || j == s - 1 {
                col_idx.push(n_nodes + k);
            } else {
                let stencil = [k - s, k - 1, k, k + 1, k + s];
                col_idx.extend(stencil);
                col_idx.extend(stencil.map(|q| n_nodes + q));
            }
            row_ptr.push(col_idx.len());
        }
        // Counting-sort transpose: J column-compressed, rows sorted within each column.
        let mut col_ptr = vec![0; n_cols + 1];
        for &c in &col_idx {
            col_ptr[c + 1] += 1;
        }
        for c in 0..n_cols {
            col_ptr[c + 1] += col_ptr[c];
        }
        let mut next = col_ptr.clone();
        let mut row_idx = vec![0; col_idx.len()];
        let mut csr_to_csc = vec![0; col_idx.len()];
        for r in 0..n_nodes {
            for p in row_ptr[r]..row_ptr[r + 1] {
                let c = col_idx[p];
                row_idx[next[c]] = r;
                csr_to_csc[p] = next[c];
                next[c] += 1;
            }
        }
        let csc = SymbolicSparseColMat::new_checked(n_nodes, n_cols, col_ptr, None, row_idx);
        let jt = SymbolicSparseColMat::new_checked(n_cols, n_nodes, row_ptr.clone(), None, col_idx.clone());
        let fail = |what: &str, e: &dyn fmt::Debug| PdeError::Solver(format!("{what} of J Jᵀ failed: {e:?}"));
        let (gram, product) =
            sparse_sparse_matmul_symbolic(csc.as_ref(), jt.as_ref()).map_err(|e| fail("symbolic product", &e))?;
        let cholesky = factorize_symbolic_cholesky(
            gram.as_ref(),
            Side::Lower,
            SymmetricOrdering::Amd,
            CholeskySymbolicParams::default(),
        )
        .map_err(|e| fail("symbolic Cholesky analysis", &e))?;
        let scratch = StackReq::any_of(&[
            sparse_sparse_matmul_numeric_scratch::<usize, f64>(gram.as_ref(), Par::Seq),
            cholesky.factorize_numeric_llt_scratch::<f64>(Par::Seq, Default::default()),
            cholesky.solve_in_place_scratch::<f64>(1, Par::Seq),
        ]);
        Ok(Self { s, row_ptr, col_idx, csc, csr_to_csc, jt, gram, product, cholesky, scratch })
    }

    pub(super) fn workspace(&self) -> Result<Workspace> {
        let mem = MemBuffer::try_new(self.scratch)
            .map_err(|_| PdeError::Solver("out of memory for the Gauss-Newton workspace".into()))?;
        Ok(Workspace {
            jac: vec![0.0; self.col_idx.len()],
            jac_csc: vec![0.0; self.col_idx.len()],
            gram: vec![0.0; self.gram.row_idx().len()],
            factor: vec![0.0; self.cholesky.len_val()],
            rhs: vec![0.0; self.s * self.s],
            mem,
        })
    }

    /// Fills the values of `J(a, u)` (row-compressed, in the pattern of [`NormalEquations::new`]).
    pub(super) fn fill_jacobian(&self, face: FaceAverage, inv_h2: f64, a: &[f64], u: &[f64], jac: &mut [f64]) {
        let s = self.s;
        for k in 0..s * s {
            let row = &mut jac[self.row_ptr[k]..self.row_ptr[k + 1]];
            if row.len() == 1 {
                row[0] = 1.0;
                continue;
            }
            row.fill(0.0);
            // Positions 0..5 are a at S, W, P, E, N; 5..10 are u at the same nodes.
            for (slot, q) in [(0, k - s), (1, k - 1), (3, k + 1), (4, k + s)] {
                let af = face.value(a[k], a[q]);
                let (gp, gq) = face.gradient(a[k], a[q]);
                let du = (u[k] - u[q]) * inv_h2;
                row[2] += gp * du;
                row[slot] = gq * du;
                row[7] += af * inv_h2;
                row[5 + slot] = -af * inv_h2;
            }
        }
    }

    /// The Gauss–Newton correction `Jᵀ (J Jᵀ)⁻¹ h` at `pair`.
    pub(super) fn step(
        &self,
        face: FaceAverage,
        inv_h2: f64,
        ws: &mut Workspace,
        pair: ArrayView3<f64>,
        h: &Array1<f64>,
    ) -> Result<Array3<f64>> {
        let s = self.s;
        let n_nodes = s * s;
        let a: Vec<f64> = pair.index_axis(Axis(0), 0).iter().copied().collect();
        let u: Vec<f64> = pair.index_axis(Axis(0), 1).iter().copied().collect();
        self.fill_jacobian(face, inv_h2, &a, &u, &mut ws.jac);
        for (p, &v) in ws.jac.iter().enumerate() {
            ws.jac_csc[self.csr_to_csc[p]] = v;
        }

        let stack = MemStack::new(&mut ws.mem);
        sparse_sparse_matmul_numeric(
            SparseColMatMut::new(self.gram.as_ref(), &mut ws.gram),
            Accum::Replace,
            SparseColMatRef::new(self.csc.as_ref(), &ws.jac_csc),
            SparseColMatRef::new(self.jt.as_ref(), &ws.jac),
            1.0,
            &self.product,
            Par::Seq,
            stack,
        );
        let llt = self
            .cholesky
            .factorize_numeric_llt(
                &mut ws.factor,
                SparseColMatRef::new(self.gram.as_ref(), &ws.gram),
                Side::Lower,
                LltRegularization::default(),
                Par::Seq,
                stack,
                Default::default(),
            )
            .map_err(|e| PdeError::Solver(format!("sparse Cholesky factorisation of J Jᵀ failed: {e}")))?;
        for (dst, src) in ws.rhs.iter_mut().zip(h) {
            *dst = *src;
        }
        llt.solve_in_place_with_conj(
            Conj::No,
            MatMut::from_column_major_slice_mut(&mut ws.rhs, n_nodes, 1),
            Par::Seq,
            stack,
        );

        let mut step = vec![0.0; 2 * n_nodes];
        for (r, &y) in ws.rhs.iter().enumerate() {
            for p in self.row_ptr[r]..self.row_ptr[r + 1] {
                step[self.col_idx[p]] += ws.jac[p] * y;
            }
        }
        if step.iter().any(|v| !v.is_finite()) {
            return Err(PdeError::Solver("non-finite Gauss-Newton step (J Jᵀ numerically singular)".into()));
        }
        Array3::from_shape_vec((2, s, s), step).map_err(|e| PdeError::Solver(format!("Gauss-Newton step: {e}")))
    }
}
