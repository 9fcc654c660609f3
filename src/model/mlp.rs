//! A small MLP velocity field `v(x, t)` for low-dimensional toy problems (`x ∈ ℝᵈ`).
//!
//! ```text
//! e = TimeEmbedding(t)
//! h₀ = GELU(W₀ [x, e] + b₀),   h_l = GELU(W_l h_{l−1} + b_l)  (l = 1 … L−1),   v = W_L h_{L−1} + b_L
//! ```

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use super::{ModelError, ModelSummary, ParamInit, TimeEmbedding, TimeEmbeddingConfig, ensure_at_least};

/// Configuration of an [`Mlp`] velocity field.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Dimension `d` of the state `x`.
    pub dim: usize,
    /// Width of the hidden layers.
    #[config(default = 64)]
    pub hidden: usize,
    /// Number of hidden layers `L ≥ 1`.
    #[config(default = 3)]
    pub layers: usize,
    /// Dimension of the time embedding.
    #[config(default = 32)]
    pub time_embedding_dim: usize,
    /// Seed of the weights' random streams.
    #[config(default = 0)]
    pub seed: u64,
}

impl MlpConfig {
    /// Checks that every size is positive.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the offending field.
    pub fn validate(&self) -> Result<(), ModelError> {
        ensure_at_least("dim", self.dim, 1)?;
        ensure_at_least("hidden", self.hidden, 1)?;
        ensure_at_least("layers", self.layers, 1)?;
        ensure_at_least("time_embedding_dim", self.time_embedding_dim, 1)
    }

    /// Builds the network with weights drawn from the config's seed.
    ///
    /// # Errors
    /// As [`MlpConfig::validate`].
    pub fn init(&self, device: &Device) -> Result<Mlp, ModelError> {
        self.validate()?;
        let mut init = ParamInit::new(self.seed);
        let embedding = self.embedding_config().init_with(&mut init, device);
        let (d, w, e) = (self.dim, self.hidden, self.time_embedding_dim);
        let input = init.linear(d + e, w, true, 1.0, device);
        let hidden = (1..self.layers).map(|_| init.linear(w, w, true, 1.0, device)).collect();
        let output = init.linear(w, d, true, 1.0, device);
        Ok(Mlp { embedding, input, hidden, output, dim: d })
    }

    fn embedding_config(&self) -> TimeEmbeddingConfig {
        TimeEmbeddingConfig::new(self.time_embedding_dim)
    }

    /// Number of parameters the network will have.
    pub fn num_params(&self) -> usize {
        let (d, w, e) = (self.dim, self.hidden, self.time_embedding_dim);
        self.embedding_config().num_params() + (d + e + 1) * w + (self.layers - 1) * (w + 1) * w + (w + 1) * d
    }
}

/// MLP velocity field `v(x, t)`; see the module docs.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Time embedding.
    pub embedding: TimeEmbedding,
    /// `[x, e] → hidden`.
    pub input: Linear,
    /// `hidden → hidden`, `L − 1` of them.
    pub hidden: Vec<Linear>,
    /// `hidden → d`.
    pub output: Linear,
    dim: usize,
}

impl Mlp {
    /// The velocity at states `x` and times `t`.
    ///
    /// # Shapes
    /// - x: `[B, d]`
    /// - t: `[B]`, or `[1]` for one time shared by the batch
    /// - output: `[B, d]`
    ///
    /// # Errors
    /// [`ModelError::Shape`] if `x` is not `[B, d]` or `t` is neither `[B]` nor `[1]`.
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>) -> Result<Tensor<2>, ModelError> {
        let dims = x.dims();
        let [b, d] = dims;
        if d != self.dim {
            return Err(ModelError::shape("x", format!("[B, {}]", self.dim), &dims));
        }
        let t = broadcast_time(t, b)?;
        let e = self.embedding.forward(t, None)?;
        let mut h = gelu(self.input.forward(Tensor::cat(vec![x, e], 1)));
        for layer in &self.hidden {
            h = gelu(layer.forward(h));
        }
        Ok(self.output.forward(h))
    }

    /// Parameter counts per part.
    pub fn summary(&self) -> ModelSummary {
        ModelSummary::of("Mlp", self)
    }
}

