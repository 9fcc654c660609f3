//! A Leray projection layer: makes a network's two-channel output `(u, v)` divergence-free on a
//! periodic grid, differentiably, so that the velocity field itself (not only the samples after
//! a projection) lies on the divergence-free subspace.
//!
//! ```text
//! P(k) = I − k kᵀ / |k|²        (modes with |k| = 0 untouched)
//! ```
//!
//! with the derivative wavenumbers `k = 2π m̃ / L` (Nyquist zeroed), exactly as
//! [`fieldflow_pde::leray`]. The 2D DFT is written as real matrix products with the full cosine and
//! sine tables (`[W, W]` and `[H, H]`), so the layer runs on every burn backend and burn
//! differentiates it; cost `O(B (H W² + W H²))`, intended for grids up to a few hundred points.

use std::f64::consts::TAU;

use burn::tensor::{Device, Tensor, TensorData};

use super::ModelError;

/// The DFT tables and the projector's symbols for one grid; see the module docs.
#[derive(Debug, Clone)]
pub struct LerayLayer {
    cx: Tensor<3>,
    sx: Tensor<3>,
    cy: Tensor<3>,
    sy: Tensor<3>,
    /// `k_x²/|k|²`, `k_x k_y/|k|²`, `k_y²/|k|²` as `[1, H, W]`.
    pxx: Tensor<3>,
    pxy: Tensor<3>,
    pyy: Tensor<3>,
    shape: (usize, usize),
}

/// Derivative wavenumber of mode `m` of `n` on a period `l` (Nyquist zeroed).
fn deriv_wavenumber(m: usize, n: usize, l: f64) -> f64 {
    if 2 * m == n {
        0.0
    } else if 2 * m < n {
        TAU * m as f64 / l
    } else {
        TAU * (m as f64 - n as f64) / l
    }
}

fn table(n: usize, f: impl Fn(f64) -> f64, device: &Device) -> Tensor<3> {
    let v: Vec<f32> = (0..n * n).map(|i| f(TAU * (((i / n) * (i % n)) % n) as f64 / n as f64) as f32).collect();
    Tensor::from_data(TensorData::new(v, [1, n, n]), device)
}

impl LerayLayer {
    /// The layer for an `h × w` grid of a periodic `lx × ly` domain.
    ///
    /// # Errors
    /// [`ModelError::Shape`] for an empty grid, [`ModelError::InvalidConfig`] for a non-positive
    /// domain length.
    pub fn new(h: usize, w: usize, lx: f64, ly: f64, device: &Device) -> Result<Self, ModelError> {
        if h == 0 || w == 0 {
            return Err(ModelError::shape("grid", "a non-empty grid", &[h, w]));
        }
        if !(lx.is_finite() && lx > 0.0 && ly.is_finite() && ly > 0.0) {
            return Err(ModelError::config("leray_domain", format!("({lx}, {ly}) must be finite and positive")));
        }
        let symbol = |f: &dyn Fn(f64, f64) -> f64| {
            let v: Vec<f32> = (0..h * w)
                .map(|i| {
                    let (ky, kx) = (deriv_wavenumber(i / w, h, ly), deriv_wavenumber(i % w, w, lx));
                    let k2 = kx * kx + ky * ky;
                    if k2 == 0.0 { 0.0 } else { (f(kx, ky) / k2) as f32 }
                })
                .collect();
            Tensor::<3>::from_data(TensorData::new(v, [1, h, w]), device)
        };
        Ok(Self {
            cx: table(w, f64::cos, device),
            sx: table(w, f64::sin, device),
            cy: table(h, f64::cos, device),
            sy: table(h, f64::sin, device),
            pxx: symbol(&|kx, _| kx * kx),
            pxy: symbol(&|kx, ky| kx * ky),
            pyy: symbol(&|_, ky| ky * ky),
            shape: (h, w),
        })
    }

    /// `(Re, Im)` of the unnormalised 2D DFT `Σ f e^{−2πi(ky y + kx x)}` of real fields `[N, H, W]`.
    fn forward_dft(&self, f: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let ar = f.clone().matmul(self.cx.clone());
        let ai = f.matmul(self.sx.clone()).neg();
        let br = self.cy.clone().matmul(ar.clone()) + self.sy.clone().matmul(ai.clone());
        let bi = self.cy.clone().matmul(ai) - self.sy.clone().matmul(ar);
        (br, bi)
    }

    /// The real part of the inverse 2D DFT (divided by `H W`).
    fn inverse_dft(&self, (br, bi): (Tensor<3>, Tensor<3>)) -> Tensor<3> {
        let cr = self.cy.clone().matmul(br.clone()) - self.sy.clone().matmul(bi.clone());
        let ci = self.cy.clone().matmul(bi) + self.sy.clone().matmul(br);
        let (h, w) = self.shape;
        (cr.matmul(self.cx.clone()) - ci.matmul(self.sx.clone())).div_scalar((h * w) as f32)
    }

