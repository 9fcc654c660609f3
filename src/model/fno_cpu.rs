//! A CPU inference engine for a trained [`Fno`]: the same function, evaluated with ndarray and
//! fused loops instead of burn tensor operations.
//!
//! Sampling calls the network dozens of times on large batches without gradients. On burn's CPU
//! backend each tensor operation is a separate pass over memory, most element-wise ones on one
//! thread, and the FNO's DFT products need permuted copies; the network's arithmetic is a small
//! part of the time. This engine keeps the weights as `f32` ndarray matrices and evaluates, per
//! field and in parallel over fields:
//!
//! - pointwise maps as one matrix product per sample (`[out, in] · [in, H W]`);
//! - the spectral convolution as the same four DFT products as [`SpectralConv2d`]
//!   ([`dft_matrices`]), on strided views instead of permuted copies, with the inverse x-DFT
//!   accumulated straight into the pointwise output;
//! - FiLM and GELU fused in one pass, GELU with a rational `erf` (Eigen's approximation, max
//!   error 2.4e-7: f32 round-off).
//!
//! The result equals [`Fno::forward`] to f32 round-off (tested to 1e-5 relative), on any grid.
//! The time embedding, FiLM and lifting-time vectors (`[B, E]`-sized) are computed by the burn
//! modules themselves. The engine has no autodiff; use [`Fno::forward`] for training and
//! likelihoods.
//!
//! [`SpectralConv2d`]: super::SpectralConv2d

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use burn::tensor::activation::gelu;
use burn::tensor::{Tensor, TensorData};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayViewMut2, Axis, s};
use rayon::prelude::*;

use super::mlp::broadcast_time;
use super::spectral_conv::dft_matrices;
use super::{Fno, ModelError, Pointwise};

/// A pointwise map `y = W x + b` over channels.
#[derive(Debug, Clone)]
struct Dense {
    /// `[out, in]`.
    weight: Array2<f32>,
    /// `[out]`.
    bias: Array1<f32>,
}

impl Dense {
    fn of(p: &Pointwise) -> Result<Self, ModelError> {
        let weight = p.weight.val();
        let [o, i] = weight.dims();
        Ok(Self {
            weight: Array2::from_shape_vec((o, i), values(weight)?).map_err(shape_error)?,
            bias: Array1::from_vec(values(p.bias.val())?),
        })
    }

    /// `out = W x + b` for one sample, `x: [in, HW]`, `out: [out, HW]`.
    fn apply(&self, x: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
        general_mat_mul(1.0, &self.weight, &x, 0.0, &mut out);
        for (mut row, b) in out.axis_iter_mut(Axis(0)).zip(&self.bias) {
            row.mapv_inplace(|v| v + b);
        }
    }
}

/// The DFT matrices of one grid, split into the blocks the strided products use.
#[derive(Debug)]
struct Basis {
    /// `[W, 2 m2]`.
    fx: Array2<f32>,
    /// `[H, 4 m1]`: the rows of `fy` that multiply real parts, and those that multiply imaginary parts.
    fy_re: Array2<f32>,
    fy_im: Array2<f32>,
    /// `[4 m1, 2 H]`.
    gy: Array2<f32>,
    /// `[m2, W]`: the rows of `gx` for real and imaginary parts.
    gx_re: Array2<f32>,
    gx_im: Array2<f32>,
    /// Grid features `[channels, H W]`, if the network appends them.
    grid: Option<Array2<f32>>,
}

/// One Fourier layer's weights.
#[derive(Debug)]
struct Block {
    pointwise: Dense,
    /// `[K, 2 Ci, 2 Co]` real block form of the complex weights, per mode `K = (kx, r)`.
    mixing: Array3<f32>,
}

/// A trained [`Fno`] prepared for fast inference on the CPU; see the module docs.
#[derive(Debug)]
pub struct FnoCpu<'a> {
    fno: &'a Fno,
    lift: Dense,
    blocks: Vec<Block>,
    project_hidden: Dense,
    project_out: Dense,
    bases: Mutex<HashMap<(usize, usize), Arc<Basis>>>,
}

