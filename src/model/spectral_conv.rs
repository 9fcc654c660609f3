//! Spectral convolution, the Fourier layer of an FNO, as truncated DFT-matrix products that work
//! for any grid size.
//!
//! For `h: [B, Cin, H, W]` on the periodic unit square (`x_j = j/W`, `y_i = i/H`):
//!
//! ```text
//! ĥ(ky, kx) = 1/(H W) Σ_{i,j} h(y_i, x_j) e^{−2πi (ky y_i + kx x_j)}        (forward, kept modes)
//! ĝ[o](k)   = Σ_i ĥ[i](k) W[i, o, k]                                      (mode-wise mixing)
//! g(y, x)   = Re Σ_{ky} Σ_{kx} c_kx ĝ(ky, kx) e^{2πi (ky y + kx x)}        (inverse, any H' × W')
//! ```
//!
//! with the kept modes `kx = 0 … m2−1` (the real-FFT half plane) and `ky = −m1 … m1−1` (stored in
//! FFT order `0 … m1−1, −m1 … −1`), and the Hermitian weights `c_0 = 1`, `c_kx = 2` for `kx > 0`
//! (the conjugate half plane that a real field also carries). This is `irfft2` of the truncated,
//! mixed spectrum, and equals the reference FNO layer (Li et al. 2021) on its grid.
//!
//! Normalisation: the forward transform divides by `H W` and the inverse does not, so `ĥ(k)` is
//! the Fourier coefficient of the underlying periodic function whatever the grid. A band-limited
//! input sampled on a finer grid therefore gives the same coefficients, and the output evaluated
//! on any grid is the same trigonometric polynomial sampled there (resolution consistency,
//! zero-shot super-resolution).
//!
//! Unresolved modes: a mode is *resolved* by an `H × W` grid when `2|ky| < H` and `2 kx < W`. The
//! Nyquist modes (`2|ky| = H`, `2 kx = W`) are excluded because their sampled values do not
//! determine a unique trigonometric polynomial (`cos(π H y)` and `e^{iπ H y}` agree on the grid but
//! not between grid points). Modes a grid does not resolve are treated as zero: on the input grid
//! their coefficients are zero (the input is band-limited at the grid's resolution), and on the
//! output grid they are not synthesised (spectral truncation). A 12 × 12-mode layer thus runs on a
//! 16² grid using modes `|ky| ≤ 7`, `kx ≤ 7`; it needs `H > 2 m1`, `W ≥ 2 m2` to use all modes.
//!
//! Implementation: four real matrix products with DFT matrices built in `f64` for the current grid
//! (see [`SpectralBasis`]), plus one batched matrix product over the `2 m1 m2` modes for the mixing,
//! with complex numbers as pairs of real blocks. Cost per call `O(B C (H W m2 + H m1 m2) + B C² m1 m2)`,
//! linear in the grid size; no FFT is needed, so it runs on every burn backend.

use std::f64::consts::TAU;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::{ModelError, ParamInit, ensure_at_least};

/// Configuration of a [`SpectralConv2d`] layer.
#[derive(Config, Debug)]
pub struct SpectralConv2dConfig {
    /// Input channels `Cin`.
    pub in_channels: usize,
    /// Output channels `Cout`.
    pub out_channels: usize,
    /// Kept y modes `m1`: `ky = −m1 … m1−1`.
    pub modes_y: usize,
    /// Kept x modes `m2`: `kx = 0 … m2−1`.
    pub modes_x: usize,
    /// Seed of the weights' random stream.
    #[config(default = 0)]
    pub seed: u64,
}

impl SpectralConv2dConfig {
    /// Checks that every size is positive.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the first zero size.
    pub fn validate(&self) -> Result<(), ModelError> {
        ensure_at_least("in_channels", self.in_channels, 1)?;
        ensure_at_least("out_channels", self.out_channels, 1)?;
        ensure_at_least("modes_y", self.modes_y, 1)?;
        ensure_at_least("modes_x", self.modes_x, 1)
    }

    /// Builds the layer with weights drawn from the config's seed.
    ///
    /// # Errors
    /// As [`SpectralConv2dConfig::validate`].
    pub fn init(&self, device: &Device) -> Result<SpectralConv2d, ModelError> {
        self.validate()?;
        Ok(self.init_with(&mut ParamInit::new(self.seed), device))
    }

