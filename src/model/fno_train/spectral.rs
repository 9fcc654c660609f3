//! The spectral convolution of one shard of fields and its adjoint, as the DFT-matrix products of
//! [`crate::model::SpectralConv2d`] batched over channels.
//!
//! Per field `b` with channels stacked as rows (`Z_b: [Ci H, W]`):
//!
//! ```text
//! A   = Z_b · Fx                                [Ci H, 2 m2]      x-DFT of every channel
//! X̂ᵀ  = Fyᵀ · A'                                [4 m1, Ci m2]     y-DFT; A' = A with rows (re/im, y)
//! Ŷ_k = X̂_k · W_k   (complex, per mode k)       [B, Co]           mode-wise mixing over the shard
//! Zᵀ  = Gyᵀ · Ŷᵀ                                [2 H, Co m2]      inverse y-DFT
//! V_b += Z' · Gx                                [Co H, W]         inverse real x-DFT; Z' = Zᵀ regrouped
//! ```
//!
//! The adjoint runs the same products transposed in reverse order: `dZ' = dV Gxᵀ`, `dŶᵀ = Gy dZᵀ`,
//! `dX̂_k = dŶ_k W_kᴴ`-style real blocks, `dW_k = X̂_kᵀ dŶ_k`, `dA' = Fy dX̂ᵀ`, `dZ_b += dA Fxᵀ`.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array4, ArrayView3, ArrayView4, ArrayViewMut3, Axis};

/// DFT matrices of one grid (see [`crate::model::SpectralBasis`] for their entries) and its grid
/// features.
#[derive(Debug)]
pub(super) struct Basis {
    pub h: usize,
    pub w: usize,
    pub m1: usize,
    pub m2: usize,
    /// `[W, 2 m2]`.
    pub fx: Array2<f32>,
    /// `[2H, 4 m1]`.
    pub fy: Array2<f32>,
    /// `[4 m1, 2H]`.
    pub gy: Array2<f32>,
    /// `[2 m2, W]`.
    pub gx: Array2<f32>,
    /// Grid features `[channels, H W]`, if the network appends them.
    pub grid: Option<Array2<f32>>,
}

impl Basis {
    fn r2(&self) -> usize {
        2 * self.m1
    }

    /// Number of kept modes `K = 2 m1 m2`.
    pub fn modes(&self) -> usize {
        2 * self.m1 * self.m2
    }
}

/// `v += K z` for the fields of a shard; the mode coefficients `X̂` are kept in `xm`.
///
/// # Shapes
/// - wt: `[2 (re/im), K, Ci, Co]`, z: `[B, Ci, H W]`, v: `[B, Co, H W]`, xm: `[K, 2, B, Ci]`
pub(super) fn forward(
    basis: &Basis,
    wt: ArrayView4<f32>,
    z: ArrayView3<f32>,
    mut v: ArrayViewMut3<f32>,
    xm: &mut Array4<f32>,
) {
    let (bs, ci, _) = z.dim();
    let co = v.dim().1;
    let (h, w, m2, r2) = (basis.h, basis.w, basis.m2, basis.r2());
    let mut a = Array2::<f32>::zeros((ci * h, 2 * m2));
    let mut ap = Array2::<f32>::zeros((2 * h, ci * m2));
    let mut xt = Array2::<f32>::zeros((2 * r2, ci * m2));
    for b in 0..bs {
        let Ok(zb) = z.index_axis(Axis(0), b).into_shape_with_order((ci * h, w)) else { continue };
        general_mat_mul(1.0, &zb, &basis.fx, 0.0, &mut a);
        regroup(&a, &mut ap, ci, h, m2);
        general_mat_mul(1.0, &basis.fy.t(), &ap, 0.0, &mut xt);
        for q in 0..2 * r2 {
            let (p, r) = (q / r2, q % r2);
            for c in 0..ci {
                for kx in 0..m2 {
                    xm[[kx * r2 + r, p, b, c]] = xt[[q, c * m2 + kx]];
                }
            }
        }
    }
    let mut ym = Array4::<f32>::zeros((basis.modes(), 2, bs, co));
    mix(wt, xm, &mut ym);
    let mut yt = Array2::<f32>::zeros((2 * r2, co * m2));
    let mut zt = Array2::<f32>::zeros((2 * h, co * m2));
    let mut bm = Array2::<f32>::zeros((co * h, 2 * m2));
    for b in 0..bs {
        for q in 0..2 * r2 {
            let (p, r) = (q / r2, q % r2);
            for o in 0..co {
                for kx in 0..m2 {
                    yt[[q, o * m2 + kx]] = ym[[kx * r2 + r, p, b, o]];
                }
            }
        }
        general_mat_mul(1.0, &basis.gy.t(), &yt, 0.0, &mut zt);
        ungroup(&zt, &mut bm, co, h, m2);
        let Ok(mut vb) = v.index_axis_mut(Axis(0), b).into_shape_with_order((co * h, w)) else { continue };
        general_mat_mul(1.0, &bm, &basis.gx, 1.0, &mut vb);
    }
}

