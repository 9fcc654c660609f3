//! Exponential moving average (EMA) of a model's weights, with the usual warm-up.
//!
//! After the `n`-th update (counting from 0) with the trained weights `θ`:
//!
//! ```text
//! θ_ema ← β_n θ_ema + (1 − β_n) θ,      β_n = min(β, (1 + n) / (10 + n))
//! ```
//!
//! so early averages follow the fast-moving weights (`β_0 = 0.1`) and later ones average over
//! about `1/(1 − β)` updates. Sampling uses the EMA weights. The EMA lives on the plain
//! (non-autodiff) device and is updated through burn's [`ModuleVisitor`] / [`ModuleMapper`],
//! matching parameters by their order in the module tree (the EMA is a copy of the model, so the
//! trees are identical; a mismatch is reported as an error).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use super::TrainError;

/// The EMA of a model's weights; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Ema<M: Module> {
    model: M,
    decay: f64,
    updates: u64,
}

impl<M: Module> Ema<M> {
    /// An average starting at the weights of `model` (copied to the plain device), with target
    /// decay `decay ∈ [0, 1)`.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming `ema_decay` outside `[0, 1)`.
    pub fn new(model: &M, decay: f64) -> Result<Self, TrainError> {
        Self::resume(model.valid(), decay, 0)
    }

    /// An average restored from a checkpoint: the averaged weights `ema` after `updates` updates.
    ///
    /// # Errors
    /// As [`Ema::new`].
    pub fn resume(ema: M, decay: f64, updates: u64) -> Result<Self, TrainError> {
        if !(decay.is_finite() && (0.0..1.0).contains(&decay)) {
            return Err(TrainError::config("ema_decay", format!("= {decay} must be in [0, 1)")));
        }
        Ok(Self { model: ema.valid(), decay, updates })
    }

    /// The weight `β_n = min(decay, (1 + n)/(10 + n))` of the old average in update `n`.
    pub fn weight(decay: f64, n: u64) -> f64 {
        decay.min((1.0 + n as f64) / (10.0 + n as f64))
    }

    /// The target decay `β`.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// The number of updates so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The averaged model (plain device, no autodiff).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The averaged model.
    pub fn into_model(self) -> M {
        self.model
    }

    /// Moves the average towards the weights of `model`: `θ_ema ← β_n θ_ema + (1 − β_n) θ`.
    ///
    /// # Errors
    /// [`TrainError::Shape`] if `model`'s parameters do not match the average's (another
    /// architecture); the average is then unchanged.
    pub fn update(&mut self, model: &M) -> Result<(), TrainError> {
        let mut collect = Collect { values: Vec::new() };
        model.valid().visit(&mut collect);
        let mut count = Collect { values: Vec::new() };
        self.model.visit(&mut count);
        if count.values.len() != collect.values.len() {
            let (expected, got) = (vec![count.values.len()], vec![collect.values.len()]);
            return Err(TrainError::Shape { what: "number of EMA parameters", expected, got });
        }
        let beta = Self::weight(self.decay, self.updates);
        let mut blend = Blend { values: collect.values.into_iter(), beta, error: None };
        let averaged = self.model.clone().map(&mut blend);
        if let Some(e) = blend.error {
            return Err(e);
        }
        self.model = averaged;
        self.updates += 1;
        Ok(())
    }
}

/// The float parameters of a module, flattened, in visiting order.
struct Collect {
    values: Vec<(Vec<usize>, Tensor<1>)>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let dims = value.dims().to_vec();
        let n = dims.iter().product::<usize>();
        self.values.push((dims, value.reshape([n])));
    }
}

/// `θ ← β θ + (1 − β) θ_src`, taking `θ_src` in visiting order.
struct Blend<I: Iterator<Item = (Vec<usize>, Tensor<1>)>> {
    values: I,
    beta: f64,
    error: Option<TrainError>,
}