/// `t` as a `[b]` tensor: `[b]` passes, `[1]` is repeated.
pub(crate) fn broadcast_time(t: Tensor<1>, b: usize) -> Result<Tensor<1>, ModelError> {
    match t.dims() {
        [n] if n == b => Ok(t),
        [1] => Ok(t.expand([b])),
        dims => Err(ModelError::shape("t", format!("[{b}] or [1]"), &dims)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::test_util::{grad_rms, normal_tensor, values};
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::TensorData;

    #[test]
    fn shapes_counts_and_errors() {
        let device = Device::default();
        let cfg = MlpConfig::new(3).with_hidden(16).with_layers(2).with_time_embedding_dim(8);
        let m = cfg.init(&device).unwrap();
        let x = Tensor::<2>::zeros([5, 3], &device);
        assert_eq!(m.forward(x.clone(), Tensor::zeros([5], &device)).unwrap().dims(), [5, 3]);
        assert_eq!(m.forward(x.clone(), Tensor::zeros([1], &device)).unwrap().dims(), [5, 3]);
        assert!(matches!(m.forward(x.clone(), Tensor::zeros([4], &device)), Err(ModelError::Shape { input: "t", .. })));
        assert!(matches!(
            m.forward(Tensor::zeros([5, 2], &device), Tensor::zeros([5], &device)),
            Err(ModelError::Shape { input: "x", .. })
        ));
        assert_eq!(crate::model::num_params(&m), cfg.num_params());
        assert_eq!(m.summary().total(), cfg.num_params());
        assert!(MlpConfig::new(3).with_layers(0).init(&device).is_err());
    }

    #[test]
    fn every_parameter_gets_a_gradient() {
        let device = Device::default().autodiff();
        let m = MlpConfig::new(2).with_hidden(16).with_layers(2).init(&device).unwrap();
        let x = normal_tensor([8, 2], 1, 0, &device);
        let t =
            Tensor::<1>::from_data(TensorData::new((0..8).map(|i| i as f32 / 8.0).collect::<Vec<_>>(), [8]), &device);
        let grads = m.forward(x, t).unwrap().powi_scalar(2).sum().backward();
        let rms = grad_rms(&m, &grads);
        // Weight and bias of: 2 embedding layers, input, 1 hidden, output.
        assert_eq!(rms.len(), 2 * 5);
        for (path, g) in rms {
            assert!(g.is_some_and(|g| g > 0.0), "{path}: gradient {g:?}");
        }
    }

    /// Fits `v(x, t) = A x + b t` with AdamW: the loss must fall by more than 100×.
    #[test]
    fn fits_a_linear_velocity_field_with_adamw() {
        let device = Device::default().autodiff();
        let mut model =
            MlpConfig::new(2).with_hidden(64).with_layers(2).with_time_embedding_dim(16).init(&device).unwrap();
        let n = 256;
        let x = normal_tensor([n, 2], 9, 0, &device);
        let t = normal_tensor([n], 9, 1, &device).mul_scalar(0.3).add_scalar(0.5).clamp(0.0, 1.0);
        let a = Tensor::<2>::from_data(TensorData::new(vec![0.5_f32, 1.0, -1.0, 0.3], [2, 2]), &device); // Aᵀ
        let b = Tensor::<2>::from_data(TensorData::new(vec![1.0_f32, -2.0], [1, 2]), &device);
        let target = x.clone().matmul(a) + t.clone().reshape([n, 1]).mul(b);
        let mut optim = AdamWConfig::new().init();
        let mut losses = Vec::new();
        for _ in 0..300 {
            let v = model.forward(x.clone(), t.clone()).unwrap();
            let loss = (v - target.clone()).powi_scalar(2).mean();
            losses.push(values(loss.clone())[0]);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
        let (first, last) = (losses[0], losses[losses.len() - 1]);
        // Measured: 2.07 -> 1.3e-4.
        assert!(last < first / 100.0, "loss {first} -> {last}");
    }
}