    /// Projects `(u, v)` onto divergence-free fields.
    ///
    /// # Shapes
    /// - uv: `[B, 2, H, W]` with `(H, W)` the layer's grid
    /// - output: the same
    ///
    /// # Errors
    /// [`ModelError::Shape`] for another shape.
    pub fn forward(&self, uv: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        let dims = uv.dims();
        let [b, c, h, w] = dims;
        if c != 2 || (h, w) != self.shape {
            return Err(ModelError::shape("uv", format!("[B, 2, {}, {}]", self.shape.0, self.shape.1), &dims));
        }
        let u = uv.clone().narrow(1, 0, 1).reshape([b, h, w]);
        let v = uv.narrow(1, 1, 1).reshape([b, h, w]);
        let (ur, ui) = self.forward_dft(u);
        let (vr, vi) = self.forward_dft(v);
        let mix = |p: &Tensor<3>, q: &Tensor<3>, a: &Tensor<3>, bb: &Tensor<3>| {
            a.clone().mul(p.clone()) + bb.clone().mul(q.clone())
        };
        let u_hat =
            (ur.clone() - mix(&self.pxx, &self.pxy, &ur, &vr), ui.clone() - mix(&self.pxx, &self.pxy, &ui, &vi));
        let v_hat =
            (vr.clone() - mix(&self.pxy, &self.pyy, &ur, &vr), vi.clone() - mix(&self.pxy, &self.pyy, &ui, &vi));
        let u = self.inverse_dft(u_hat).reshape([b, 1, h, w]);
        let v = self.inverse_dft(v_hat).reshape([b, 1, h, w]);
        Ok(Tensor::cat(vec![u, v], 1))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use fieldflow_pde::Grid2d;
    use fieldflow_pde::leray::leray_batch;
    use fieldflow_pde::residuals::divergence_residual;
    use ndarray::{Array4, Axis};
    use rand::RngExt;

    fn random(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f64> {
        let mut rng = fieldflow_pde::rng::stream(seed, 0);
        Array4::from_shape_fn(shape, |_| rng.random::<f64>() - 0.5)
    }

    fn to_array(t: Tensor<4>) -> Array4<f64> {
        let dims = t.dims();
        let v: Vec<f64> = t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
        Array4::from_shape_vec((dims[0], dims[1], dims[2], dims[3]), v).unwrap()
    }

    #[test]
    fn matches_the_pde_projection_and_removes_the_divergence() {
        let device = Device::default();
        for (h, w, lx, ly) in [(16, 16, 1.0, 1.0), (12, 20, 2.0, 1.0)] {
            let x = random((3, 2, h, w), 7);
            let t = Tensor::<4>::from_data(
                TensorData::new(x.iter().map(|v| *v as f32).collect::<Vec<_>>(), [3, 2, h, w]),
                &device,
            );
            let layer = LerayLayer::new(h, w, lx, ly, &device).unwrap();
            let got = to_array(layer.forward(t.clone()).unwrap());
            let grid = Grid2d::new(w, h, lx, ly).unwrap();
            let mut want = x.clone();
            leray_batch(&grid, want.view_mut()).unwrap();
            let err = (&got - &want).iter().fold(0.0_f64, |m, d| m.max(d.abs()));
            assert!(err < 1e-5, "{h}×{w}: max |layer − pde| = {err:e}");
            for s in got.axis_iter(Axis(0)) {
                let r = divergence_residual(&grid, s).unwrap();
                assert!(r.relative < 1e-5, "{h}×{w}: relative divergence {:e}", r.relative);
            }
            // Idempotent (to f32 round-off).
            let again = to_array(layer.forward(layer.forward(t).unwrap()).unwrap());
            let err = (&again - &got).iter().fold(0.0_f64, |m, d| m.max(d.abs()));
            assert!(err < 1e-5, "P² ≠ P: {err:e}");
        }
    }

    #[test]
    fn gradient_is_the_projection_itself() {
        // P is self-adjoint, so ∂/∂x Σ (P x)·g = P g.
        let device = Device::default();
        let ad = device.clone().autodiff();
        let (h, w) = (8, 12);
        let g = random((1, 2, h, w), 3);
        let x = random((1, 2, h, w), 4);
        let tensor = |a: &Array4<f64>, d: &Device| {
            Tensor::<4>::from_data(TensorData::new(a.iter().map(|v| *v as f32).collect::<Vec<_>>(), [1, 2, h, w]), d)
        };
        let layer = LerayLayer::new(h, w, 1.0, 1.0, &ad).unwrap();
        let xt = tensor(&x, &ad).require_grad();
        let loss = layer.forward(xt.clone()).unwrap().mul(tensor(&g, &ad)).sum();
        let grads = loss.backward();
        let got = to_array(xt.grad(&grads).unwrap());
        let mut want = g.clone();
        leray_batch(&Grid2d::new(w, h, 1.0, 1.0).unwrap(), want.view_mut()).unwrap();
        let err = (&got - &want).iter().fold(0.0_f64, |m, d| m.max(d.abs()));
        assert!(err < 1e-5, "max |∇ − P g| = {err:e}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        let device = Device::default();
        let layer = LerayLayer::new(8, 8, 1.0, 1.0, &device).unwrap();
        assert!(layer.forward(Tensor::<4>::zeros([1, 3, 8, 8], &device)).is_err());
        assert!(layer.forward(Tensor::<4>::zeros([1, 2, 8, 6], &device)).is_err());
        assert!(LerayLayer::new(8, 8, 0.0, 1.0, &device).is_err());
    }
}
