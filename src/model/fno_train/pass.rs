//! The forward and backward pass of one shard of samples (see the parent module's equations).

use std::ops::Range;
use std::sync::Mutex;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, Array4, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, s};

use super::super::fno_cpu::{erf, gelu_f32};
use super::spectral::{self, Basis};
use super::{
    Dims, EMB_HIDDEN_B, EMB_HIDDEN_W, EMB_OUT_B, EMB_OUT_W, GradBatch, LIFT_B, LIFT_TIME, LIFT_W, block_slot, proj_slot,
};
use crate::model::ModelError;
use crate::model::flat::Slot;

/// `eˣ` for `x ≤ 0` in f32 (Cephes' `expf`: Cody–Waite reduction by `ln 2`, degree-5 polynomial,
/// relative error ≈ 1e-7; `x` clamped at −87), branch-free so that loops over it vectorise.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds to an integer.
    let x = x.clamp(-87.0, 0.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    let k = (t.to_bits() as i32) - 0x4B40_0000;
    er * f32::from_bits(((k + 127) << 23) as u32)
}

/// `GELU'(x) = Φ(x) + x φ(x)`.
#[inline(always)]
fn gelu_grad(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)) + x * INV_SQRT_2PI * exp_nonpositive(-0.5 * x * x)
}

/// `Σ x` in f64: f32 partial sums in 8 lanes over blocks of 256 values (vectorisable), added in f64.
fn sum_f64(x: &[f32]) -> f64 {
    let mut total = 0.0_f64;
    for block in x.chunks(256) {
        let mut acc = [0.0_f32; 8];
        let mut lanes = block.chunks_exact(8);
        for c in &mut lanes {
            for j in 0..8 {
                acc[j] += c[j];
            }
        }
        total += acc.iter().chain(lanes.remainder()).map(|&a| f64::from(a)).sum::<f64>();
    }
    total
}

/// `Σ a b` in f64, blocked as [`sum_f64`].
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut total = 0.0_f64;
    for (ba, bb) in a.chunks(256).zip(b.chunks(256)) {
        let mut acc = [0.0_f32; 8];
        let (mut la, mut lb) = (ba.chunks_exact(8), bb.chunks_exact(8));
        for (ca, cb) in (&mut la).zip(&mut lb) {
            for j in 0..8 {
                acc[j] += ca[j] * cb[j];
            }
        }
        let rest: f64 = la.remainder().iter().zip(lb.remainder()).map(|(x, y)| f64::from(x * y)).sum();
        total += acc.iter().map(|&v| f64::from(v)).sum::<f64>() + rest;
    }
    total
}

fn as_slice<'b>(a: &'b ndarray::ArrayView1<f32>) -> Result<&'b [f32], ModelError> {
    a.as_slice().ok_or_else(|| ModelError::shape("activation", "contiguous rows", &[a.len()]))
}

/// What the output's cotangent is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Head {
    /// `d out = scale (out − target)` and the loss sum `Σ (out − target)²`.
    Mse { scale: f32 },
    /// `d out = target` (a vector–Jacobian product).
    Cotangent,
}

/// Reusable `f32` buffers, so that a step does not map fresh pages for its activations.
#[derive(Debug, Default)]
pub(super) struct Pool(Mutex<Vec<Vec<f32>>>);

impl Pool {
    /// A zeroed buffer of `n` values (a returned one when one is large enough).
    pub(super) fn zeros(&self, n: usize) -> Vec<f32> {
        let mut v = self.take(n);
        v.clear();
        v.resize(n, 0.0);
        v
    }

    /// A buffer of `n` values with unspecified (stale, finite) contents, for arrays that are
    /// overwritten entirely before they are read.
    fn scratch(&self, n: usize) -> Vec<f32> {
        let mut v = self.take(n);
        if v.len() >= n {
            v.truncate(n);
        } else {
            v.resize(n, 0.0);
        }
        v
    }

    fn take(&self, n: usize) -> Vec<f32> {
        let found = self.0.lock().ok().and_then(|mut free| {
            // Best fit: the smallest free buffer that holds `n` values.
            let (i, _) =
                free.iter().enumerate().filter(|(_, b)| b.capacity() >= n).min_by_key(|(_, b)| b.capacity())?;
            Some(free.swap_remove(i))
        });
        found.unwrap_or_else(|| Vec::with_capacity(n))
    }

