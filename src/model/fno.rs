//! Fourier neural operator velocity field `v_θ(x, t; c, p)` for fields on periodic grids.
//!
//! ```text
//! e   = GELU(TimeEmbedding(t, p))                                   conditioning vector [B, E]
//! h₀  = P_lift [x, c, (x, y)] + L_t e                               lifting to `width` channels
//! v_l = (K_l h_l + W_l h_l) ⊙ (1 + γ_l(e)) + β_l(e)                 Fourier layer + FiLM
//! h_{l+1} = GELU(v_l)  (l < L−1),   h_L = v_{L−1}
//! out = Q₂ GELU(Q₁ h_L)                                             projection width → 128 → out
//! ```
//!
//! `x` is the state (`in_channels`), `c` optional conditioning fields (`cond_channels`, e.g. a Darcy
//! permeability), `(x, y)` the grid coordinates (`with_grid`, see [`GridEncoding`]), `p` optional scalar
//! parameters (`scalar_params`, e.g. a viscosity; pass them normalised to O(1)). `K_l` is a
//! [`SpectralConv2d`], `W_l`, `P`, `Q` are pointwise (1×1) maps, `L_t`, `γ_l`, `β_l` linear maps of
//! `e`. Adding `L_t e` equals concatenating `e` as constant channels to the lifting input.
//!
//! Every operation is either pointwise or a spectral convolution on the kept modes, so the same
//! network runs on any grid (zero-shot super-resolution); the data are periodic, so no padding is
//! used. Modes a grid cannot resolve are dropped (see [`super::spectral_conv`]).
//!
//! Grid coordinates: the reference FNO appends `(x, y) ∈ [0, 1)²`. On a periodic domain these are
//! sawtooth waves, discontinuous at the boundary, whose `1/k` spectrum the GELUs alias onto the kept
//! modes: outputs on an n² grid and a 2n² grid then differ by O(1/n) (2.7% at n = 32 for the default
//! network). The default [`GridEncoding::Periodic`] appends `(sin 2πx, cos 2πx, sin 2πy, cos 2πy)`
//! instead: the same position information, smooth and periodic, and the difference drops to f32
//! round-off (2e-6; only the GELU harmonics above the coarse grid's Nyquist frequency remain).
//!
//! Initial velocity: the last projection `Q₂` is drawn at `output_scale` (0.1) times the default
//! scale, so the initial output is small (RMS ≈ 0.005 for unit-variance inputs) without being zero:
//! a zero `Q₂` would leave every other parameter without gradient on the first step.

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor, TensorData};
use std::f64::consts::TAU;

use super::mlp::broadcast_time;
use super::{
    LerayLayer, ModelError, ModelSummary, ParamInit, Pointwise, SpectralBasis, SpectralConv2d, SpectralConv2dConfig,
    TimeEmbedding, TimeEmbeddingConfig, ensure_at_least,
};

/// Configuration of an [`Fno`] velocity field.
#[derive(Config, Debug)]
pub struct FnoConfig {
    /// Channels of the state `x` (e.g. 2 for a velocity field).
    pub in_channels: usize,
    /// Channels of the output velocity (normally `in_channels`).
    pub out_channels: usize,
    /// Channels of the hidden layers.
    #[config(default = 32)]
    pub width: usize,
    /// Kept Fourier modes `(m1, m2)`: `ky = −m1 … m1−1`, `kx = 0 … m2−1`.
    #[config(default = "(12, 12)")]
    pub modes: (usize, usize),
    /// Number of Fourier layers.
    #[config(default = 4)]
    pub layers: usize,
    /// Channels of the conditioning fields `c` (0: none).
    #[config(default = 0)]
    pub cond_channels: usize,
    /// Number of scalar conditioning parameters `p` (0: none).
    #[config(default = 0)]
    pub scalar_params: usize,
    /// Dimension `E` of the time (and parameter) embedding.
    #[config(default = 64)]
    pub time_embedding_dim: usize,
    /// Number of sinusoidal time frequencies.
    #[config(default = 16)]
    pub time_frequencies: usize,
    /// Append the grid coordinates as input channels, encoded as `grid_encoding` says.
    #[config(default = true)]
    pub with_grid: bool,
    /// How grid coordinates are encoded (periodic features by default).
    #[config(default = "GridEncoding::Periodic")]
    pub grid_encoding: GridEncoding,
    /// Hidden channels of the projection.
    #[config(default = 128)]
    pub projection_width: usize,
    /// Scale of the last projection layer's initial weights relative to the default.
    #[config(default = 0.1)]
    pub output_scale: f64,
    /// Seed of the weights' random streams.
    #[config(default = 0)]
    pub seed: u64,
    /// Project the output `(u, v)` onto divergence-free fields of a periodic `(Lx, Ly)` domain
    /// with a [`LerayLayer`] (needs `out_channels = 2`); `None`: no projection.
    #[config(default = "None")]
    pub leray_domain: Option<(f64, f64)>,
}

