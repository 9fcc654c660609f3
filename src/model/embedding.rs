//! Time embedding: sinusoidal features of `t ∈ [0, 1]` followed by a two-layer MLP.
//!
//! ```text
//! φ(t) = (sin ω_0 t, …, sin ω_{n−1} t, cos ω_0 t, …, cos ω_{n−1} t),   ω_j = ω_max^{j/(n−1)}
//! e(t, p) = W₂ GELU(W₁ [φ(t), p] + b₁) + b₂
//! ```
//!
//! The frequencies are geometric from 1 to `ω_max` (1000 by default, the range of the diffusion-model
//! embedding `sin(1000 t / 10000^{j/n})`): the lowest pair maps `[0, 1]` injectively onto an arc of
//! the circle, the highest resolves time differences of about `1/ω_max`. Optional extra scalar
//! inputs `p` (e.g. a viscosity) are appended to `φ(t)`, making `e` a joint conditioning vector.
//! `e` is smooth in `t`, with `|de/dt| ≤ ‖W₂‖ · max GELU' · ‖W₁‖ · (Σ_j ω_j²)^{1/2}`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor, TensorData};

use super::{ModelError, ParamInit, ensure_at_least};

/// Configuration of a [`TimeEmbedding`].
#[derive(Config, Debug)]
pub struct TimeEmbeddingConfig {
    /// Output (and hidden) dimension `d`.
    pub dim: usize,
    /// Number of frequencies `n` (the sinusoidal features have `2n` entries).
    #[config(default = 16)]
    pub frequencies: usize,
    /// Highest angular frequency `ω_max` (rad per unit of `t`).
    #[config(default = 1000.0)]
    pub max_frequency: f64,
    /// Number of extra scalar inputs appended to the sinusoidal features.
    #[config(default = 0)]
    pub extra_inputs: usize,
    /// Seed of the weights' random streams.
    #[config(default = 0)]
    pub seed: u64,
}

impl TimeEmbeddingConfig {
    /// Checks the sizes and the frequency range.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the offending field.
    pub fn validate(&self) -> Result<(), ModelError> {
        ensure_at_least("dim", self.dim, 1)?;
        ensure_at_least("frequencies", self.frequencies, 1)?;
        if !(self.max_frequency.is_finite() && self.max_frequency >= 1.0) {
            return Err(ModelError::config(
                "max_frequency",
                format!("= {} must be finite and ≥ 1", self.max_frequency),
            ));
        }
        Ok(())
    }

    /// Builds the embedding with weights drawn from the config's seed.
    ///
    /// # Errors
    /// As [`TimeEmbeddingConfig::validate`].
    pub fn init(&self, device: &Device) -> Result<TimeEmbedding, ModelError> {
        self.validate()?;
        Ok(self.init_with(&mut ParamInit::new(self.seed), device))
    }

    pub(crate) fn init_with(&self, init: &mut ParamInit, device: &Device) -> TimeEmbedding {
        let n = self.frequencies;
        let omega: Vec<f32> = (0..n)
            .map(|j| if n == 1 { 1.0 } else { self.max_frequency.powf(j as f64 / (n - 1) as f64) as f32 })
            .collect();
        TimeEmbedding {
            frequencies: Tensor::from_data(TensorData::new(omega, [1, n]), device),
            hidden: init.linear(2 * n + self.extra_inputs, self.dim, true, 1.0, device),
            output: init.linear(self.dim, self.dim, true, 1.0, device),
            extra_inputs: self.extra_inputs,
        }
    }

    /// Number of parameters, `(2n + p) d + d + d² + d`.
    pub fn num_params(&self) -> usize {
        let d = self.dim;
        (2 * self.frequencies + self.extra_inputs + 1) * d + (d + 1) * d
    }
}

/// Sinusoidal features of `t` (and optional extra scalars) through a two-layer GELU MLP.
#[derive(Module, Debug)]
pub struct TimeEmbedding {
    /// Angular frequencies `ω_j`, `[1, n]` (a constant, not trained).
    frequencies: Tensor<2>,
    /// `2n + p → d`.
    pub hidden: Linear,
    /// `d → d`.
    pub output: Linear,
    extra_inputs: usize,
}

impl TimeEmbedding {
    /// Output dimension `d`.
    pub fn dim(&self) -> usize {
        self.output.weight.dims()[1]
    }

    /// Number of extra scalar inputs `p`.
    pub fn extra_inputs(&self) -> usize {
        self.extra_inputs
    }

    /// The angular frequencies `ω_j` (for engines that evaluate the embedding themselves).
    pub(crate) fn frequency_values(&self) -> Vec<f32> {
        self.frequencies.clone().try_into_vec_as::<f32>().unwrap_or_default()
    }

    /// The sinusoidal features `φ(t)`.
    ///
    /// # Shapes
    /// - t: `[B]`
    /// - output: `[B, 2n]`
    pub fn features(&self, t: Tensor<1>) -> Tensor<2> {
        let [b] = t.dims();
        let angles = t.reshape([b, 1]).mul(self.frequencies.clone());
        Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
    }