    fn scratch3(&self, shape: (usize, usize, usize)) -> Array3<f32> {
        let v = self.scratch(shape.0 * shape.1 * shape.2);
        Array3::from_shape_vec(shape, v).unwrap_or_else(|_| Array3::zeros(shape))
    }

    fn scratch4(&self, shape: (usize, usize, usize, usize)) -> Array4<f32> {
        let v = self.scratch(shape.0 * shape.1 * shape.2 * shape.3);
        Array4::from_shape_vec(shape, v).unwrap_or_else(|_| Array4::zeros(shape))
    }

    fn zeros4(&self, shape: (usize, usize, usize, usize)) -> Array4<f32> {
        let v = self.zeros(shape.0 * shape.1 * shape.2 * shape.3);
        Array4::from_shape_vec(shape, v).unwrap_or_else(|_| Array4::zeros(shape))
    }

    /// Returns a buffer for reuse.
    pub(super) fn give(&self, v: Vec<f32>) {
        if let Ok(mut free) = self.0.lock() {
            free.push(v);
        }
    }

    fn give_array<D: ndarray::Dimension>(&self, a: ndarray::Array<f32, D>) {
        self.give(a.into_raw_vec_and_offset().0);
    }
}

/// The weights of one call, as views of the flat parameter buffer.
pub(super) struct Net<'a> {
    d: Dims,
    slots: &'a [Slot],
    theta: &'a [f32],
    omega: &'a [f32],
    basis: &'a Basis,
    pool: &'a Pool,
    /// Per layer: the spectral weights as `[2, K, Ci, Co]`.
    wt: Vec<Array4<f32>>,
}

fn shape_err(e: ndarray::ShapeError) -> ModelError {
    ModelError::shape("weights", e.to_string(), &[])
}

impl<'a> Net<'a> {
    pub(super) fn new(
        d: &Dims,
        slots: &'a [Slot],
        theta: &'a [f32],
        omega: &'a [f32],
        basis: &'a Basis,
        pool: &'a Pool,
    ) -> Result<Self, ModelError> {
        let (w, k, r2, m2) = (d.w, d.k(), 2 * d.m1, d.m2);
        let wt = (0..d.layers)
            .map(|l| {
                let src = &theta[slots[block_slot(l, 0)].range()];
                // Burn's layout [2, Ci, Co, 2 m1, m2] → [2, K = (kx, r), Ci, Co].
                let mut out = pool.scratch4((2, k, w, w));
                if let Some(dst) = out.as_slice_mut() {
                    for_spectral_pairs(w, r2, m2, |e, b| dst[e] = src[b]);
                }
                out
            })
            .collect();
        Ok(Self { d: *d, slots, theta, omega, basis, pool, wt })
    }