impl FnoConfig {
    /// Checks every size and the output scale.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the offending field.
    pub fn validate(&self) -> Result<(), ModelError> {
        ensure_at_least("in_channels", self.in_channels, 1)?;
        ensure_at_least("out_channels", self.out_channels, 1)?;
        ensure_at_least("width", self.width, 1)?;
        ensure_at_least("modes", self.modes.0.min(self.modes.1), 1)?;
        ensure_at_least("layers", self.layers, 1)?;
        ensure_at_least("projection_width", self.projection_width, 1)?;
        if let Some((lx, ly)) = self.leray_domain {
            if self.out_channels != 2 {
                return Err(ModelError::config("leray_domain", "needs out_channels = 2 (a velocity (u, v))"));
            }
            if !(lx.is_finite() && lx > 0.0 && ly.is_finite() && ly > 0.0) {
                return Err(ModelError::config("leray_domain", format!("({lx}, {ly}) must be finite and positive")));
            }
        }
        if !(self.output_scale.is_finite() && self.output_scale > 0.0) {
            return Err(ModelError::config(
                "output_scale",
                format!("= {} must be finite and positive", self.output_scale),
            ));
        }
        self.embedding_config().validate()
    }

    fn embedding_config(&self) -> TimeEmbeddingConfig {
        TimeEmbeddingConfig::new(self.time_embedding_dim)
            .with_frequencies(self.time_frequencies)
            .with_extra_inputs(self.scalar_params)
    }

    fn spectral_config(&self) -> SpectralConv2dConfig {
        SpectralConv2dConfig::new(self.width, self.width, self.modes.0, self.modes.1)
    }

    fn lift_channels(&self) -> usize {
        self.in_channels + self.cond_channels + if self.with_grid { self.grid_encoding.channels() } else { 0 }
    }

    /// Builds the network with weights drawn from the config's seed.
    ///
    /// # Errors
    /// As [`FnoConfig::validate`].
    pub fn init(&self, device: &Device) -> Result<Fno, ModelError> {
        self.validate()?;
        let mut init = ParamInit::new(self.seed);
        let (w, e) = (self.width, self.time_embedding_dim);
        let embedding = self.embedding_config().init_with(&mut init, device);
        let lift = init.pointwise(self.lift_channels(), w, 1.0, device);
        let lift_time = init.linear(e, w, false, 1.0, device);
        let blocks = (0..self.layers)
            .map(|_| FourierBlock {
                spectral: self.spectral_config().init_with(&mut init, device),
                pointwise: init.pointwise(w, w, 1.0, device),
                film: init.linear(e, 2 * w, true, 1.0, device),
            })
            .collect();
        let project_hidden = init.pointwise(w, self.projection_width, 1.0, device);
        let project_out = init.pointwise(self.projection_width, self.out_channels, self.output_scale, device);
        Ok(Fno {
            embedding,
            lift,
            lift_time,
            blocks,
            project_hidden,
            project_out,
            in_channels: self.in_channels,
            cond_channels: self.cond_channels,
            grid: if self.with_grid { Some(self.grid_encoding == GridEncoding::Periodic) } else { None },
            leray_lx: self.leray_domain.map_or(0.0, |d| d.0),
            leray_ly: self.leray_domain.map_or(0.0, |d| d.1),
        })
    }