/// The adjoint of [`forward`]: `dz += Kᵀ dv` and `dwt += ∂/∂W ⟨dv, K z⟩` (with `xm` from the
/// forward pass).
///
/// # Shapes
/// As [`forward`], with dv like v and dz, dwt like z, wt.
pub(super) fn backward(
    basis: &Basis,
    wt: ArrayView4<f32>,
    xm: &Array4<f32>,
    dv: ArrayView3<f32>,
    mut dz: ArrayViewMut3<f32>,
    dwt: &mut Array4<f32>,
) {
    let (bs, co, _) = dv.dim();
    let ci = dz.dim().1;
    let (h, w, m2, r2) = (basis.h, basis.w, basis.m2, basis.r2());
    let mut db = Array2::<f32>::zeros((co * h, 2 * m2));
    let mut dzt = Array2::<f32>::zeros((2 * h, co * m2));
    let mut dyt = Array2::<f32>::zeros((2 * r2, co * m2));
    let mut dym = Array4::<f32>::zeros((basis.modes(), 2, bs, co));
    for b in 0..bs {
        let Ok(dvb) = dv.index_axis(Axis(0), b).into_shape_with_order((co * h, w)) else { continue };
        general_mat_mul(1.0, &dvb, &basis.gx.t(), 0.0, &mut db);
        regroup(&db, &mut dzt, co, h, m2);
        general_mat_mul(1.0, &basis.gy, &dzt, 0.0, &mut dyt);
        for q in 0..2 * r2 {
            let (p, r) = (q / r2, q % r2);
            for o in 0..co {
                for kx in 0..m2 {
                    dym[[kx * r2 + r, p, b, o]] = dyt[[q, o * m2 + kx]];
                }
            }
        }
    }
    let mut dxm = Array4::<f32>::zeros((basis.modes(), 2, bs, ci));
    mix_adjoint(wt, xm, &dym, &mut dxm, dwt);
    let mut dxt = Array2::<f32>::zeros((2 * r2, ci * m2));
    let mut dap = Array2::<f32>::zeros((2 * h, ci * m2));
    let mut da = Array2::<f32>::zeros((ci * h, 2 * m2));
    for b in 0..bs {
        for q in 0..2 * r2 {
            let (p, r) = (q / r2, q % r2);
            for c in 0..ci {
                for kx in 0..m2 {
                    dxt[[q, c * m2 + kx]] = dxm[[kx * r2 + r, p, b, c]];
                }
            }
        }
        general_mat_mul(1.0, &basis.fy, &dxt, 0.0, &mut dap);
        ungroup(&dap, &mut da, ci, h, m2);
        let Ok(mut dzb) = dz.index_axis_mut(Axis(0), b).into_shape_with_order((ci * h, w)) else { continue };
        general_mat_mul(1.0, &da, &basis.fx.t(), 1.0, &mut dzb);
    }
}