    fn mat(&self, slot: usize) -> Result<ArrayView2<'a, f32>, ModelError> {
        let s = &self.slots[slot];
        ArrayView2::from_shape((s.dims[0], s.dims[1]), &self.theta[s.range()]).map_err(shape_err)
    }

    fn vec(&self, slot: usize) -> ArrayView1<'a, f32> {
        ArrayView1::from(&self.theta[self.slots[slot].range()])
    }

    /// Forward and backward pass of samples `range`: `(loss sum, gradient, input cotangent)`
    /// (the input cotangent only with `want_dx`).
    pub(super) fn shard(
        &self,
        batch: &GradBatch,
        range: Range<usize>,
        head: Head,
        want_dx: bool,
    ) -> Result<(f64, Vec<f32>, Vec<f32>), ModelError> {
        let d = self.d;
        let (_, h, w) = batch.shape;
        let hw = h * w;
        let bs = range.len();
        let b0 = range.start;
        let (width, layers) = (d.w, d.layers);
        let total = self.slots.last().map_or(0, |s| s.range().end);
        let pool = self.pool;
        let mut grad = pool.zeros(total);

        // Time embedding: phi → h1 = GELU(phi W_h + b_h) → e_pre = h1 W_o + b_o → e = GELU(e_pre).
        let nphi = 2 * d.nf + d.np;
        let phi = Array2::from_shape_fn((bs, nphi), |(i, j)| {
            let t = batch.t[b0 + i];
            if j < d.nf {
                (t * self.omega[j]).sin()
            } else if j < 2 * d.nf {
                (t * self.omega[j - d.nf]).cos()
            } else {
                batch.params.map_or(0.0, |p| p[(b0 + i) * d.np + j - 2 * d.nf])
            }
        });
        let h1_pre = phi.dot(&self.mat(EMB_HIDDEN_W)?) + self.vec(EMB_HIDDEN_B);
        let h1 = h1_pre.mapv(gelu_f32);
        let e_pre = h1.dot(&self.mat(EMB_OUT_W)?) + self.vec(EMB_OUT_B);
        let e = e_pre.mapv(gelu_f32);
        let lift_time = e.dot(&self.mat(LIFT_TIME)?);
        let films: Vec<Array2<f32>> = (0..layers)
            .map(|l| Ok(e.dot(&self.mat(block_slot(l, 3))?) + self.vec(block_slot(l, 4))))
            .collect::<Result<_, ModelError>>()?;

        // Lifting input [Bs, Cl, HW] and z0.
        let cl = d.cl();
        let mut inp = pool.scratch3((bs, cl, hw));
        for i in 0..bs {
            let b = b0 + i;
            let xs = &batch.x[b * d.c * hw..(b + 1) * d.c * hw];
            inp.slice_mut(s![i, ..d.c, ..]).assign(&ArrayView2::from_shape((d.c, hw), xs).map_err(shape_err)?);
            if let Some(c) = batch.cond {
                let cs = &c[b * d.nc * hw..(b + 1) * d.nc * hw];
                inp.slice_mut(s![i, d.c..d.c + d.nc, ..])
                    .assign(&ArrayView2::from_shape((d.nc, hw), cs).map_err(shape_err)?);
            }
            if let Some(g) = &self.basis.grid {
                inp.slice_mut(s![i, d.c + d.nc.., ..]).assign(g);
            }
        }
        let lift_w = self.mat(LIFT_W)?;
        let lift_b = self.vec(LIFT_B);
        let mut zs: Vec<Array3<f32>> = Vec::with_capacity(layers + 1);
        let mut z0 = pool.scratch3((bs, width, hw));
        for i in 0..bs {
            let mut zi = z0.index_axis_mut(Axis(0), i);
            general_mat_mul(1.0, &lift_w, &inp.index_axis(Axis(0), i), 0.0, &mut zi);
            for (c, mut row) in zi.axis_iter_mut(Axis(0)).enumerate() {
                let add = lift_b[c] + lift_time[[i, c]];
                row.mapv_inplace(|v| v + add);
            }
        }
        zs.push(z0);

        // Fourier layers: v_l = W_l z_l + b_l + K_l z_l, z_{l+1} = GELU(v_l (1 + γ) + β).
        let mut vs: Vec<Array3<f32>> = Vec::with_capacity(layers);
        let mut xms: Vec<Array4<f32>> = Vec::with_capacity(layers);
        for l in 0..layers {
            let (pw, pb) = (self.mat(block_slot(l, 1))?, self.vec(block_slot(l, 2)));
            let z = &zs[l];
            let mut v = pool.scratch3((bs, width, hw));
            for i in 0..bs {
                let mut vi = v.index_axis_mut(Axis(0), i);
                general_mat_mul(1.0, &pw, &z.index_axis(Axis(0), i), 0.0, &mut vi);
                for (c, mut row) in vi.axis_iter_mut(Axis(0)).enumerate() {
                    let add = pb[c];
                    row.mapv_inplace(|x| x + add);
                }
            }
            let mut xm = pool.scratch4((d.k(), 2, bs, width));
            spectral::forward(self.basis, self.wt[l].view(), z.view(), v.view_mut(), &mut xm);
            let film = &films[l];
            let activate = l + 1 < layers;
            let mut next = pool.scratch3((bs, width, hw));
            for i in 0..bs {
                for c in 0..width {
                    let (g, bt) = (1.0 + film[[i, c]], film[[i, width + c]]);
                    let src = v.slice(s![i, c, ..]);
                    let mut dst = next.slice_mut(s![i, c, ..]);
                    let (Some(src), Some(dst)) = (src.as_slice(), dst.as_slice_mut()) else {
                        return Err(ModelError::shape("activation", "contiguous rows", &[hw]));
                    };
                    if activate {
                        dst.iter_mut().zip(src).for_each(|(o, &x)| *o = gelu_f32(x * g + bt));
                    } else {
                        dst.iter_mut().zip(src).for_each(|(o, &x)| *o = x * g + bt);
                    }
                }
            }
            vs.push(v);
            xms.push(xm);
            zs.push(next);
        }

        // Projection and the output cotangent.
        let (q1, q1b) = (self.mat(proj_slot(layers, 0))?, self.vec(proj_slot(layers, 1)));
        let (q2, q2b) = (self.mat(proj_slot(layers, 2))?, self.vec(proj_slot(layers, 3)));
        let (p, co) = (d.proj, d.co);
        let z_last = &zs[layers];
        let mut dz = pool.scratch3((bs, width, hw));
        let mut hid = Array2::<f32>::zeros((p, hw));
        let mut g = Array2::<f32>::zeros((p, hw));
        let mut out = Array2::<f32>::zeros((co, hw));
        let mut dg = Array2::<f32>::zeros((p, hw));
        let mut loss_sum = 0.0_f64;
        for i in 0..bs {
            let b = b0 + i;
            let zi = z_last.index_axis(Axis(0), i);
            general_mat_mul(1.0, &q1, &zi, 0.0, &mut hid);
            for (c, mut row) in hid.axis_iter_mut(Axis(0)).enumerate() {
                let add = q1b[c];
                row.mapv_inplace(|x| x + add);
            }
            if let (Some(gs), Some(hs)) = (g.as_slice_mut(), hid.as_slice()) {
                gs.iter_mut().zip(hs).for_each(|(gv, &hv)| *gv = gelu_f32(hv));
            }
            general_mat_mul(1.0, &q2, &g, 0.0, &mut out);
            let target =
                ArrayView2::from_shape((co, hw), &batch.target[b * co * hw..(b + 1) * co * hw]).map_err(shape_err)?;
            for ((c, mut row), trow) in out.axis_iter_mut(Axis(0)).enumerate().zip(target.axis_iter(Axis(0))) {
                let bias = q2b[c];
                let (Some(row), Some(trow)) = (row.as_slice_mut(), trow.to_slice()) else {
                    return Err(ModelError::shape("output", "contiguous rows", &[hw]));
                };
                match head {
                    Head::Mse { scale } => {
                        row.iter_mut().zip(trow).for_each(|(o, &u)| *o = *o + bias - u);
                        loss_sum += dot_f64(row, row);
                        row.iter_mut().for_each(|o| *o *= scale);
                    }
                    Head::Cotangent => row.copy_from_slice(trow),
                }
            }
            // `out` now holds d out.
            add_rowsum(&mut grad, &self.slots[proj_slot(layers, 3)], out.view());
            gemm_into(&mut grad, &self.slots[proj_slot(layers, 2)], out.view(), g.t(), 1.0)?;
            general_mat_mul(1.0, &q2.t(), &out, 0.0, &mut dg);
            if let (Some(ds), Some(hs)) = (dg.as_slice_mut(), hid.as_slice()) {
                ds.iter_mut().zip(hs).for_each(|(x, &hv)| *x *= gelu_grad(hv));
            }
            add_rowsum(&mut grad, &self.slots[proj_slot(layers, 1)], dg.view());
            gemm_into(&mut grad, &self.slots[proj_slot(layers, 0)], dg.view(), zi.t(), 1.0)?;
            let mut dzi = dz.index_axis_mut(Axis(0), i);
            general_mat_mul(1.0, &q1.t(), &dg, 0.0, &mut dzi);
        }

        // Fourier layers, last to first.
        let mut dfilms: Vec<Array2<f32>> = vec![Array2::zeros((bs, 2 * width)); layers];
        for l in (0..layers).rev() {
            let film = &films[l];
            let v = &vs[l];
            let activate = l + 1 < layers;
            // dy → dγ, dβ; dv = dy (1 + γ), in place in dz.
            for i in 0..bs {
                for c in 0..width {
                    let (gm, bt) = (1.0 + film[[i, c]], film[[i, width + c]]);
                    let vrow = v.slice(s![i, c, ..]);
                    let vrow = as_slice(&vrow)?;
                    let mut drow = dz.slice_mut(s![i, c, ..]);
                    let Some(drow) = drow.as_slice_mut() else {
                        return Err(ModelError::shape("activation", "contiguous rows", &[hw]));
                    };
                    if activate {
                        drow.iter_mut().zip(vrow).for_each(|(d, &x)| *d *= gelu_grad(x * gm + bt));
                    }
                    dfilms[l][[i, c]] = dot_f64(drow, vrow) as f32;
                    dfilms[l][[i, width + c]] = sum_f64(drow) as f32;
                    drow.iter_mut().for_each(|d| *d *= gm);
                }
            }
            let pw = self.mat(block_slot(l, 1))?;
            let z = &zs[l];
            let mut dz_prev = pool.scratch3((bs, width, hw));
            for i in 0..bs {
                let dvi = dz.index_axis(Axis(0), i);
                add_rowsum(&mut grad, &self.slots[block_slot(l, 2)], dvi);
                gemm_into(&mut grad, &self.slots[block_slot(l, 1)], dvi, z.index_axis(Axis(0), i).t(), 1.0)?;
                let mut dzi = dz_prev.index_axis_mut(Axis(0), i);
                general_mat_mul(1.0, &pw.t(), &dvi, 0.0, &mut dzi);
            }
            let mut dwt = pool.zeros4((2, d.k(), width, width));
            spectral::backward(self.basis, self.wt[l].view(), &xms[l], dz.view(), dz_prev.view_mut(), &mut dwt);
            scatter_spectral(&mut grad, &self.slots[block_slot(l, 0)], &dwt, &d);
            pool.give_array(dwt);
            pool.give_array(std::mem::replace(&mut dz, dz_prev));
        }

        // Lifting: dP, dp, d(lift_time) and the input cotangent.
        let mut dlt = Array2::<f32>::zeros((bs, width));
        let mut dx = if want_dx { vec![0.0_f32; bs * d.c * hw] } else { Vec::new() };
        for i in 0..bs {
            let dzi = dz.index_axis(Axis(0), i);
            for (c, row) in dzi.axis_iter(Axis(0)).enumerate() {
                dlt[[i, c]] = row.as_slice().map_or_else(|| row.sum(), |r| sum_f64(r) as f32);
            }
            gemm_into(&mut grad, &self.slots[LIFT_W], dzi, inp.index_axis(Axis(0), i).t(), 1.0)?;
            if want_dx {
                let mut dxi = ArrayViewMut2::from_shape((d.c, hw), &mut dx[i * d.c * hw..(i + 1) * d.c * hw])
                    .map_err(shape_err)?;
                general_mat_mul(1.0, &lift_w.slice(s![.., ..d.c]).t(), &dzi, 0.0, &mut dxi);
            }
        }
        add_to(&mut grad, &self.slots[LIFT_B], dlt.sum_axis(Axis(0)).view());

        // Embedding: de from L_t and every FiLM map, then back through the MLP.
        gemm_into(&mut grad, &self.slots[LIFT_TIME], e.t(), dlt.view(), 1.0)?;
        let mut de = dlt.dot(&self.mat(LIFT_TIME)?.t());
        for (l, dfilm) in dfilms.iter().enumerate() {
            gemm_into(&mut grad, &self.slots[block_slot(l, 3)], e.t(), dfilm.view(), 1.0)?;
            add_to(&mut grad, &self.slots[block_slot(l, 4)], dfilm.sum_axis(Axis(0)).view());
            de = de + dfilm.dot(&self.mat(block_slot(l, 3))?.t());
        }
        de.zip_mut_with(&e_pre, |x, &ep| *x *= gelu_grad(ep));
        gemm_into(&mut grad, &self.slots[EMB_OUT_W], h1.t(), de.view(), 1.0)?;
        add_to(&mut grad, &self.slots[EMB_OUT_B], de.sum_axis(Axis(0)).view());
        let mut dh1 = de.dot(&self.mat(EMB_OUT_W)?.t());
        dh1.zip_mut_with(&h1_pre, |x, &hp| *x *= gelu_grad(hp));
        gemm_into(&mut grad, &self.slots[EMB_HIDDEN_W], phi.t(), dh1.view(), 1.0)?;
        add_to(&mut grad, &self.slots[EMB_HIDDEN_B], dh1.sum_axis(Axis(0)).view());
        for a in zs.into_iter().chain(vs).chain([dz, inp]) {
            pool.give_array(a);
        }
        xms.into_iter().for_each(|a| pool.give_array(a));
        Ok((loss_sum, grad, dx))
    }

    /// Returns the per-call buffers to the pool.
    pub(super) fn recycle(self) {
        self.wt.into_iter().for_each(|a| self.pool.give_array(a));
    }
}