    /// Number of parameters the network will have.
    pub fn num_params(&self) -> usize {
        let (w, e, q) = (self.width, self.time_embedding_dim, self.projection_width);
        let block = self.spectral_config().num_params() + (w + 1) * w + (e + 1) * 2 * w;
        self.embedding_config().num_params()
            + (self.lift_channels() + 1) * w
            + e * w
            + self.layers * block
            + (w + 1) * q
            + (q + 1) * self.out_channels
    }
}

/// One Fourier layer: spectral convolution, pointwise channel mixing and FiLM conditioning.
#[derive(Module, Debug)]
pub struct FourierBlock {
    /// `K_l`.
    pub spectral: SpectralConv2d,
    /// `W_l`.
    pub pointwise: Pointwise,
    /// `e ↦ (γ_l, β_l)`, `E → 2 width`.
    pub film: Linear,
}

/// Fourier neural operator velocity field; see the module docs.
#[derive(Module, Debug)]
pub struct Fno {
    /// Time (and scalar-parameter) embedding.
    pub embedding: TimeEmbedding,
    /// `P`: input channels (+ conditioning + grid) → width.
    pub lift: Pointwise,
    /// `L_t`: embedding → width, added to the lifted field.
    pub lift_time: Linear,
    /// The Fourier layers.
    pub blocks: Vec<FourierBlock>,
    /// `Q₁`: width → projection width.
    pub project_hidden: Pointwise,
    /// `Q₂`: projection width → output channels.
    pub project_out: Pointwise,
    in_channels: usize,
    cond_channels: usize,
    /// `None`: no grid channels; `Some(true)`: periodic encoding; `Some(false)`: linear.
    grid: Option<bool>,
    /// Domain of the output Leray projection (0: none).
    leray_lx: f64,
    leray_ly: f64,
}

impl Fno {
    /// The velocity at states `x`, times `t`, conditioning fields `cond` and scalar parameters
    /// `params`, on the grid of `x` (any size).
    ///
    /// # Shapes
    /// - x: `[B, in_channels, H, W]`
    /// - t: `[B]`, or `[1]` for one time shared by the batch
    /// - cond: `[B, cond_channels, H, W]`; `Some` exactly when `cond_channels > 0`
    /// - params: `[B, scalar_params]`; `Some` exactly when `scalar_params > 0`
    /// - output: `[B, out_channels, H, W]`
    ///
    /// # Errors
    /// [`ModelError::Shape`] when a tensor's shape does not match the above (or the grid is empty),
    /// [`ModelError::Conditioning`] when `cond` or `params` is missing or unexpected. Shapes are
    /// checked before any computation.
    pub fn forward(
        &self,
        x: Tensor<4>,
        t: Tensor<1>,
        cond: Option<Tensor<4>>,
        params: Option<Tensor<2>>,
    ) -> Result<Tensor<4>, ModelError> {
        let [b, _, h, w] = self.check_inputs(x.dims(), cond.as_ref())?;
        let t = broadcast_time(t, b)?;
        let device = x.device();
        let mut inputs = vec![x];
        inputs.extend(cond);
        let e = gelu(self.embedding.forward(t, params)?);
        if let Some(periodic) = self.grid {
            let encoding = if periodic { GridEncoding::Periodic } else { GridEncoding::Linear };
            inputs.push(encoding.features(h, w, &device).expand([b, encoding.channels(), h, w]));
        }
        let width = self.width();
        let mut z =
            self.lift.forward(Tensor::cat(inputs, 1)) + self.lift_time.forward(e.clone()).reshape([b, width, 1, 1]);
        let basis = SpectralBasis::new(self.modes(), (h, w), (h, w), &device)?;
        let last = self.blocks.len().saturating_sub(1);
        for (l, block) in self.blocks.iter().enumerate() {
            let v = block.spectral.forward_with(z.clone(), &basis)? + block.pointwise.forward(z);
            let film = block.film.forward(e.clone());
            let gamma = film.clone().narrow(1, 0, width).reshape([b, width, 1, 1]);
            let beta = film.narrow(1, width, width).reshape([b, width, 1, 1]);
            let v = v.mul(gamma.add_scalar(1.0)) + beta;
            z = if l < last { gelu(v) } else { v };
        }
        let out = self.project_out.forward(gelu(self.project_hidden.forward(z)));
        match self.leray_domain() {
            Some((lx, ly)) => LerayLayer::new(h, w, lx, ly, &device)?.forward(out),
            None => Ok(out),
        }
    }

