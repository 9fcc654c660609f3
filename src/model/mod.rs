//! Velocity-field networks for flow matching: a Fourier neural operator for fields on grids and a
//! small MLP for low-dimensional toy problems.
//!
//! A flow-matching model is a velocity field `v_θ(x, t)` with `t ∈ [0, 1]` (t = 0 the source, t = 1
//! the data). Time enters through [`TimeEmbedding`]: sinusoidal features `(sin ω_j t, cos ω_j t)`
//! with geometric frequencies `ω_j`, followed by an MLP.
//!
//! - [`SpectralConv2d`]: the Fourier layer `(K h)(x) = F⁻¹[ W(k) · (F h)(k) ](x)` on the lowest
//!   modes, written as small DFT-matrix products so that it runs on any grid size and any backend.
//! - [`Fno`]: lifting, Fourier layers with FiLM time conditioning, projection; resolution-free.
//! - [`Mlp`]: `v(x, t)` for `x ∈ ℝᵈ`.
//!
//! Parameters are initialised from [`fieldflow_pde::rng`] streams keyed by the config's `seed`, never
//! from burn's global generator, so the same config builds the same network everywhere.

use std::collections::BTreeMap;
use std::fmt;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use fieldflow_pde::rng::{SampleRng, substream};
use rand::RngExt;

pub mod embedding;
pub mod flat;
pub mod fno;
pub mod fno_cpu;
pub mod fno_train;
pub mod leray;
pub mod mlp;
pub mod spectral_conv;

pub use embedding::{TimeEmbedding, TimeEmbeddingConfig};
pub use flat::{FlatParams, Slot};
pub use fno::{Fno, FnoConfig, FourierBlock, GridEncoding};
pub use fno_cpu::FnoCpu;
pub use fno_train::{FnoGrad, GradBatch, ShardGrad};
pub use leray::LerayLayer;
pub use mlp::{Mlp, MlpConfig};
pub use spectral_conv::{SpectralBasis, SpectralConv2d, SpectralConv2dConfig};

/// Errors of model construction and of forward calls on user-supplied tensors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of range.
    #[error("invalid model config: `{field}` {reason}")]
    InvalidConfig {
        /// The offending config field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An input tensor has the wrong shape.
    #[error("input `{input}` has shape {got:?}, expected {expected}")]
    Shape {
        /// The offending forward argument.
        input: &'static str,
        /// The expected shape, e.g. `[B, 3, H, W]`.
        expected: String,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// An optional input is missing although the model needs it, or present although it does not.
    #[error("input `{input}`: {reason}")]
    Conditioning {
        /// The offending forward argument.
        input: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl ModelError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig { field, reason: reason.into() }
    }

    pub(crate) fn shape(input: &'static str, expected: impl Into<String>, got: &[usize]) -> Self {
        Self::Shape { input, expected: expected.into(), got: got.to_vec() }
    }
}

/// Checks that a config value is at least `min`.
pub(crate) fn ensure_at_least(field: &'static str, value: usize, min: usize) -> Result<(), ModelError> {
    if value < min { Err(ModelError::config(field, format!("= {value} must be at least {min}"))) } else { Ok(()) }
}

/// The number of trainable scalars of a module (the sum of its parameter tensors' sizes).
pub fn num_params<M: Module>(module: &M) -> usize {
    module.num_params()
}

/// Parameter counts of a network, grouped by its top-level fields. `Display` prints a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    /// The network's name, e.g. `Fno`.
    pub name: &'static str,
    /// `(top-level field, parameters)` in field order.
    pub parts: Vec<(String, usize)>,
}

impl ModelSummary {
    /// Counts the parameters of `module`, grouped by top-level field.
    pub fn of<M: Module>(name: &'static str, module: &M) -> Self {
        let mut visitor = CountVisitor::default();
        module.visit(&mut visitor);
        Self { name, parts: visitor.order.into_iter().map(|k| (k.clone(), visitor.counts[&k])).collect() }
    }

    /// Total number of parameters.
    pub fn total(&self) -> usize {
        self.parts.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} parameters", self.name, self.total())?;
        for (part, n) in &self.parts {
            writeln!(f, "  {part:<12} {n:>10}")?;
        }
        Ok(())
    }
}

/// Sums parameter sizes under the first path component.
#[derive(Default)]
struct CountVisitor {
    path: Vec<String>,
    order: Vec<String>,
    counts: BTreeMap<String, usize>,
}

impl ModuleVisitor for CountVisitor {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let key = self.path.first().cloned().unwrap_or_else(|| "(root)".to_string());
        if !self.counts.contains_key(&key) {
            self.order.push(key.clone());
        }
        *self.counts.entry(key).or_insert(0) += param.lazy_shape().num_elements();
    }
}