    /// Weights: real and imaginary parts independent, uniform in `±1/√(2 Cin)`, so that
    /// `E|W|² = 1/(3 Cin)` like burn's and PyTorch's default `Linear` initialisation.
    pub(crate) fn init_with(&self, init: &mut ParamInit, device: &Device) -> SpectralConv2d {
        let (ci, co, m1, m2) = (self.in_channels, self.out_channels, self.modes_y, self.modes_x);
        let bound = 1.0 / (2.0 * ci as f64).sqrt();
        SpectralConv2d {
            weight: init.uniform([2, ci, co, 2 * m1, m2], bound, device),
            in_channels: ci,
            out_channels: co,
            modes_y: m1,
            modes_x: m2,
        }
    }

    /// Number of parameters, `2 Cin Cout (2 m1) m2`.
    pub fn num_params(&self) -> usize {
        2 * self.in_channels * self.out_channels * 2 * self.modes_y * self.modes_x
    }
}

/// The Fourier layer `h ↦ F⁻¹[W · F h]` on the lowest modes (see the module docs).
#[derive(Module, Debug)]
pub struct SpectralConv2d {
    /// Complex weights `W[i, o, r, kx]` as `[2, Cin, Cout, 2 m1, m2]`: index 0 of the first axis is
    /// the real part, 1 the imaginary part; `r` is the y mode in FFT order (`ky = r` for `r < m1`,
    /// `ky = r − 2 m1` otherwise). The imaginary parts at mode `(0, 0)` have no effect (the mean
    /// of a real field is real and the output keeps the real part) and get zero gradient.
    pub weight: Param<Tensor<5>>,
    in_channels: usize,
    out_channels: usize,
    modes_y: usize,
    modes_x: usize,
}

impl SpectralConv2d {
    /// `(m1, m2)`: kept y and x modes.
    pub fn modes(&self) -> (usize, usize) {
        (self.modes_y, self.modes_x)
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Applies the layer on the input's grid.
    ///
    /// # Shapes
    /// - input: `[B, Cin, H, W]`, any `H, W ≥ 1`
    /// - output: `[B, Cout, H, W]`
    ///
    /// # Errors
    /// [`ModelError::Shape`] if the input does not have `Cin` channels or a size is zero.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, ModelError> {
        let [_, _, h, w] = x.dims();
        self.forward_to(x, h, w)
    }

    /// Applies the layer and evaluates the output on an `out_h × out_w` grid of the same domain
    /// (spectral interpolation or truncation of the output).
    ///
    /// # Shapes
    /// - input: `[B, Cin, H, W]`
    /// - output: `[B, Cout, out_h, out_w]`
    ///
    /// # Errors
    /// [`ModelError::Shape`] if the input does not have `Cin` channels or a size is zero.
    pub fn forward_to(&self, x: Tensor<4>, out_h: usize, out_w: usize) -> Result<Tensor<4>, ModelError> {
        let [_, _, h, w] = x.dims();
        let basis = SpectralBasis::new(self.modes(), (h, w), (out_h, out_w), &x.device())?;
        self.forward_with(x, &basis)
    }