    /// The periodic domain of the output Leray projection, if the network has one.
    pub fn leray_domain(&self) -> Option<(f64, f64)> {
        (self.leray_lx > 0.0).then_some((self.leray_lx, self.leray_ly))
    }

    /// Checks the shapes of [`Fno::forward`]'s `x` and `cond` (see its docs) and returns `x`'s.
    ///
    /// # Errors
    /// As [`Fno::forward`].
    pub(crate) fn check_inputs(&self, dims: [usize; 4], cond: Option<&Tensor<4>>) -> Result<[usize; 4], ModelError> {
        let [b, c, h, w] = dims;
        if c != self.in_channels || b == 0 || h == 0 || w == 0 {
            return Err(ModelError::shape("x", format!("[B, {}, H, W] with B, H, W ≥ 1", self.in_channels), &dims));
        }
        match (cond, self.cond_channels) {
            (None, 0) => Ok(dims),
            (Some(cond), n) if n > 0 => {
                let got = cond.dims();
                if got != [b, n, h, w] {
                    return Err(ModelError::shape("cond", format!("[{b}, {n}, {h}, {w}]"), &got));
                }
                Ok(dims)
            }
            (None, n) => {
                let reason = format!("the model expects {n} conditioning channels but none were given");
                Err(ModelError::Conditioning { input: "cond", reason })
            }
            (Some(_), _) => {
                let reason = "the model takes no conditioning fields (cond_channels = 0)".to_string();
                Err(ModelError::Conditioning { input: "cond", reason })
            }
        }
    }

    /// Hidden channels.
    pub fn width(&self) -> usize {
        self.lift.weight.dims()[0]
    }

    /// Kept Fourier modes `(m1, m2)`.
    pub fn modes(&self) -> (usize, usize) {
        self.blocks.first().map_or((0, 0), |b| b.spectral.modes())
    }

    /// How grid coordinates are appended to the input (`None`: they are not).
    pub fn grid_encoding(&self) -> Option<GridEncoding> {
        self.grid.map(|periodic| if periodic { GridEncoding::Periodic } else { GridEncoding::Linear })
    }

    /// Channels of the state.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Channels of the output velocity.
    pub fn out_channels(&self) -> usize {
        self.project_out.weight.dims()[0]
    }

    /// Channels of the conditioning fields (0: none).
    pub fn cond_channels(&self) -> usize {
        self.cond_channels
    }

    /// Number of scalar conditioning parameters (0: none).
    pub fn scalar_params(&self) -> usize {
        self.embedding.extra_inputs()
    }

    /// Parameter counts per part (`Display` prints a table).
    pub fn summary(&self) -> ModelSummary {
        ModelSummary::of("Fno", self)
    }
}

/// How the grid coordinates `(x_j, y_i) = (j/W, i/H)` are appended to the network's input.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum GridEncoding {
    /// `(sin 2πx, cos 2πx, sin 2πy, cos 2πy)`: four smooth periodic channels (default).
    Periodic,
    /// `(x, y) ∈ [0, 1)²`: two channels, as in the reference FNO (sawtooth on a periodic domain).
    Linear,
}

impl GridEncoding {
    /// Number of channels the encoding adds.
    pub fn channels(self) -> usize {
        match self {
            Self::Periodic => 4,
            Self::Linear => 2,
        }
    }

