//! A CPU training engine for the [`Fno`]: the forward pass of [`super::FnoCpu`] that keeps its
//! activations, and the backward pass written by hand, on flat `f32` parameter buffers.
//!
//! For the flow-matching loss `L = mean((v_θ(x, t; c, p) − u)²)` over a batch, [`FnoGrad`] returns
//! `L` and `∂L/∂θ` for every parameter of the network (time-embedding MLP, lifting and `L_t`,
//! spectral mixing weights, pointwise maps, FiLM maps, projection), laid out as burn visits them
//! ([`FlatParams`]), so that the same buffer is a burn [`Fno`] again. The backward pass is the
//! chain rule through the module docs' equations of [`Fno`]:
//!
//! ```text
//! dQ₂ = Σ dout gᵀ,  dg = Q₂ᵀ dout,  dhid = dg ⊙ GELU'(hid),  dQ₁ = Σ dhid h_Lᵀ,  dh_L = Q₁ᵀ dhid
//! dy_l = dh_{l+1} ⊙ GELU'(y_l),  dγ_l = Σ_xy dy_l ⊙ v_l,  dβ_l = Σ_xy dy_l,  dv_l = dy_l (1 + γ_l)
//! dW_l = Σ dv_l h_lᵀ,  dh_l = W_lᵀ dv_l + K_lᵀ dv_l          (K_lᵀ: the transposed DFT products)
//! de = Σ_l dFiLM_l F_lᵀ + dL_t-term,  then back through GELU and the embedding MLP
//! ```
//!
//! Work is split into shards of the batch, evaluated in parallel (rayon) and each sequentially
//! with ndarray GEMMs ([`spectral`] for the spectral convolution and its adjoint). Each shard's
//! gradient is that of its part of the loss sum (`Σ_shard (v − u)² / N` with `N` the batch's
//! value count), so the batch gradient is the sum over shards: the seam where a data-parallel
//! run would all-reduce. Arithmetic is `f32` as in burn; the loss, the FiLM and bias reductions
//! over the grid are accumulated in `f64`. GELU is the rational-`erf` GELU of [`super::FnoCpu`].
//!
//! Covered: everything [`Fno::forward`] computes except the output Leray layer (conditioning
//! channels, scalar parameters, both grid encodings, any grid with `H, W ≥ 1`). Networks with a
//! Leray output layer are refused ([`FnoGrad::new`] returns an error) and train through burn's
//! autodiff, as does the PBFM residual loss (see [`crate::train::trainer`]).
//!
//! [`FnoGrad::input_vjp`] returns `(∂⟨w, v_θ(x, t)⟩/∂x)` for a cotangent `w`, the product that
//! Hutchinson divergence estimates and guidance need, at the cost of one forward and backward pass.

mod pass;
mod spectral;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ndarray::Array2;
use rayon::prelude::*;

use super::flat::{FlatParams, Slot};
use super::spectral_conv::dft_matrices;
use super::{Fno, GridEncoding, ModelError};
use spectral::Basis;

/// The sizes of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    /// State, conditioning and grid channels of the lifting input.
    c: usize,
    nc: usize,
    grid_ch: usize,
    /// Scalar parameters and time frequencies of the embedding.
    np: usize,
    nf: usize,
    /// Embedding dimension, width, projection width, output channels.
    e: usize,
    w: usize,
    proj: usize,
    co: usize,
    layers: usize,
    m1: usize,
    m2: usize,
}

impl Dims {
    fn cl(&self) -> usize {
        self.c + self.nc + self.grid_ch
    }

    fn k(&self) -> usize {
        2 * self.m1 * self.m2
    }

    /// The parameter shapes in burn's visiting order (see the slot constants).
    fn expected(&self) -> Vec<Vec<usize>> {
        let (e, w) = (self.e, self.w);
        let mut v =
            vec![vec![2 * self.nf + self.np, e], vec![e], vec![e, e], vec![e], vec![w, self.cl()], vec![w], vec![e, w]];
        for _ in 0..self.layers {
            v.extend([vec![2, w, w, 2 * self.m1, self.m2], vec![w, w], vec![w], vec![e, 2 * w], vec![2 * w]]);
        }
        v.extend([vec![self.proj, w], vec![self.proj], vec![self.co, self.proj], vec![self.co]]);
        v
    }
}

// Slot indices (burn's visiting order of `Fno`'s fields).
const EMB_HIDDEN_W: usize = 0;
const EMB_HIDDEN_B: usize = 1;
const EMB_OUT_W: usize = 2;
const EMB_OUT_B: usize = 3;
const LIFT_W: usize = 4;
const LIFT_B: usize = 5;
const LIFT_TIME: usize = 6;
const BLOCKS: usize = 7;

/// Slot of part `j` (0 spectral, 1 pointwise weight, 2 pointwise bias, 3 FiLM weight, 4 FiLM
/// bias) of block `l`.
fn block_slot(l: usize, j: usize) -> usize {
    BLOCKS + 5 * l + j
}

