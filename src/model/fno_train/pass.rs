//! The forward and backward pass of one shard of samples (see the parent module's equations).

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, Array4, ArrayView1, ArrayView2, ArrayView4, ArrayViewMut1, ArrayViewMut2, Axis, s};

use super::super::fno_cpu::{erf, gelu_f32};
use super::spectral::{self, Basis};
use super::{
    Dims, EMB_HIDDEN_B, EMB_HIDDEN_W, EMB_OUT_B, EMB_OUT_W, GradBatch, LIFT_B, LIFT_TIME, LIFT_W, block_slot, proj_slot,
};
use crate::model::ModelError;
use crate::model::flat::Slot;

/// `GELU'(x) = Φ(x) + x φ(x)`.
#[inline(always)]
fn gelu_grad(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)) + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// What the output's cotangent is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Head {
    /// `d out = scale (out − target)` and the loss sum `Σ (out − target)²`.
    Mse { scale: f32 },
    /// `d out = target` (a vector–Jacobian product).
    Cotangent,
}

/// The weights of one call, as views of the flat parameter buffer.
pub(super) struct Net<'a> {
    d: Dims,
    slots: &'a [Slot],
    theta: &'a [f32],
    omega: &'a [f32],
    basis: &'a Basis,
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
    ) -> Result<Self, ModelError> {
        let (w, k, r2, m2) = (d.w, d.k(), 2 * d.m1, d.m2);
        let wt = (0..d.layers)
            .map(|l| {
                let src = &theta[slots[block_slot(l, 0)].range()];
                // Burn's layout [2, Ci, Co, 2 m1, m2] → [2, K = (kx, r), Ci, Co].
                let mut out = Array4::<f32>::zeros((2, k, w, w));
                for p in 0..2 {
                    for i in 0..w {
                        for o in 0..w {
                            let base = ((p * w + i) * w + o) * r2 * m2;
                            for r in 0..r2 {
                                for kx in 0..m2 {
                                    out[[p, kx * r2 + r, i, o]] = src[base + r * m2 + kx];
                                }
                            }
                        }
                    }
                }
                out
            })
            .collect();
        Ok(Self { d: *d, slots, theta, omega, basis, wt })
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
        let mut grad = vec![0.0_f32; total];

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
        let mut inp = Array3::<f32>::zeros((bs, cl, hw));
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
        let mut z0 = Array3::<f32>::zeros((bs, width, hw));
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
            let mut v = Array3::<f32>::zeros((bs, width, hw));
            for i in 0..bs {
                let mut vi = v.index_axis_mut(Axis(0), i);
                general_mat_mul(1.0, &pw, &z.index_axis(Axis(0), i), 0.0, &mut vi);
                for (c, mut row) in vi.axis_iter_mut(Axis(0)).enumerate() {
                    let add = pb[c];
                    row.mapv_inplace(|x| x + add);
                }
            }
            let mut xm = Array4::<f32>::zeros((d.k(), 2, bs, width));
            spectral::forward(self.basis, self.wt[l].view(), z.view(), v.view_mut(), &mut xm);
            let film = &films[l];
            let activate = l + 1 < layers;
            let mut next = Array3::<f32>::zeros((bs, width, hw));
            for i in 0..bs {
                for c in 0..width {
                    let (g, bt) = (1.0 + film[[i, c]], film[[i, width + c]]);
                    let src = v.slice(s![i, c, ..]);
                    let mut dst = next.slice_mut(s![i, c, ..]);
                    for (o, &x) in dst.iter_mut().zip(src.iter()) {
                        let y = x * g + bt;
                        *o = if activate { gelu_f32(y) } else { y };
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
        let mut dz = Array3::<f32>::zeros((bs, width, hw));
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
            g.zip_mut_with(&hid, |gv, &hv| *gv = gelu_f32(hv));
            general_mat_mul(1.0, &q2, &g, 0.0, &mut out);
            let target =
                ArrayView2::from_shape((co, hw), &batch.target[b * co * hw..(b + 1) * co * hw]).map_err(shape_err)?;
            for ((c, mut row), trow) in out.axis_iter_mut(Axis(0)).enumerate().zip(target.axis_iter(Axis(0))) {
                let bias = q2b[c];
                for (o, &u) in row.iter_mut().zip(trow.iter()) {
                    let v = *o + bias;
                    *o = match head {
                        Head::Mse { scale } => {
                            let diff = v - u;
                            loss_sum += f64::from(diff) * f64::from(diff);
                            scale * diff
                        }
                        Head::Cotangent => u,
                    };
                }
            }
            // `out` now holds d out.
            add_rowsum(&mut grad, &self.slots[proj_slot(layers, 3)], out.view());
            gemm_into(&mut grad, &self.slots[proj_slot(layers, 2)], out.view(), g.t(), 1.0)?;
            general_mat_mul(1.0, &q2.t(), &out, 0.0, &mut dg);
            dg.zip_mut_with(&hid, |x, &hv| *x *= gelu_grad(hv));
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
                    let (mut dgam, mut dbet) = (0.0_f64, 0.0_f64);
                    let vrow = v.slice(s![i, c, ..]);
                    let mut drow = dz.slice_mut(s![i, c, ..]);
                    for (dv, &x) in drow.iter_mut().zip(vrow.iter()) {
                        let dy = if activate { *dv * gelu_grad(x * gm + bt) } else { *dv };
                        dgam += f64::from(dy) * f64::from(x);
                        dbet += f64::from(dy);
                        *dv = dy * gm;
                    }
                    dfilms[l][[i, c]] = dgam as f32;
                    dfilms[l][[i, width + c]] = dbet as f32;
                }
            }
            let pw = self.mat(block_slot(l, 1))?;
            let z = &zs[l];
            let mut dz_prev = Array3::<f32>::zeros((bs, width, hw));
            for i in 0..bs {
                let dvi = dz.index_axis(Axis(0), i);
                add_rowsum(&mut grad, &self.slots[block_slot(l, 2)], dvi);
                gemm_into(&mut grad, &self.slots[block_slot(l, 1)], dvi, z.index_axis(Axis(0), i).t(), 1.0)?;
                let mut dzi = dz_prev.index_axis_mut(Axis(0), i);
                general_mat_mul(1.0, &pw.t(), &dvi, 0.0, &mut dzi);
            }
            let mut dwt = Array4::<f32>::zeros((2, d.k(), width, width));
            spectral::backward(self.basis, self.wt[l].view(), &xms[l], dz.view(), dz_prev.view_mut(), &mut dwt);
            scatter_spectral(&mut grad, &self.slots[block_slot(l, 0)], &dwt, &d);
            dz = dz_prev;
        }

        // Lifting: dP, dp, d(lift_time) and the input cotangent.
        let mut dlt = Array2::<f32>::zeros((bs, width));
        let mut dx = if want_dx { vec![0.0_f32; bs * d.c * hw] } else { Vec::new() };
        for i in 0..bs {
            let dzi = dz.index_axis(Axis(0), i);
            for (c, row) in dzi.axis_iter(Axis(0)).enumerate() {
                dlt[[i, c]] = row.iter().map(|&x| f64::from(x)).sum::<f64>() as f32;
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
        Ok((loss_sum, grad, dx))
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
        *g += row.iter().map(|&x| f64::from(x)).sum::<f64>() as f32;
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
    let dwt: ArrayView4<f32> = dwt.view();
    for p in 0..2 {
        for i in 0..w {
            for o in 0..w {
                let base = ((p * w + i) * w + o) * r2 * m2;
                for r in 0..r2 {
                    for kx in 0..m2 {
                        g[base + r * m2 + kx] += dwt[[p, kx * r2 + r, i, o]];
                    }
                }
            }
        }
    }
}