    /// The encoded coordinates of an `H × W` grid.
    ///
    /// # Shapes
    /// - output: `[1, channels, H, W]`
    pub fn features(self, h: usize, w: usize, device: &Device) -> Tensor<4> {
        let mut values: Vec<f32> = Vec::with_capacity(self.channels() * h * w);
        let mut plane = |f: &dyn Fn(f64, f64) -> f64| {
            for i in 0..h {
                values.extend((0..w).map(|j| f(i as f64 / h as f64, j as f64 / w as f64) as f32));
            }
        };
        match self {
            Self::Periodic => {
                plane(&|_, x| (TAU * x).sin());
                plane(&|_, x| (TAU * x).cos());
                plane(&|y, _| (TAU * y).sin());
                plane(&|y, _| (TAU * y).cos());
            }
            Self::Linear => {
                plane(&|_, x| x);
                plane(&|y, _| y);
            }
        }
        Tensor::from_data(TensorData::new(values, [1, self.channels(), h, w]), device)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::test_util::{grad_rms, normal_tensor, rel_err, values};
    use fieldflow_pde::resample::resample;
    use ndarray::{Array4, Ix4, s};

    fn small() -> FnoConfig {
        FnoConfig::new(2, 2)
            .with_width(8)
            .with_modes((4, 4))
            .with_layers(2)
            .with_cond_channels(1)
            .with_scalar_params(1)
            .with_time_embedding_dim(16)
            .with_projection_width(16)
            .with_seed(1)
    }

    fn times(b: usize, t: f32, device: &Device) -> Tensor<1> {
        Tensor::full([b], t, device)
    }

    #[test]
    fn output_shapes_on_the_training_grid_and_a_finer_one() {
        let device = Device::default();
        let fno = small().init(&device).unwrap();
        for (h, w) in [(16, 16), (32, 32), (16, 24), (6, 6)] {
            let x = normal_tensor([3, 2, h, w], 1, 0, &device);
            let cond = Some(normal_tensor([3, 1, h, w], 1, 1, &device));
            let params = Some(Tensor::ones([3, 1], &device));
            let out = fno.forward(x, times(3, 0.5, &device), cond, params).unwrap();
            assert_eq!(out.dims(), [3, 2, h, w]);
            assert!(values(out).iter().all(|v| v.is_finite()));
        }
        // The default 12 × 12 modes also run on a 16² grid, which resolves only |k| ≤ 7.
        let fno = FnoConfig::new(2, 2).init(&device).unwrap();
        let out = fno.forward(Tensor::ones([1, 2, 16, 16], &device), times(1, 0.1, &device), None, None).unwrap();
        assert_eq!(out.dims(), [1, 2, 16, 16]);
    }

    /// Relative differences between the default network's output on (2n)² and the spectral
    /// interpolation of its output on n², for a smooth input, at n = 32 and n = 64.
    fn interpolation_mismatch(encoding: GridEncoding) -> (f64, f64) {
        let device = Device::default();
        let fno = FnoConfig::new(2, 2).with_seed(4).with_grid_encoding(encoding).init(&device).unwrap();
        let field = |n: usize| {
            Array4::from_shape_fn((2, 2, n, n), |(b, c, i, j)| {
                let (y, x) = (i as f64 / n as f64, j as f64 / n as f64);
                let p = (b * 2 + c) as f64;
                (TAU * (x + 2.0 * y) + p).sin()
                    + 0.5 * (TAU * (3.0 * x - y) + 0.3 * p).cos()
                    + 0.3 * (TAU * 4.0 * y).sin()
            })
        };
        let run = |n: usize| {
            let x = crate::bridge::to_tensor::<4, _>(field(n).view(), &device);
            let t = Tensor::from_data(TensorData::new(vec![0.25_f32, 0.75], [2]), &device);
            let out = fno.forward(x, t, None, None).unwrap();
            crate::bridge::to_array(out).unwrap().into_dimensionality::<Ix4>().unwrap()
        };
        let outputs: Vec<Array4<f64>> = [32, 64, 128].into_iter().map(run).collect();
        let mismatch = |coarse: &Array4<f64>, fine: &Array4<f64>| {
            let n = fine.dim().2;
            let mut worst = 0.0_f64;
            for b in 0..2 {
                for c in 0..2 {
                    let up = resample(coarse.slice(s![b, c, .., ..]), n, n).unwrap();
                    let f = fine.slice(s![b, c, .., ..]).to_owned();
                    worst = worst.max(rel_err(f.as_slice().unwrap(), up.as_slice().unwrap()));
                }
            }
            worst
        };
        (mismatch(&outputs[0], &outputs[1]), mismatch(&outputs[1], &outputs[2]))
    }

    /// With the periodic grid encoding the network is resolution-consistent: the (2n)² output
    /// equals the spectral interpolation of the n² output up to the GELU harmonics above the n²
    /// Nyquist frequency, which for this smooth input are below f32 round-off already at n = 32.
    #[test]
    fn finer_grid_output_is_close_to_the_spectral_interpolation() {
        let (e32, e64) = interpolation_mismatch(GridEncoding::Periodic);
        // Measured 2.3e-6 and 1.7e-6: f32 round-off.
        assert!(e32 < 1e-4, "32² → 64²: relative difference {e32:e}");
        assert!(e64 < 1e-4, "64² → 128²: relative difference {e64:e}");
    }

    /// The reference FNO's linear coordinates are a sawtooth on the periodic domain: the mismatch
    /// is a few percent and only halves per refinement (first order), which is why the periodic
    /// encoding is the default.
    #[test]
    fn linear_grid_coordinates_converge_only_at_first_order() {
        let (e32, e64) = interpolation_mismatch(GridEncoding::Linear);
        // Measured 2.8e-2 and 1.3e-2.
        assert!(e32 > 1e-2 && e32 < 5e-2, "32² → 64²: relative difference {e32:e}");
        assert!((1.5..3.0).contains(&(e32 / e64)), "ratio {}", e32 / e64);
    }

    #[test]
    fn every_parameter_gets_a_gradient() {
        let device = Device::default().autodiff();
        let fno = small().init(&device).unwrap();
        let x = normal_tensor([2, 2, 16, 16], 2, 0, &device);
        let cond = normal_tensor([2, 1, 16, 16], 2, 1, &device);
        let params = normal_tensor([2, 1], 2, 2, &device);
        let out = fno.forward(x, times(2, 0.3, &device), Some(cond), Some(params)).unwrap();
        let grads = out.mul(normal_tensor([2, 2, 16, 16], 2, 3, &device)).sum().backward();
        let rms = grad_rms(&fno, &grads);
        // embedding 4, lift 2, lift_time 1, 2 × (spectral 1, pointwise 2, film 2), projection 4.
        assert_eq!(rms.len(), 4 + 2 + 1 + 2 * 5 + 4);
        for (path, g) in rms {
            assert!(g.is_some_and(|g| g > 0.0), "{path}: gradient {g:?}");
        }
    }

    #[test]
    fn time_conditioning_fields_and_parameters_change_the_output() {
        let device = Device::default();
        let fno = small().init(&device).unwrap();
        let x = normal_tensor([1, 2, 16, 16], 3, 0, &device);
        let cond = normal_tensor([1, 1, 16, 16], 3, 1, &device);
        let p = Tensor::<2>::full([1, 1], 0.5, &device);
        let run = |t: f32, cond: Tensor<4>, p: Tensor<2>| {
            values(fno.forward(x.clone(), times(1, t, &device), Some(cond), Some(p)).unwrap())
        };
        let base = run(0.5, cond.clone(), p.clone());
        for (what, other) in [
            ("t", run(0.6, cond.clone(), p.clone())),
            ("cond", run(0.5, cond.clone().mul_scalar(-1.0), p.clone())),
            ("params", run(0.5, cond.clone(), p.clone().add_scalar(1.0))),
        ] {
            let change = rel_err(&other, &base);
            assert!(change > 1e-2, "changing {what} changed the output by only {change:e}");
        }
        // Deterministic: the same inputs give the same output.
        assert_eq!(run(0.5, cond, p), base);
    }

    #[test]
    fn bad_shapes_and_missing_conditioning_are_errors() {
        let device = Device::default();
        let fno = small().init(&device).unwrap();
        let x = Tensor::<4>::zeros([2, 2, 8, 8], &device);
        let t = times(2, 0.5, &device);
        let cond = Tensor::<4>::zeros([2, 1, 8, 8], &device);
        let p = Tensor::<2>::zeros([2, 1], &device);
        let call = |x: Tensor<4>, t: Tensor<1>, c: Option<Tensor<4>>, p: Option<Tensor<2>>| fno.forward(x, t, c, p);
        assert!(call(x.clone(), t.clone(), Some(cond.clone()), Some(p.clone())).is_ok());
        assert!(call(x.clone(), times(1, 0.5, &device), Some(cond.clone()), Some(p.clone())).is_ok());
        let err =
            call(Tensor::zeros([2, 3, 8, 8], &device), t.clone(), Some(cond.clone()), Some(p.clone())).unwrap_err();
        assert!(matches!(err, ModelError::Shape { input: "x", .. }), "{err}");
        let err = call(x.clone(), t.clone(), Some(Tensor::zeros([2, 2, 8, 8], &device)), Some(p.clone())).unwrap_err();
        assert!(matches!(err, ModelError::Shape { input: "cond", .. }), "{err}");
        let err = call(x.clone(), t.clone(), Some(Tensor::zeros([2, 1, 8, 6], &device)), Some(p.clone())).unwrap_err();
        assert!(matches!(err, ModelError::Shape { input: "cond", .. }), "{err}");
        let err = call(x.clone(), t.clone(), None, Some(p.clone())).unwrap_err();
        assert!(matches!(err, ModelError::Conditioning { input: "cond", .. }), "{err}");
        let err = call(x.clone(), t.clone(), Some(cond.clone()), None).unwrap_err();
        assert!(matches!(err, ModelError::Conditioning { input: "params", .. }), "{err}");
        let err = call(x.clone(), t.clone(), Some(cond.clone()), Some(Tensor::zeros([2, 2], &device))).unwrap_err();
        assert!(matches!(err, ModelError::Shape { input: "params", .. }), "{err}");
        let err = call(x.clone(), times(3, 0.5, &device), Some(cond.clone()), Some(p.clone())).unwrap_err();
        assert!(matches!(err, ModelError::Shape { input: "t", .. }), "{err}");
        assert!(err.to_string().contains("`t`"), "{err}");
        let plain = FnoConfig::new(2, 2).with_width(4).with_modes((2, 2)).init(&device).unwrap();
        let err = plain.forward(x, t, Some(cond), None).unwrap_err();
        assert!(matches!(err, ModelError::Conditioning { input: "cond", .. }), "{err}");
        let err = FnoConfig::new(2, 2).with_modes((0, 4)).init(&device).unwrap_err();
        assert!(err.to_string().contains("modes"), "{err}");
        assert!(FnoConfig::new(2, 2).with_output_scale(0.0).init(&device).is_err());
    }

    #[test]
    fn parameter_count_and_summary_match_the_config() {
        let device = Device::default();
        let cfg = FnoConfig::new(2, 2);
        let fno = cfg.init(&device).unwrap();
        assert_eq!(cfg.num_params(), 2_393_186);
        assert_eq!(crate::model::num_params(&fno), cfg.num_params());
        let summary = fno.summary();
        assert_eq!(summary.total(), cfg.num_params());
        let blocks = summary.parts.iter().find(|(name, _)| name == "blocks").unwrap().1;
        assert_eq!(blocks, 4 * (2 * 32 * 32 * 24 * 12 + 33 * 32 + 65 * 64));
        assert!(summary.to_string().starts_with("Fno: 2393186 parameters"));
        let small = small();
        assert_eq!(crate::model::num_params(&small.init(&device).unwrap()), small.num_params());
    }

    #[test]
    fn initial_velocity_is_small_and_seeded() {
        let device = Device::default();
        let x = normal_tensor([4, 2, 32, 32], 6, 0, &device);
        let run = |seed: u64| {
            let fno = FnoConfig::new(2, 2).with_seed(seed).init(&device).unwrap();
            values(fno.forward(x.clone(), times(4, 0.5, &device), None, None).unwrap())
        };
        let out = run(0);
        let rms = (out.iter().map(|v| v * v).sum::<f64>() / out.len() as f64).sqrt();
        // Measured 0.005 (0.05 with `output_scale` 1).
        assert!(rms > 1e-3 && rms < 2e-2, "initial output RMS {rms}");
        assert_eq!(run(0), out);
        assert!(rel_err(&run(1), &out) > 0.1);
    }
}