fn shape_error(e: ndarray::ShapeError) -> ModelError {
    ModelError::shape("weights", e.to_string(), &[])
}

fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, ModelError> {
    let dims = t.dims();
    t.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|_| ModelError::shape("weights", "f32 data", &dims))
}

fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// `erf(x)` in f32 by Eigen's rational approximation (odd degree 13 over even degree 8, clamped
/// to `|x| ≤ 4`, beyond which `erf` is ±1 in f32).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p - 2.101_024e-6;
    p = x2 * p - 5.692_506_4e-5;
    p = x2 * p - 7.349_906_3e-4;
    p = x2 * p - 2.954_600_1e-3;
    p = x2 * p - 1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 - 2.133_740_6e-4;
    q = x2 * q - 1.682_827e-3;
    q = x2 * q - 7.373_329_2e-3;
    q = x2 * q - 1.426_474e-2;
    x * p / q
}

#[inline(always)]
pub(crate) fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

impl<'a> FnoCpu<'a> {
    /// Copies the weights of `fno` (the burn modules stay in use for the `[B, E]`-sized time
    /// conditioning).
    ///
    /// # Errors
    /// [`ModelError::Shape`] if a weight cannot be read as f32 data.
    pub fn new(fno: &'a Fno) -> Result<Self, ModelError> {
        let blocks = fno
            .blocks
            .iter()
            .map(|b| {
                let mixing = b.spectral.mixing_matrix();
                let dims = mixing.dims();
                Ok(Block {
                    pointwise: Dense::of(&b.pointwise)?,
                    mixing: Array3::from_shape_vec((dims[0], dims[1], dims[2]), values(mixing)?)
                        .map_err(shape_error)?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(Self {
            fno,
            lift: Dense::of(&fno.lift)?,
            blocks,
            project_hidden: Dense::of(&fno.project_hidden)?,
            project_out: Dense::of(&fno.project_out)?,
            bases: Mutex::new(HashMap::new()),
        })
    }

    /// The network this engine evaluates.
    pub fn fno(&self) -> &Fno {
        self.fno
    }

    fn basis(&self, h: usize, w: usize) -> Result<Arc<Basis>, ModelError> {
        if let Some(b) = self.bases.lock().ok().and_then(|m| m.get(&(h, w)).cloned()) {
            return Ok(b);
        }
        let (m1, m2) = self.fno.modes();
        let [fx, fy, gy, gx] = dft_matrices((m1, m2), (h, w), (h, w))?;
        let fy = Array2::from_shape_vec((2 * h, 4 * m1), to_f32(fy)).map_err(shape_error)?;
        let gx = Array2::from_shape_vec((2 * m2, w), to_f32(gx)).map_err(shape_error)?;
        let device = burn::tensor::Device::default();
        let grid = match self.fno.grid_encoding() {
            Some(enc) => {
                let f = enc.features(h, w, &device);
                Some(Array2::from_shape_vec((enc.channels(), h * w), values(f)?).map_err(shape_error)?)
            }
            None => None,
        };
        let basis = Arc::new(Basis {
            fx: Array2::from_shape_vec((w, 2 * m2), to_f32(fx)).map_err(shape_error)?,
            fy_re: fy.slice(s![..h, ..]).to_owned(),
            fy_im: fy.slice(s![h.., ..]).to_owned(),
            gy: Array2::from_shape_vec((4 * m1, 2 * h), to_f32(gy)).map_err(shape_error)?,
            gx_re: gx.slice(s![..m2, ..]).to_owned(),
            gx_im: gx.slice(s![m2.., ..]).to_owned(),
            grid,
        });
        if let Ok(mut m) = self.bases.lock() {
            m.insert((h, w), basis.clone());
        }
        Ok(basis)
    }

    /// The velocity, as [`Fno::forward`] computes it.
    ///
    /// # Shapes
    /// As [`Fno::forward`].
    ///
    /// # Errors
    /// As [`Fno::forward`].
    pub fn forward(
        &self,
        x: Tensor<4>,
        t: Tensor<1>,
        cond: Option<Tensor<4>>,
        params: Option<Tensor<2>>,
    ) -> Result<Tensor<4>, ModelError> {
        let fno = self.fno;
        let [b, c, h, w] = fno.check_inputs(x.dims(), cond.as_ref())?;
        let nc = fno.cond_channels();
        let device = x.device();
        let t = broadcast_time(t, b)?;
        let e = gelu(fno.embedding.forward(t, params)?);
        let width = fno.width();
        let lift_time =
            Array2::from_shape_vec((b, width), values(fno.lift_time.forward(e.clone()))?).map_err(shape_error)?;
        let films = fno
            .blocks
            .iter()
            .map(|blk| {
                Array2::from_shape_vec((b, 2 * width), values(blk.film.forward(e.clone()))?).map_err(shape_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let basis = self.basis(h, w)?;
        let hw = h * w;

        // Lifting input [B, Cl, HW]: state, conditioning, grid features.
        let x = Array3::from_shape_vec((b, c, hw), values(x)?).map_err(shape_error)?;
        let cond = match cond {
            Some(cv) => Some(Array3::from_shape_vec((b, nc, hw), values(cv)?).map_err(shape_error)?),
            None => None,
        };
        let grid_ch = basis.grid.as_ref().map_or(0, |g| g.nrows());
        let cl = c + nc + grid_ch;
        let mut z = Array3::<f32>::zeros((b, width, hw));
        z.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(i, mut zi)| {
            let mut input = Array2::<f32>::zeros((cl, hw));
            input.slice_mut(s![..c, ..]).assign(&x.index_axis(Axis(0), i));
            if let Some(cv) = &cond {
                input.slice_mut(s![c..c + nc, ..]).assign(&cv.index_axis(Axis(0), i));
            }
            if let Some(g) = &basis.grid {
                input.slice_mut(s![c + nc.., ..]).assign(g);
            }
            self.lift.apply(input.view(), zi.view_mut());
            for (mut row, lt) in zi.axis_iter_mut(Axis(0)).zip(lift_time.row(i)) {
                row.mapv_inplace(|v| v + lt);
            }
        });

        let last = self.blocks.len().saturating_sub(1);
        let mut v = Array3::<f32>::zeros((b, width, hw));
        for (l, (block, film)) in self.blocks.iter().zip(&films).enumerate() {
            v.axis_iter_mut(Axis(0))
                .into_par_iter()
                .zip(z.axis_iter(Axis(0)).into_par_iter())
                .for_each(|(vi, zi)| block.pointwise.apply(zi, vi));
            self.spectral(&z, &mut v, block, &basis, (h, w))?;
            let activate = l < last;
            z.axis_iter_mut(Axis(0)).into_par_iter().zip(v.axis_iter(Axis(0)).into_par_iter()).enumerate().for_each(
                |(i, (mut zi, vi))| {
                    for (ch, (mut zr, vr)) in zi.axis_iter_mut(Axis(0)).zip(vi.axis_iter(Axis(0))).enumerate() {
                        let (gamma, beta) = (1.0 + film[[i, ch]], film[[i, width + ch]]);
                        for (zo, &vv) in zr.iter_mut().zip(vr.iter()) {
                            let y = vv * gamma + beta;
                            *zo = if activate { gelu_f32(y) } else { y };
                        }
                    }
                },
            );
        }

        let co = fno.out_channels();
        let p = self.project_hidden.weight.nrows();
        let mut out = Array3::<f32>::zeros((b, co, hw));
        out.axis_iter_mut(Axis(0)).into_par_iter().zip(z.axis_iter(Axis(0)).into_par_iter()).for_each(|(oi, zi)| {
            let mut hidden = Array2::<f32>::zeros((p, hw));
            self.project_hidden.apply(zi, hidden.view_mut());
            hidden.mapv_inplace(gelu_f32);
            self.project_out.apply(hidden.view(), oi);
        });
        if let Some((lx, ly)) = fno.leray_domain() {
            // The output Leray layer, in f64 with the FFT (the burn layer's DFT products agree to
            // f32 round-off).
            let grid = fieldflow_pde::Grid2d::new(w, h, lx, ly)
                .map_err(|e| ModelError::config("leray_domain", e.to_string()))?;
            let mut out64 = out.mapv(f64::from).into_shape_with_order((b, co, h, w)).map_err(shape_error)?;
            fieldflow_pde::leray::leray_batch(&grid, out64.view_mut())
                .map_err(|e| ModelError::config("leray_domain", e.to_string()))?;
            out = out64.mapv(|v| v as f32).into_shape_with_order((b, co, hw)).map_err(shape_error)?;
        }
        let data = TensorData::new(out.into_raw_vec_and_offset().0, [b, co, h, w]);
        Ok(Tensor::from_data(data, &device))
    }

    /// `v += K z` for every sample: the spectral convolution of block `block` on an `(h, w)` grid.
    fn spectral(
        &self,
        z: &Array3<f32>,
        v: &mut Array3<f32>,
        block: &Block,
        basis: &Basis,
        (h, w): (usize, usize),
    ) -> Result<(), ModelError> {
        let (b, ci, _) = z.dim();
        let co = v.dim().1;
        let (m1, m2) = self.fno.modes();
        let (r2, k) = (2 * m1, 2 * m1 * m2);
        // Forward DFTs per field: X̂ [m2, 4 m1] (columns (re/im, r)).
        let zf = z.view().into_shape_with_order((b * ci, h, w)).map_err(shape_error)?;
        let mut xh = Array3::<f32>::zeros((b * ci, m2, 2 * r2));
        xh.axis_iter_mut(Axis(0)).into_par_iter().zip(zf.axis_iter(Axis(0)).into_par_iter()).for_each(
            |(mut xo, field)| {
                let mut a = Array2::<f32>::zeros((h, 2 * m2));
                general_mat_mul(1.0, &field, &basis.fx, 0.0, &mut a);
                general_mat_mul(1.0, &a.slice(s![.., ..m2]).t(), &basis.fy_re, 0.0, &mut xo);
                general_mat_mul(1.0, &a.slice(s![.., m2..]).t(), &basis.fy_im, 1.0, &mut xo);
            },
        );
        // Mixing per mode: [B, 2 Ci] · [2 Ci, 2 Co].
        let mut yk = Array3::<f32>::zeros((k, b, 2 * co));
        yk.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(kk, mut yo)| {
            let (kx, r) = (kk / r2, kk % r2);
            let xk = Array2::from_shape_fn((b, 2 * ci), |(bi, q)| {
                let (p, i) = (q / ci, q % ci);
                xh[[bi * ci + i, kx, p * r2 + r]]
            });
            general_mat_mul(1.0, &xk, &block.mixing.index_axis(Axis(0), kk), 0.0, &mut yo);
        });
        // Inverse DFTs per output field, accumulated into v.
        let mut vf = v.view_mut().into_shape_with_order((b * co, h, w)).map_err(shape_error)?;
        vf.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(n, mut out)| {
            let (bi, o) = (n / co, n % co);
            let yn = Array2::from_shape_fn((m2, 2 * r2), |(kx, q)| {
                let (p, r) = (q / r2, q % r2);
                yk[[kx * r2 + r, bi, p * co + o]]
            });
            let mut zn = Array2::<f32>::zeros((m2, 2 * h));
            general_mat_mul(1.0, &yn, &basis.gy, 0.0, &mut zn);
            general_mat_mul(1.0, &zn.slice(s![.., ..h]).t(), &basis.gx_re, 1.0, &mut out);
            general_mat_mul(1.0, &zn.slice(s![.., h..]).t(), &basis.gx_im, 1.0, &mut out);
        });
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{FnoConfig, GridEncoding};
    use burn::tensor::{Device, Distribution};

    fn max_rel(a: Tensor<4>, b: Tensor<4>) -> f32 {
        let a = a.into_data().try_into_vec::<f32>().unwrap();
        let b = b.into_data().try_into_vec::<f32>().unwrap();
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    #[test]
    fn erf_is_accurate_to_f32_round_off() {
        let worst = (-60_000..=60_000)
            .map(|i| {
                let x = i as f64 * 1e-4;
                (erf(x as f32) as f64 - libm_erf(x)).abs()
            })
            .fold(0.0, f64::max);
        assert!(worst < 5e-7, "max |erf − erf_ref| = {worst:e}");
    }

    /// Reference erf in f64: Taylor series for |x| < 2, the continued fraction of erfc beyond
    /// (both accurate to ~1e-15 there).
    fn libm_erf(x: f64) -> f64 {
        if x.abs() >= 2.0 {
            let a = x.abs();
            let mut k = a;
            for n in (1..200).rev() {
                k = a + (n as f64 / 2.0) / k;
            }
            return x.signum() * (1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * k));
        }
        let (mut term, mut sum, x2) = (x, x, x * x);
        for n in 1..200 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn matches_the_burn_forward_on_several_grids() {
        let device = Device::default();
        for (encoding, cond, grids) in
            [(GridEncoding::Periodic, 0, vec![(16, 16), (24, 20), (32, 32)]), (GridEncoding::Linear, 1, vec![(16, 12)])]
        {
            let fno = FnoConfig::new(2, 2)
                .with_width(8)
                .with_modes((5, 4))
                .with_layers(3)
                .with_projection_width(16)
                .with_cond_channels(cond)
                .with_grid_encoding(encoding)
                .with_seed(3)
                .init(&device)
                .unwrap();
            let engine = FnoCpu::new(&fno).unwrap();
            for (h, w) in grids {
                let x = Tensor::<4>::random([3, 2, h, w], Distribution::Normal(0.0, 1.0), &device);
                let c =
                    (cond > 0).then(|| Tensor::<4>::random([3, cond, h, w], Distribution::Normal(0.0, 1.0), &device));
                let t = Tensor::<1>::from_data(TensorData::new(vec![0.1f32, 0.5, 0.9], [3]), &device);
                let want = fno.forward(x.clone(), t.clone(), c.clone(), None).unwrap();
                let got = engine.forward(x, t, c, None).unwrap();
                assert_eq!(got.dims(), want.dims());
                let err = max_rel(got, want);
                assert!(err < 1e-5, "{encoding:?} {h}×{w}: max relative difference {err:e}");
            }
        }
    }

    #[test]
    fn matches_the_burn_forward_with_the_leray_output_layer() {
        let device = Device::default();
        let fno = FnoConfig::new(2, 2)
            .with_width(8)
            .with_modes((4, 4))
            .with_layers(2)
            .with_projection_width(16)
            .with_leray_domain(Some((1.0, 2.0)))
            .init(&device)
            .unwrap();
        let engine = FnoCpu::new(&fno).unwrap();
        let x = Tensor::<4>::random([2, 2, 16, 12], Distribution::Normal(0.0, 1.0), &device);
        let t = Tensor::<1>::full([2], 0.3, &device);
        let want = fno.forward(x.clone(), t.clone(), None, None).unwrap();
        let got = engine.forward(x, t, None, None).unwrap();
        let err = max_rel(got.clone(), want);
        assert!(err < 1e-5, "max relative difference {err:e}");
        let v: Vec<f64> = got.into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
        let v = ndarray::Array4::from_shape_vec((2, 2, 16, 12), v).unwrap();
        let grid = fieldflow_pde::Grid2d::new(12, 16, 1.0, 2.0).unwrap();
        for s in v.axis_iter(Axis(0)) {
            let r = fieldflow_pde::residuals::divergence_residual(&grid, s).unwrap();
            assert!(r.relative < 1e-5, "relative divergence {:e}", r.relative);
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let device = Device::default();
        let fno = FnoConfig::new(2, 2).with_width(4).with_modes((2, 2)).with_layers(1).init(&device).unwrap();
        let engine = FnoCpu::new(&fno).unwrap();
        let t = Tensor::<1>::full([1], 0.5, &device);
        let x = Tensor::<4>::zeros([1, 3, 8, 8], &device);
        assert!(matches!(engine.forward(x, t.clone(), None, None), Err(ModelError::Shape { .. })));
        let x = Tensor::<4>::zeros([1, 2, 8, 8], &device);
        let c = Tensor::<4>::zeros([1, 1, 8, 8], &device);
        assert!(matches!(engine.forward(x, t, Some(c), None), Err(ModelError::Conditioning { .. })));
    }
}