    /// Applies the layer with precomputed DFT matrices (reuse one basis for every layer of a
    /// network that shares the grid and modes).
    ///
    /// # Shapes
    /// - input: `[B, Cin, H, W]` with `(H, W)` = `basis.input()`
    /// - output: `[B, Cout, H', W']` with `(H', W')` = `basis.output()`
    ///
    /// # Errors
    /// [`ModelError::Shape`] if the input does not match the channels or the basis' grid, or the
    /// basis was built for other modes.
    pub fn forward_with(&self, x: Tensor<4>, basis: &SpectralBasis) -> Result<Tensor<4>, ModelError> {
        let dims = x.dims();
        let [b, ci, h, w] = dims;
        let (hi, wi) = basis.input;
        if ci != self.in_channels || (h, w) != (hi, wi) {
            return Err(ModelError::shape("x", format!("[B, {}, {hi}, {wi}]", self.in_channels), &dims));
        }
        if basis.modes != self.modes() {
            return Err(ModelError::shape(
                "basis",
                format!("modes {:?}", self.modes()),
                &[basis.modes.0, basis.modes.1],
            ));
        }
        let (m1, m2) = self.modes();
        let (ho, wo) = basis.output;
        let co = self.out_channels;
        let k = 2 * m1 * m2;

        // x-DFT: [B Ci H, W] · [W, 2 m2] → (n, i | p, kx) with p = re/im.
        let a = x.reshape([b * ci * h, w]).matmul(basis.fx.clone());
        // → rows (n, kx), columns (p, i).
        let a = a.reshape([b * ci, h, 2, m2]).permute([0, 3, 2, 1]).reshape([b * ci * m2, 2 * h]);
        // y-DFT: → [B, Ci, m2, 2 (re/im), 2 m1].
        let xh = a.matmul(basis.fy.clone());
        // Mixing operands: [K = (kx, r), B, 2 Ci] · [K, 2 Ci, 2 Co].
        let xh = xh.reshape([b, ci, m2, 2, 2 * m1]).permute([2, 4, 0, 3, 1]).reshape([k, b, 2 * ci]);
        let yh = xh.matmul(self.mixing_matrix());
        // → rows (b, o, kx), columns (re/im, r).
        let yh = yh.reshape([m2, 2 * m1, b, 2, co]).permute([2, 4, 0, 3, 1]).reshape([b * co * m2, 4 * m1]);
        // Inverse y-DFT onto H': → [B, Co, m2, 2, H'] → rows (b, o, i'), columns (re/im, kx).
        let z = yh.matmul(basis.gy.clone());
        let z = z.reshape([b, co, m2, 2, ho]).permute([0, 1, 4, 3, 2]).reshape([b * co * ho, 2 * m2]);
        // Inverse real x-DFT onto W'.
        Ok(z.matmul(basis.gx.clone()).reshape([b, co, ho, wo]))
    }

    /// The complex weights as a real block matrix `[[Wr, Wi], [−Wi, Wr]]` per mode, `[K, 2 Ci, 2 Co]`,
    /// so that `[Xr | Xi] · M = [Xr Wr − Xi Wi | Xr Wi + Xi Wr]`.
    pub(crate) fn mixing_matrix(&self) -> Tensor<3> {
        let (ci, co) = (self.in_channels, self.out_channels);
        let k = 2 * self.modes_y * self.modes_x;
        let w = self.weight.val();
        let part = |p: usize| {
            w.clone()
                .narrow(0, p, 1)
                .reshape([ci, co, 2 * self.modes_y, self.modes_x])
                .permute([3, 2, 0, 1])
                .reshape([k, ci, co])
        };
        let (wr, wi) = (part(0), part(1));
        let top = Tensor::cat(vec![wr.clone(), wi.clone()], 2);
        let bottom = Tensor::cat(vec![wi.neg(), wr], 2);
        Tensor::cat(vec![top, bottom], 1)
    }
}

/// The DFT matrices of a [`SpectralConv2d`] for one input grid, output grid and mode count.
///
/// Built in `f64` with exact integer phase reduction, then stored as `f32` constants (they are
/// plain tensors, never parameters). Sizes `W × 2m2`, `2H × 4m1`, `4m1 × 2H'`, `2m2 × W'`.
#[derive(Debug, Clone)]
pub struct SpectralBasis {
    modes: (usize, usize),
    input: (usize, usize),
    output: (usize, usize),
    /// `[W, 2 m2]`: columns (re/im, kx), `(cos, −sin)(2π kx j/W) / W`.
    fx: Tensor<2>,
    /// `[2H, 4 m1]`: rows (re/im, i), columns (re/im, r); forward complex y-DFT divided by `H`.
    fy: Tensor<2>,
    /// `[4 m1, 2H']`: rows (re/im, r), columns (re/im, i'); inverse complex y-DFT.
    gy: Tensor<2>,
    /// `[2 m2, W']`: rows (re/im, kx), `c_kx (cos, −sin)(2π kx j/W')`.
    gx: Tensor<2>,
}