/// `grad[slot] += a · b` (a `[r, k]`, b `[k, c]`, the slot `[r, c]`).
fn gemm_into(
    grad: &mut [f32],
    slot: &Slot,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
) -> Result<(), ModelError> {
    let mut g = ArrayViewMut2::from_shape((slot.dims[0], slot.dims[1]), &mut grad[slot.range()]).map_err(shape_err)?;
    general_mat_mul(1.0, &a, &b, beta, &mut g);
    Ok(())
}

/// `grad[slot] += Σ_columns m` in `f64`.
fn add_rowsum(grad: &mut [f32], slot: &Slot, m: ArrayView2<f32>) {
    for (g, row) in grad[slot.range()].iter_mut().zip(m.axis_iter(Axis(0))) {
        *g += row.as_slice().map_or_else(|| row.sum(), |r| sum_f64(r) as f32);
    }
}

/// `grad[slot] += v`.
fn add_to(grad: &mut [f32], slot: &Slot, v: ArrayView1<f32>) {
    let mut g = ArrayViewMut1::from(&mut grad[slot.range()]);
    g += &v;
}

/// Adds the `[2, K, Ci, Co]` spectral gradient to burn's `[2, Ci, Co, 2 m1, m2]` layout.
fn scatter_spectral(grad: &mut [f32], slot: &Slot, dwt: &Array4<f32>, d: &Dims) {
    let (w, r2, m2) = (d.w, 2 * d.m1, d.m2);
    let g = &mut grad[slot.range()];
    if let Some(src) = dwt.as_slice() {
        for_spectral_pairs(w, r2, m2, |e, b| g[b] += src[e]);
    }
}