impl<I: Iterator<Item = (Vec<usize>, Tensor<1>)>> ModuleMapper for Blend<I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some((dims, src)) = self.values.next() else {
            return param;
        };
        let target = param.lazy_shape().to_vec();
        if dims != target {
            self.error.get_or_insert(TrainError::Shape { what: "EMA parameter", expected: target, got: dims });
            return param;
        }
        let mut shape = [0usize; D];
        shape.copy_from_slice(&dims);
        let beta = self.beta;
        param.map(|ema| ema.mul_scalar(beta) + src.reshape(shape).mul_scalar(1.0 - beta))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{Mlp, MlpConfig};
    use burn::tensor::Device;

    fn params<M: Module>(m: &M) -> Vec<f64> {
        struct V(Vec<f64>);
        impl ModuleVisitor for V {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                let v = p.val().try_into_vec_as::<f32>().unwrap();
                self.0.extend(v.into_iter().map(f64::from));
            }
        }
        let mut v = V(Vec::new());
        m.visit(&mut v);
        v.0
    }

    fn mlp(seed: u64, device: &Device) -> Mlp {
        MlpConfig::new(2).with_hidden(8).with_layers(2).with_time_embedding_dim(4).with_seed(seed).init(device).unwrap()
    }

    #[test]
    fn warmup_weights() {
        assert_eq!(Ema::<Mlp>::weight(0.999, 0), 0.1);
        assert_eq!(Ema::<Mlp>::weight(0.999, 5), 6.0 / 15.0);
        assert_eq!(Ema::<Mlp>::weight(0.999, 100_000), 0.999);
        assert_eq!(Ema::<Mlp>::weight(0.5, 20), 0.5);
    }

    #[test]
    fn constant_model_is_a_fixed_point() {
        let device = Device::default().autodiff();
        let m = mlp(1, &device);
        let mut ema = Ema::new(&m, 0.99).unwrap();
        for _ in 0..50 {
            ema.update(&m).unwrap();
        }
        assert_eq!(ema.updates(), 50);
        let (a, b) = (params(ema.model()), params(&m));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            // β x + (1 − β) x in f32: a few roundings of x.
            assert!((x - y).abs() <= 4.0 * f64::from(f32::EPSILON) * y.abs(), "{x} vs {y}");
        }
        assert!(!ema.model().devices().iter().any(|d| d.is_autodiff()));
    }

    #[test]
    fn updates_follow_the_formula() {
        let device = Device::default();
        let (m0, m1, m2) = (mlp(1, &device), mlp(2, &device), mlp(3, &device));
        let (p0, p1, p2) = (params(&m0), params(&m1), params(&m2));
        let mut ema = Ema::new(&m0, 0.999).unwrap();
        ema.update(&m1).unwrap();
        // β_0 = 0.1: θ = 0.1 θ0 + 0.9 θ1.
        let want1: Vec<f64> = p0.iter().zip(&p1).map(|(a, b)| 0.1 * a + 0.9 * b).collect();
        let got1 = params(ema.model());
        for (g, w) in got1.iter().zip(&want1) {
            assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "{g} vs {w}");
        }
        ema.update(&m2).unwrap();
        // β_1 = 2/11.
        let beta = 2.0 / 11.0;
        for ((g, a), b) in params(ema.model()).iter().zip(&want1).zip(&p2) {
            let w = beta * a + (1.0 - beta) * b;
            assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    #[test]
    fn rejects_bad_decay_and_other_architectures() {
        let device = Device::default();
        let m = mlp(1, &device);
        assert!(matches!(Ema::new(&m, 1.0), Err(TrainError::Config { key: "ema_decay", .. })));
        assert!(matches!(Ema::new(&m, -0.1), Err(TrainError::Config { key: "ema_decay", .. })));
        let other = MlpConfig::new(2).with_hidden(16).with_layers(2).with_time_embedding_dim(4).init(&device).unwrap();
        let mut ema = Ema::new(&m, 0.9).unwrap();
        assert!(matches!(ema.update(&other), Err(TrainError::Shape { .. })));
        assert_eq!(ema.updates(), 0);
    }
}