impl SpectralBasis {
    /// DFT matrices for `modes = (m1, m2)`, an `input = (H, W)` grid and an `output = (H', W')` grid.
    /// Modes a grid does not resolve get zero rows/columns (see the module docs).
    ///
    /// # Errors
    /// [`ModelError::Shape`] if a grid size is zero, [`ModelError::InvalidConfig`] if a mode count is.
    pub fn new(
        modes: (usize, usize),
        input: (usize, usize),
        output: (usize, usize),
        device: &Device,
    ) -> Result<Self, ModelError> {
        let [fx, fy, gy, gx] = dft_matrices(modes, input, output)?;
        let tensor = |v: Vec<f64>, shape: [usize; 2]| {
            let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
            Tensor::from_data(TensorData::new(v, shape), device)
        };
        let ((m1, m2), (h, w), (ho, wo)) = (modes, input, output);
        Ok(Self {
            modes,
            input,
            output,
            fx: tensor(fx, [w, 2 * m2]),
            fy: tensor(fy, [2 * h, 4 * m1]),
            gy: tensor(gy, [4 * m1, 2 * ho]),
            gx: tensor(gx, [2 * m2, wo]),
        })
    }

    /// `(m1, m2)`.
    pub fn modes(&self) -> (usize, usize) {
        self.modes
    }

    /// Input grid `(H, W)`.
    pub fn input(&self) -> (usize, usize) {
        self.input
    }

    /// Output grid `(H', W')`.
    pub fn output(&self) -> (usize, usize) {
        self.output
    }
}