/// Pairs the entries of burn's `[2, Ci, Co, 2 m1, m2]` layout with those of the engine's
/// `[2, K, Ci, Co]` (`K = (kx, r)`): calls `f(engine index, burn index)` blocked per
/// `(re/im, i)`, so that both sides stay in cache.
fn for_spectral_pairs(w: usize, r2: usize, m2: usize, mut f: impl FnMut(usize, usize)) {
    let k = r2 * m2;
    for p in 0..2 {
        for i in 0..w {
            for kx in 0..m2 {
                for r in 0..r2 {
                    let eng = ((p * k + kx * r2 + r) * w + i) * w;
                    let brn = (p * w + i) * w * k + r * m2 + kx;
                    for o in 0..w {
                        f(eng + o, brn + o * k);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_blocked_sums_are_accurate() {
        let worst = (0..=870_000)
            .map(|i| {
                let x = -(i as f32) * 1e-4;
                (f64::from(exp_nonpositive(x)) / f64::from(x).exp() - 1.0).abs()
            })
            .fold(0.0, f64::max);
        assert!(worst < 3e-7, "max relative error of exp {worst:e}");
        let v: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.5).collect();
        let want: f64 = v.iter().map(|&x| f64::from(x)).sum();
        assert!((sum_f64(&v) - want).abs() < 1e-5, "{} vs {want}", sum_f64(&v));
        let want: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        assert!((dot_f64(&v, &v) - want).abs() < 1e-5 * want);
    }
}