/// Slot of part `j` (0 `Q₁` weight, 1 `Q₁` bias, 2 `Q₂` weight, 3 `Q₂` bias) of the projection.
fn proj_slot(layers: usize, j: usize) -> usize {
    BLOCKS + 5 * layers + j
}

/// One batch of inputs of the loss or of a vector–Jacobian product, as row-major `f32` slices.
#[derive(Debug, Clone, Copy)]
pub struct GradBatch<'a> {
    /// `(B, H, W)`.
    pub shape: (usize, usize, usize),
    /// States `[B, in_channels, H, W]`.
    pub x: &'a [f32],
    /// Times `[B]`.
    pub t: &'a [f32],
    /// Conditioning fields `[B, cond_channels, H, W]` (exactly when the network has them).
    pub cond: Option<&'a [f32]>,
    /// Scalar parameters `[B, scalar_params]` (exactly when the network has them).
    pub params: Option<&'a [f32]>,
    /// The regression target `u` `[B, out_channels, H, W]` (the loss), or the cotangent `w` (a
    /// vector–Jacobian product).
    pub target: &'a [f32],
}

/// The gradient of one shard of a batch: `Σ_shard (v − u)²` and its gradient divided by the
/// batch's value count.
#[derive(Debug, Clone)]
pub struct ShardGrad {
    /// `Σ (v − u)²` over the shard's values, in `f64`.
    pub loss_sum: f64,
    /// The gradient, laid out as [`FnoGrad::slots`].
    pub grad: Vec<f32>,
}

/// The training engine of one [`Fno`] architecture; see the module docs.
#[derive(Debug)]
pub struct FnoGrad {
    dims: Dims,
    slots: Vec<Slot>,
    omega: Vec<f32>,
    grid: Option<GridEncoding>,
    bases: Mutex<HashMap<(usize, usize), Arc<Basis>>>,
    pool: pass::Pool,
}

impl FnoGrad {
    /// The engine for `fno`'s architecture (the weights themselves are passed to each call).
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming `leray_domain` for a network with a Leray output layer
    /// (not covered: train it through burn); [`ModelError::Shape`] if the parameters cannot be
    /// read or do not have the expected shapes.
    pub fn new(fno: &Fno) -> Result<Self, ModelError> {
        if fno.leray_domain().is_some() {
            return Err(ModelError::config("leray_domain", "is not covered by the CPU training engine"));
        }
        let flat = FlatParams::of(fno)?;
        let grid = fno.grid_encoding();
        let omega = fno.embedding.frequency_values();
        let (m1, m2) = fno.modes();
        let dims = Dims {
            c: fno.in_channels(),
            nc: fno.cond_channels(),
            grid_ch: grid.map_or(0, GridEncoding::channels),
            np: fno.scalar_params(),
            nf: omega.len(),
            e: fno.embedding.dim(),
            w: fno.width(),
            proj: fno.project_hidden.weight.dims()[0],
            co: fno.out_channels(),
            layers: fno.blocks.len(),
            m1,
            m2,
        };
        let got: Vec<Vec<usize>> = flat.slots.iter().map(|s| s.dims.clone()).collect();
        if got != dims.expected() {
            return Err(ModelError::shape("parameters", format!("{:?}", dims.expected()), &[got.len()]));
        }
        Ok(Self {
            dims,
            slots: flat.slots,
            omega,
            grid,
            bases: Mutex::new(HashMap::new()),
            pool: pass::Pool::default(),
        })
    }