/// The row-major `f64` DFT matrices `[fx, fy, gy, gx]` of a [`SpectralBasis`] (sizes `W × 2m2`,
/// `2H × 4m1`, `4m1 × 2H'`, `2m2 × W'`; see its field docs).
///
/// # Errors
/// As [`SpectralBasis::new`].
pub(crate) fn dft_matrices(
    modes: (usize, usize),
    input: (usize, usize),
    output: (usize, usize),
) -> Result<[Vec<f64>; 4], ModelError> {
    let (m1, m2) = modes;
    ensure_at_least("modes_y", m1, 1)?;
    ensure_at_least("modes_x", m2, 1)?;
    for (what, (h, w)) in [("x", input), ("output grid", output)] {
        if h == 0 || w == 0 {
            return Err(ModelError::shape(what, "a non-empty grid", &[h, w]));
        }
    }
    let (h, w) = input;
    let (ho, wo) = output;
    let ky = |r: usize| if r < m1 { r as i64 } else { r as i64 - 2 * m1 as i64 };
    // Phase 2π (k j mod n)/n, reduced exactly in integers.
    let phase = |k: i64, j: usize, n: usize| TAU * ((k * j as i64).rem_euclid(n as i64) as f64) / n as f64;
    let resolved = |k: i64, n: usize| 2 * k.unsigned_abs() < n as u64;

    let mut fx = vec![0.0; w * 2 * m2];
    for j in 0..w {
        for kx in 0..m2 {
            if resolved(kx as i64, w) {
                let t = phase(kx as i64, j, w);
                fx[j * 2 * m2 + kx] = t.cos() / w as f64;
                fx[j * 2 * m2 + m2 + kx] = -t.sin() / w as f64;
            }
        }
    }
    // X̂r = Σ (Ar cos + Ai sin)/H, X̂i = Σ (Ai cos − Ar sin)/H.
    let cols = 4 * m1;
    let mut fy = vec![0.0; 2 * h * cols];
    for i in 0..h {
        for r in 0..2 * m1 {
            if resolved(ky(r), h) {
                let t = phase(ky(r), i, h);
                let (c, s) = (t.cos() / h as f64, t.sin() / h as f64);
                fy[i * cols + r] = c;
                fy[i * cols + 2 * m1 + r] = -s;
                fy[(h + i) * cols + r] = s;
                fy[(h + i) * cols + 2 * m1 + r] = c;
            }
        }
    }
    // Zr = Σ (Ŷr cos − Ŷi sin), Zi = Σ (Ŷi cos + Ŷr sin).
    let cols = 2 * ho;
    let mut gy = vec![0.0; 4 * m1 * cols];
    for r in 0..2 * m1 {
        if resolved(ky(r), ho) {
            for i in 0..ho {
                let t = phase(ky(r), i, ho);
                let (c, s) = (t.cos(), t.sin());
                gy[r * cols + i] = c;
                gy[r * cols + ho + i] = s;
                gy[(2 * m1 + r) * cols + i] = -s;
                gy[(2 * m1 + r) * cols + ho + i] = c;
            }
        }
    }
    // g = Σ c_kx (Zr cos − Zi sin).
    let mut gx = vec![0.0; 2 * m2 * wo];
    for kx in 0..m2 {
        if resolved(kx as i64, wo) {
            let weight = if kx == 0 { 1.0 } else { 2.0 };
            for j in 0..wo {
                let t = phase(kx as i64, j, wo);
                gx[kx * wo + j] = weight * t.cos();
                gx[(m2 + kx) * wo + j] = -weight * t.sin();
            }
        }
    }
    Ok([fx, fy, gy, gx])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::test_util::{normal_array, normal_tensor, rel_err, values};
    use fieldflow_pde::{Complex64, Grid2d, resample::resample};
    use ndarray::{Array2, Array4, ArrayD, Ix4, s};

    fn layer(ci: usize, co: usize, m1: usize, m2: usize, seed: u64, device: &Device) -> SpectralConv2d {
        SpectralConv2dConfig::new(ci, co, m1, m2).with_seed(seed).init(device).unwrap()
    }

    /// The weights as f64 complex `W[i, o, r, kx]`.
    fn complex_weights(l: &SpectralConv2d) -> Array4<Complex64> {
        let [_, ci, co, r, m2] = l.weight.val().dims();
        let v = values(l.weight.val());
        let n = ci * co * r * m2;
        Array4::from_shape_fn((ci, co, r, m2), |(i, o, r_, k)| {
            let idx = ((i * co + o) * r + r_) * m2 + k;
            Complex64::new(v[idx], v[n + idx])
        })
    }

    /// The layer in f64 with the pde crate's FFT: rfft2 / (H W), truncate, mix, irfft2 · (H W).
    fn reference(x: &Array4<f64>, wts: &Array4<Complex64>) -> Array4<f64> {
        let (b, ci, h, w) = x.dim();
        let (_, co, r2, m2) = wts.dim();
        let m1 = r2 / 2;
        let grid = Grid2d::new(w, h, 1.0, 1.0).unwrap();
        let scale = (h * w) as f64;
        let mut out = Array4::zeros((b, co, h, w));
        for bi in 0..b {
            let specs: Vec<Array2<Complex64>> =
                (0..ci).map(|i| grid.fft(x.slice(s![bi, i, .., ..])).unwrap().mapv(|c| c / scale)).collect();
            for o in 0..co {
                let mut spec = grid.spectral_zeros();
                for r in 0..r2 {
                    let row = if r < m1 { r } else { h + r - r2 };
                    for kx in 0..m2 {
                        let acc: Complex64 = (0..ci).map(|i| specs[i][[row, kx]] * wts[[i, o, r, kx]]).sum();
                        spec[[row, kx]] = acc * scale;
                    }
                }
                out.slice_mut(s![bi, o, .., ..]).assign(&grid.ifft(spec.view()).unwrap());
            }
        }
        out
    }

    fn to_tensor4(a: &Array4<f64>, device: &Device) -> Tensor<4> {
        crate::bridge::to_tensor::<4, _>(a.view(), device)
    }

    fn to_array4(t: Tensor<4>) -> Array4<f64> {
        crate::bridge::to_array(t).unwrap().into_dimensionality::<Ix4>().unwrap()
    }

    fn as4(a: ArrayD<f64>) -> Array4<f64> {
        a.into_dimensionality::<Ix4>().unwrap()
    }

    /// A real trigonometric polynomial with random coefficients on modes `|ky| < m1`, `kx < m2`
    /// (strictly inside the kept set), sampled on an `n × n` grid; one per (batch, channel).
    fn band_limited(b: usize, c: usize, n: usize, m1: usize, m2: usize, seed: u64) -> Array4<f64> {
        let coef = normal_array(&[b, c, 2 * m1 - 1, m2, 2], seed, 0);
        Array4::from_shape_fn((b, c, n, n), |(bi, ci, i, j)| {
            let (y, x) = (i as f64 / n as f64, j as f64 / n as f64);
            let mut v = 0.0;
            for r in 0..2 * m1 - 1 {
                let ky = r as f64 - (m1 - 1) as f64;
                for kx in 0..m2 {
                    let t = TAU * (ky * y + kx as f64 * x);
                    v += coef[[bi, ci, r, kx, 0]] * t.cos() + coef[[bi, ci, r, kx, 1]] * t.sin();
                }
            }
            v
        })
    }

    #[test]
    fn matches_the_fft_reference_on_random_inputs_and_weights() {
        let device = Device::default();
        // Non-square grid, H ≠ W, several channels; modes strictly inside both grids.
        for &(h, w, m1, m2) in &[(16, 24, 4, 5), (20, 12, 3, 6), (32, 32, 12, 12)] {
            let l = layer(3, 2, m1, m2, 7, &device);
            let x = as4(normal_array(&[2, 3, h, w], 11, (h * w) as u64));
            let got = to_array4(l.forward(to_tensor4(&x, &device)).unwrap());
            let want = reference(&x, &complex_weights(&l));
            let err = rel_err(got.as_slice().unwrap(), want.as_slice().unwrap());
            assert!(err < 2e-6, "{h}x{w} modes ({m1}, {m2}): relative error {err:e}");
        }
    }

    #[test]
    fn band_limited_input_gives_the_same_output_on_a_finer_grid() {
        let device = Device::default();
        let (m1, m2) = (6, 6);
        let l = layer(2, 3, m1, m2, 3, &device);
        let coarse = band_limited(2, 2, 32, m1, m2, 5);
        let fine = band_limited(2, 2, 64, m1, m2, 5);
        let yc = to_array4(l.forward(to_tensor4(&coarse, &device)).unwrap());
        let yf = to_array4(l.forward(to_tensor4(&fine, &device)).unwrap());
        let shared = yf.slice(s![.., .., ..;2, ..;2]).to_owned();
        let err = rel_err(shared.as_slice().unwrap(), yc.as_slice().unwrap());
        assert!(err < 2e-6, "relative difference at shared points {err:e}");
    }

    #[test]
    fn output_on_another_grid_is_the_spectral_interpolation() {
        let device = Device::default();
        let (h, w) = (16, 24);
        let l = layer(2, 2, 4, 5, 9, &device);
        let x = as4(normal_array(&[1, 2, h, w], 13, 0));
        let y = to_array4(l.forward(to_tensor4(&x, &device)).unwrap());
        // Refinement, coarsening (still resolving every kept mode) and mixed.
        for &(ho, wo) in &[(32, 40), (10, 12), (48, 12)] {
            let got = to_array4(l.forward_to(to_tensor4(&x, &device), ho, wo).unwrap());
            assert_eq!(got.dim(), (1, 2, ho, wo));
            for c in 0..2 {
                let want = resample(y.slice(s![0, c, .., ..]), ho, wo).unwrap();
                let got_c = got.slice(s![0, c, .., ..]).to_owned();
                let err = rel_err(got_c.as_slice().unwrap(), want.as_slice().unwrap());
                assert!(err < 2e-6, "{ho}x{wo} channel {c}: relative error {err:e}");
            }
        }
    }

    #[test]
    fn modes_a_grid_cannot_resolve_are_dropped() {
        let device = Device::default();
        // 12 × 12 modes on an 8 × 8 grid: only |ky| ≤ 3, kx ≤ 3 survive, i.e. the layer equals a
        // 4 × 4-mode layer holding the same weights on those modes.
        let big = layer(1, 1, 12, 12, 1, &device);
        let w = complex_weights(&big);
        let x = as4(normal_array(&[1, 1, 8, 8], 2, 0));
        let got = to_array4(big.forward(to_tensor4(&x, &device)).unwrap());
        let mut w_small = Array4::zeros((1, 1, 8, 4));
        for r in 0..8 {
            let src = if r < 4 { r } else { 24 - (8 - r) };
            for kx in 0..4 {
                // The Nyquist row ky = −4 is not resolved by 8 points: zero.
                w_small[[0, 0, r, kx]] = if r == 4 { Complex64::new(0.0, 0.0) } else { w[[0, 0, src, kx]] };
            }
        }
        let want = reference(&x, &w_small);
        let err = rel_err(got.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(err < 2e-6, "relative error {err:e}");
    }

    #[test]
    fn wrong_channels_or_basis_are_errors() {
        let device = Device::default();
        let l = layer(3, 2, 4, 4, 0, &device);
        let err = l.forward(Tensor::zeros([1, 2, 16, 16], &device)).unwrap_err();
        assert!(matches!(err, ModelError::Shape { input: "x", .. }), "{err}");
        let basis = SpectralBasis::new((4, 4), (16, 16), (16, 16), &device).unwrap();
        assert!(l.forward_with(Tensor::zeros([1, 3, 8, 16], &device), &basis).is_err());
        let other = SpectralBasis::new((4, 3), (16, 16), (16, 16), &device).unwrap();
        assert!(l.forward_with(Tensor::zeros([1, 3, 16, 16], &device), &other).is_err());
        assert!(SpectralBasis::new((4, 4), (0, 16), (16, 16), &device).is_err());
        assert!(SpectralConv2dConfig::new(3, 2, 0, 4).init(&device).is_err());
    }

    /// `f = Σ out·r` is linear in the weights and in the input, so for any direction `δ`,
    /// `f(W + δ) − f(W − δ) = 2 ⟨∇f, δ⟩` holds exactly (up to rounding) for a step of any size:
    /// a finite-difference check without truncation error.
    #[test]
    fn weight_and_input_gradients_match_finite_differences() {
        let device = Device::default().autodiff();
        let l = layer(2, 3, 4, 3, 4, &device);
        let x = normal_tensor([2, 2, 16, 12], 21, 0, &device).require_grad();
        let r = normal_tensor([2, 3, 16, 12], 21, 1, &device);
        let f = |l: &SpectralConv2d, x: Tensor<4>| l.forward(x).unwrap().mul(r.clone()).sum();
        let grads = f(&l, x.clone()).backward();
        let check = |what: &str, directional: f64, fd: f64| {
            assert!(directional.abs() > 0.1, "{what}: directional derivative {directional} too small to test");
            assert!((fd - directional).abs() < 1e-4 * directional.abs(), "{what}: fd {fd} vs autodiff {directional}");
        };

        let gw = l.weight.val().grad(&grads).unwrap();
        let dw = normal_tensor(gw.dims(), 21, 2, &device);
        let shifted = |sign: f32| {
            let w = (l.weight.val().detach() + dw.clone().mul_scalar(sign)).detach();
            let l2 = SpectralConv2d { weight: Param::from_tensor(w), ..l.clone() };
            values(f(&l2, x.clone().detach()))[0]
        };
        check("weights", values(gw.clone().mul(dw.clone()).sum())[0], (shifted(1.0) - shifted(-1.0)) / 2.0);

        let gx = x.grad(&grads).unwrap();
        let dx = normal_tensor(gx.dims(), 21, 3, &device);
        let shifted = |sign: f32| values(f(&l, (x.clone().detach() + dx.clone().mul_scalar(sign)).detach()))[0];
        check("input", values(gx.mul(dx.clone()).sum())[0], (shifted(1.0) - shifted(-1.0)) / 2.0);

        // Every weight receives gradient except the imaginary parts at mode (0, 0), which have no
        // effect: the mean of a real field is real and the output keeps the real part.
        let gv = values(gw);
        let [_, ci, co, r2, m2] = l.weight.val().dims();
        for (idx, v) in gv.iter().enumerate() {
            let (part, mode) = (idx / (ci * co * r2 * m2), idx % (r2 * m2));
            assert_eq!(*v == 0.0, part == 1 && mode == 0, "weight {idx}: gradient {v}");
        }
    }

    /// With one channel and all weights 1, the layer is the low-pass filter `P`, a self-adjoint
    /// map, so `∇ₓ ⟨P x, r⟩ = P r = r` for `r` band-limited inside the kept modes.
    #[test]
    fn input_gradient_of_the_identity_filter_is_the_test_field() {
        let device = Device::default().autodiff();
        let (m1, m2, n) = (4, 4, 16);
        let mut l = layer(1, 1, m1, m2, 0, &device);
        let ones = Tensor::<5>::ones([1, 1, 1, 2 * m1, m2], &device);
        l.weight = Param::from_tensor(Tensor::cat(vec![ones.clone(), ones.zeros_like()], 0));
        let r_arr = band_limited(1, 1, n, m1, m2, 8);
        let r = to_tensor4(&r_arr, &device);
        let x = normal_tensor([1, 1, n, n], 31, 0, &device).require_grad();
        let grads = l.forward(x.clone()).unwrap().mul(r).sum().backward();
        let g = values(x.grad(&grads).unwrap());
        let err = rel_err(&g, r_arr.as_slice().unwrap());
        assert!(err < 2e-6, "relative error {err:e}");
    }
}