    /// Embeds times `t` with optional extra scalars.
    ///
    /// # Shapes
    /// - t: `[B]`
    /// - extra: `[B, p]`, required when `p > 0`, absent otherwise
    /// - output: `[B, d]`
    ///
    /// # Errors
    /// [`ModelError::Conditioning`] if `extra` is missing or unexpected, [`ModelError::Shape`] if it
    /// is not `[B, p]`.
    pub fn forward(&self, t: Tensor<1>, extra: Option<Tensor<2>>) -> Result<Tensor<2>, ModelError> {
        let [b] = t.dims();
        let extra = match (extra, self.extra_inputs) {
            (None, 0) => None,
            (Some(p), n) if n > 0 => {
                let dims = p.dims();
                if dims != [b, n] {
                    return Err(ModelError::shape("params", format!("[{b}, {n}]"), &dims));
                }
                Some(p)
            }
            (None, n) => {
                return Err(ModelError::Conditioning {
                    input: "params",
                    reason: format!("the model expects {n} scalar parameters but none were given"),
                });
            }
            (Some(_), _) => {
                return Err(ModelError::Conditioning {
                    input: "params",
                    reason: "the model takes no scalar parameters (scalar_params = 0)".to_string(),
                });
            }
        };
        let features = match extra {
            Some(p) => Tensor::cat(vec![self.features(t), p], 1),
            None => self.features(t),
        };
        Ok(self.output.forward(gelu(self.hidden.forward(features))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::test_util::values;

    fn embed(e: &TimeEmbedding, ts: &[f32], device: &Device) -> Vec<Vec<f64>> {
        let t = Tensor::<1>::from_data(TensorData::new(ts.to_vec(), [ts.len()]), device);
        let out = values(e.forward(t, None).unwrap());
        out.chunks(e.dim()).map(<[f64]>::to_vec).collect()
    }

    fn dist(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt()
    }

    #[test]
    fn distinct_times_have_distinct_embeddings() {
        let device = Device::default();
        let e = TimeEmbeddingConfig::new(32).with_seed(3).init(&device).unwrap();
        let ts: Vec<f32> = (0..=100).map(|i| i as f32 / 100.0).collect();
        let emb = embed(&e, &ts, &device);
        let norm = emb.iter().map(|v| dist(v, &vec![0.0; v.len()])).fold(0.0, f64::max);
        let mut min = f64::INFINITY;
        for i in 0..emb.len() {
            for j in 0..i {
                min = min.min(dist(&emb[i], &emb[j]));
            }
        }
        // Times 0.01 apart differ by a sizeable fraction of the embedding's norm.
        assert!(min > 1e-2 * norm, "closest pair {min} vs norm {norm}");
    }

    #[test]
    fn embedding_is_smooth_with_the_analytic_lipschitz_bound() {
        let device = Device::default();
        let cfg = TimeEmbeddingConfig::new(32).with_seed(5);
        let e = cfg.init(&device).unwrap();
        // Frobenius norms bound the operator norms; max GELU' = 1.1289.
        let fro = |l: &Linear| values(l.weight.val()).iter().map(|v| v * v).sum::<f64>().sqrt();
        let n = cfg.frequencies;
        let omega2: f64 = (0..n).map(|j| cfg.max_frequency.powf(2.0 * j as f64 / (n - 1) as f64)).sum();
        let lip = fro(&e.output) * 1.1290 * fro(&e.hidden) * omega2.sqrt();
        let h = 1e-4_f32;
        let ts: Vec<f32> = (0..50).map(|i| 0.02 * i as f32).collect();
        let shifted: Vec<f32> = ts.iter().map(|t| t + h).collect();
        let half: Vec<f32> = ts.iter().map(|t| t + h / 2.0).collect();
        let (a, b, c) = (embed(&e, &ts, &device), embed(&e, &shifted, &device), embed(&e, &half, &device));
        for i in 0..ts.len() {
            let slope = dist(&b[i], &a[i]) / f64::from(h);
            assert!(slope <= lip, "t = {}: |de/dt| ≈ {slope} exceeds the bound {lip}", ts[i]);
            // Smoothness: the midpoint lies on the chord up to O(h²) curvature.
            let mid: Vec<f64> = a[i].iter().zip(&b[i]).map(|(x, y)| 0.5 * (x + y)).collect();
            assert!(dist(&c[i], &mid) < 0.05 * dist(&b[i], &a[i]) + 1e-5, "t = {}: not smooth at step {h}", ts[i]);
        }
    }

    #[test]
    fn extra_inputs_are_required_and_checked() {
        let device = Device::default();
        let e = TimeEmbeddingConfig::new(8).with_extra_inputs(2).init(&device).unwrap();
        let t = Tensor::<1>::zeros([3], &device);
        assert_eq!(e.forward(t.clone(), Some(Tensor::zeros([3, 2], &device))).unwrap().dims(), [3, 8]);
        assert!(matches!(e.forward(t.clone(), None), Err(ModelError::Conditioning { .. })));
        assert!(matches!(e.forward(t.clone(), Some(Tensor::zeros([3, 1], &device))), Err(ModelError::Shape { .. })));
        let plain = TimeEmbeddingConfig::new(8).init(&device).unwrap();
        assert!(plain.forward(t, Some(Tensor::zeros([3, 2], &device))).is_err());
        assert!(TimeEmbeddingConfig::new(8).with_max_frequency(f64::NAN).init(&device).is_err());
        assert_eq!(crate::model::num_params(&e), TimeEmbeddingConfig::new(8).with_extra_inputs(2).num_params());
    }
}