    /// The layout of parameter and gradient buffers (burn's visiting order of the [`Fno`]).
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.slots.last().map_or(0, |s| s.range().end)
    }

    fn basis(&self, h: usize, w: usize) -> Result<Arc<Basis>, ModelError> {
        if let Some(b) = self.bases.lock().ok().and_then(|m| m.get(&(h, w)).cloned()) {
            return Ok(b);
        }
        let (m1, m2) = (self.dims.m1, self.dims.m2);
        let [fx, fy, gy, gx] = dft_matrices((m1, m2), (h, w), (h, w))?;
        let mat = |v: Vec<f64>, r: usize, c: usize| {
            Array2::from_shape_vec((r, c), v.into_iter().map(|x| x as f32).collect())
                .map_err(|e| ModelError::shape("basis", e.to_string(), &[r, c]))
        };
        let grid = match self.grid {
            Some(enc) => {
                let f = enc.features(h, w, &burn::tensor::Device::default());
                let v = f.try_into_vec_as::<f32>().map_err(|_| ModelError::shape("grid", "f32 data", &[h, w]))?;
                Some(
                    Array2::from_shape_vec((enc.channels(), h * w), v)
                        .map_err(|e| ModelError::shape("grid", e.to_string(), &[h, w]))?,
                )
            }
            None => None,
        };
        let basis = Arc::new(Basis {
            h,
            w,
            m1,
            m2,
            fx: mat(fx, w, 2 * m2)?,
            fy: mat(fy, 2 * h, 4 * m1)?,
            gy: mat(gy, 4 * m1, 2 * h)?,
            gx: mat(gx, 2 * m2, w)?,
            grid,
        });
        if let Ok(mut m) = self.bases.lock() {
            m.insert((h, w), basis.clone());
        }
        Ok(basis)
    }

    fn check(&self, theta: &[f32], batch: &GradBatch) -> Result<(), ModelError> {
        let d = &self.dims;
        let (b, h, w) = batch.shape;
        let hw = h * w;
        if theta.len() != self.num_params() {
            return Err(ModelError::shape("theta", format!("[{}]", self.num_params()), &[theta.len()]));
        }
        if b == 0 || hw == 0 {
            return Err(ModelError::shape("x", "[B, C, H, W] with B, H, W ≥ 1", &[b, d.c, h, w]));
        }
        let sized = |name: &'static str, got: Option<usize>, want: usize| match got {
            Some(n) if n == want => Ok(()),
            None if want == 0 => Ok(()),
            Some(n) => Err(ModelError::shape(name, format!("{want} values"), &[n])),
            None => Err(ModelError::Conditioning { input: name, reason: "missing".to_string() }),
        };
        sized("x", Some(batch.x.len()), b * d.c * hw)?;
        sized("t", Some(batch.t.len()), b)?;
        sized("cond", batch.cond.map(<[f32]>::len), b * d.nc * hw)?;
        sized("params", batch.params.map(<[f32]>::len), b * d.np)?;
        sized("target", Some(batch.target.len()), b * d.co * hw)
    }

    /// The per-shard losses and gradients of `mean((v_θ − u)²)` over the batch, `shards` of
    /// them (contiguous runs of samples; at most one per sample), computed in parallel.
    ///
    /// # Errors
    /// [`ModelError::Shape`] / [`ModelError::Conditioning`] when a slice does not match the
    /// network and `batch.shape`.
    pub fn shard_grads(&self, theta: &[f32], batch: &GradBatch, shards: usize) -> Result<Vec<ShardGrad>, ModelError> {
        self.check(theta, batch)?;
        let (b, h, w) = batch.shape;
        let basis = self.basis(h, w)?;
        let net = pass::Net::new(&self.dims, &self.slots, theta, &self.omega, &basis, &self.pool)?;
        let n = shards.clamp(1, b);
        let scale = 2.0 / (b * self.dims.co * h * w) as f32;
        let out: Result<Vec<ShardGrad>, ModelError> = (0..n)
            .into_par_iter()
            .map(|s| {
                let range = (s * b / n)..((s + 1) * b / n);
                net.shard(batch, range, pass::Head::Mse { scale }, false)
                    .map(|(loss_sum, grad, _)| ShardGrad { loss_sum, grad })
            })
            .collect();
        net.recycle();
        out
    }

    /// The loss `mean((v_θ − u)²)` and its gradient (summed over shards, one per rayon thread),
    /// written to `grad`.
    ///
    /// # Errors
    /// As [`FnoGrad::shard_grads`], and [`ModelError::Shape`] if `grad` is not `num_params` long.
    pub fn loss_and_grad(&self, theta: &[f32], batch: &GradBatch, grad: &mut [f32]) -> Result<f64, ModelError> {
        if grad.len() != self.num_params() {
            return Err(ModelError::shape("grad", format!("[{}]", self.num_params()), &[grad.len()]));
        }
        let shards = self.shard_grads(theta, batch, rayon::current_num_threads())?;
        grad.fill(0.0);
        let mut loss = 0.0;
        for s in shards {
            loss += s.loss_sum;
            for (g, v) in grad.iter_mut().zip(&s.grad) {
                *g += v;
            }
            self.pool.give(s.grad);
        }
        let (b, h, w) = batch.shape;
        Ok(loss / (b * self.dims.co * h * w) as f64)
    }

    /// The vector–Jacobian product `∂⟨w, v_θ(x, t; c, p)⟩/∂x` with the cotangent `w` passed as
    /// `batch.target`; shape `[B, in_channels, H, W]`.
    ///
    /// # Errors
    /// As [`FnoGrad::shard_grads`].
    pub fn input_vjp(&self, theta: &[f32], batch: &GradBatch) -> Result<Vec<f32>, ModelError> {
        self.check(theta, batch)?;
        let (b, h, w) = batch.shape;
        let basis = self.basis(h, w)?;
        let net = pass::Net::new(&self.dims, &self.slots, theta, &self.omega, &basis, &self.pool)?;
        let n = rayon::current_num_threads().clamp(1, b);
        let parts: Vec<Vec<f32>> = (0..n)
            .into_par_iter()
            .map(|s| {
                let range = (s * b / n)..((s + 1) * b / n);
                net.shard(batch, range, pass::Head::Cotangent, true).map(|(_, _, dx)| dx)
            })
            .collect::<Result<_, _>>()?;
        net.recycle();
        Ok(parts.concat())
    }
}

#[cfg(test)]
mod tests;