/// `[C H, 2 m2]` with rows `(c, y)`, columns `(re/im, kx)` → `[2 H, C m2]` with rows `(re/im, y)`,
/// columns `(c, kx)`.
fn regroup(src: &Array2<f32>, dst: &mut Array2<f32>, c: usize, h: usize, m2: usize) {
    for ch in 0..c {
        for y in 0..h {
            let row = src.row(ch * h + y);
            for p in 0..2 {
                for kx in 0..m2 {
                    dst[[p * h + y, ch * m2 + kx]] = row[p * m2 + kx];
                }
            }
        }
    }
}

/// The inverse of [`regroup`].
fn ungroup(src: &Array2<f32>, dst: &mut Array2<f32>, c: usize, h: usize, m2: usize) {
    for ch in 0..c {
        for y in 0..h {
            let mut row = dst.row_mut(ch * h + y);
            for p in 0..2 {
                for kx in 0..m2 {
                    row[p * m2 + kx] = src[[p * h + y, ch * m2 + kx]];
                }
            }
        }
    }
}

/// `Ŷ_k = X̂_k W_k` in complex arithmetic with real blocks: `Yr = Xr Wr − Xi Wi`,
/// `Yi = Xr Wi + Xi Wr`.
fn mix(wt: ArrayView4<f32>, xm: &Array4<f32>, ym: &mut Array4<f32>) {
    for k in 0..xm.dim().0 {
        let (xr, xi) = (xm.slice(ndarray::s![k, 0, .., ..]), xm.slice(ndarray::s![k, 1, .., ..]));
        let (wr, wi) = (wt.slice(ndarray::s![0, k, .., ..]), wt.slice(ndarray::s![1, k, .., ..]));
        let mut yk = ym.index_axis_mut(Axis(0), k);
        let (mut yr, mut yi) = yk.multi_slice_mut((ndarray::s![0, .., ..], ndarray::s![1, .., ..]));
        general_mat_mul(1.0, &xr, &wr, 0.0, &mut yr);
        general_mat_mul(-1.0, &xi, &wi, 1.0, &mut yr);
        general_mat_mul(1.0, &xr, &wi, 0.0, &mut yi);
        general_mat_mul(1.0, &xi, &wr, 1.0, &mut yi);
    }
}

/// The adjoint of [`mix`]: `dXr = dYr Wrᵀ + dYi Wiᵀ`, `dXi = dYi Wrᵀ − dYr Wiᵀ`,
/// `dWr += Xrᵀ dYr + Xiᵀ dYi`, `dWi += Xrᵀ dYi − Xiᵀ dYr`.
fn mix_adjoint(wt: ArrayView4<f32>, xm: &Array4<f32>, dym: &Array4<f32>, dxm: &mut Array4<f32>, dwt: &mut Array4<f32>) {
    use ndarray::s;
    for k in 0..xm.dim().0 {
        let (xr, xi) = (xm.slice(s![k, 0, .., ..]), xm.slice(s![k, 1, .., ..]));
        let (dyr, dyi) = (dym.slice(s![k, 0, .., ..]), dym.slice(s![k, 1, .., ..]));
        let (wr, wi) = (wt.slice(s![0, k, .., ..]), wt.slice(s![1, k, .., ..]));
        let mut dxk = dxm.index_axis_mut(Axis(0), k);
        let (mut dxr, mut dxi) = dxk.multi_slice_mut((s![0, .., ..], s![1, .., ..]));
        general_mat_mul(1.0, &dyr, &wr.t(), 0.0, &mut dxr);
        general_mat_mul(1.0, &dyi, &wi.t(), 1.0, &mut dxr);
        general_mat_mul(1.0, &dyi, &wr.t(), 0.0, &mut dxi);
        general_mat_mul(-1.0, &dyr, &wi.t(), 1.0, &mut dxi);
        let (mut dwr, mut dwi) = dwt.multi_slice_mut((s![0, k, .., ..], s![1, k, .., ..]));
        general_mat_mul(1.0, &xr.t(), &dyr, 1.0, &mut dwr);
        general_mat_mul(1.0, &xi.t(), &dyi, 1.0, &mut dwr);
        general_mat_mul(1.0, &xr.t(), &dyi, 1.0, &mut dwi);
        general_mat_mul(-1.0, &xi.t(), &dyr, 1.0, &mut dwi);
    }
}