/// Purpose tag of the random streams that initialise network parameters (see
/// [`fieldflow_pde::rng::substream`]), so they never coincide with a data sample's stream.
const INIT_PURPOSE: u64 = 0x4d4f_4445_4c49_4e49; // "MODELINI"

/// Seeded parameter initialiser: the `n`-th tensor it makes draws from stream `n` of the seed.
#[derive(Debug, Clone)]
pub(crate) struct ParamInit {
    seed: u64,
    next: u64,
}

impl ParamInit {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed, next: 0 }
    }

    fn rng(&mut self) -> SampleRng {
        let rng = substream(self.seed, self.next, INIT_PURPOSE);
        self.next += 1;
        rng
    }

    /// A trainable tensor with entries uniform in `[-bound, bound)`.
    pub(crate) fn uniform<const D: usize>(
        &mut self,
        shape: [usize; D],
        bound: f64,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let mut rng = self.rng();
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| (bound * (2.0 * rng.random::<f64>() - 1.0)) as f32).collect();
        Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// A `d_in → d_out` [`Linear`] layer with burn's (and PyTorch's) default distribution:
    /// weight and bias uniform in `±1/√d_in`, weight scaled by `scale`.
    pub(crate) fn linear(&mut self, d_in: usize, d_out: usize, bias: bool, scale: f64, device: &Device) -> Linear {
        let bound = 1.0 / (d_in.max(1) as f64).sqrt();
        let weight = self.uniform([d_in, d_out], bound * scale, device);
        let bias = bias.then(|| self.uniform([d_out], bound, device));
        Linear { weight, bias }
    }

    /// A channel-mixing [`Pointwise`] layer, initialised as [`ParamInit::linear`] with weight and
    /// bias scaled by `scale`.
    pub(crate) fn pointwise(&mut self, d_in: usize, d_out: usize, scale: f64, device: &Device) -> Pointwise {
        let bound = scale / (d_in.max(1) as f64).sqrt();
        let weight = self.uniform([d_out, d_in], bound, device);
        let bias = self.uniform([d_out], bound, device);
        Pointwise { weight, bias }
    }
}

/// A pointwise (1×1-convolution) linear map over the channel axis of a `[B, C, H, W]` field:
/// `out[b, o, y, x] = Σ_i weight[o, i] · in[b, i, y, x] + bias[o]`.
///
/// It works channels-first (one batched matrix product per call), so fields never need to be
/// permuted to channels-last.
#[derive(Module, Debug)]
pub struct Pointwise {
    /// `[out_channels, in_channels]`.
    pub weight: Param<Tensor<2>>,
    /// `[out_channels]`.
    pub bias: Param<Tensor<1>>,
}

impl Pointwise {
    /// Applies the map.
    ///
    /// # Shapes
    /// - input: `[B, in_channels, H, W]`
    /// - output: `[B, out_channels, H, W]`
    ///
    /// # Panics
    /// If the input does not have `in_channels` channels (callers validate shapes first).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let weight = self.weight.val();
        let [out, _] = weight.dims();
        let y = weight.unsqueeze::<3>().matmul(x.reshape([b, c, h * w]));
        (y + self.bias.val().reshape([1, out, 1])).reshape([b, out, h, w])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_util {
    //! Helpers shared by the model tests.

    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{Device, Gradients, Tensor, TensorData};
    use fieldflow_pde::rng::stream;
    use ndarray::{ArrayD, IxDyn};
    use rand::RngExt;
    use rand_distr::StandardNormal;

    /// Standard-normal `f64` array of the given shape from stream `(seed, index)`.
    pub fn normal_array(shape: &[usize], seed: u64, index: u64) -> ArrayD<f64> {
        let mut rng = stream(seed, index);
        ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.sample(StandardNormal))
    }

    /// Standard-normal `f32` tensor from stream `(seed, index)`.
    pub fn normal_tensor<const D: usize>(shape: [usize; D], seed: u64, index: u64, device: &Device) -> Tensor<D> {
        let a = normal_array(&shape, seed, index);
        let values: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// The values of a tensor as `f64`.
    pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
    }

    /// `‖a − b‖₂ / ‖b‖₂`.
    pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        let den: f64 = b.iter().map(|y| y * y).sum();
        (num / den).sqrt()
    }

    /// For every float parameter, its path and the root-mean-square of its gradient (`None` when
    /// it has no gradient).
    pub fn grad_rms<M: Module>(module: &M, grads: &Gradients) -> Vec<(String, Option<f64>)> {
        struct V<'a> {
            grads: &'a Gradients,
            path: Vec<String>,
            out: Vec<(String, Option<f64>)>,
        }
        impl ModuleVisitor for V<'_> {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let g = param.val().grad(self.grads).map(|g| {
                    let v = values(g);
                    (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
                });
                self.out.push((self.path.join("."), g));
            }
        }
        let mut v = V { grads, path: Vec::new(), out: Vec::new() };
        module.visit(&mut v);
        v.out
    }
}
