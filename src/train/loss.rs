//! The conditional flow-matching loss and the random draws of a training step.
//!
//! For a minibatch `x1` (data, `[B, ...]`) with optional conditioning `c`, a step draws
//!
//! - source samples `x0` from a [`NoiseSource`] (sample `b` of step `s` is source index `s·B + b`
//!   under the seed `tagged_seed(seed, NOISE)`),
//! - times `t_b` from [`TimeSampling`] (stream `substream(seed, s, TIME)`),
//! - with OT coupling, the permutation of `x0` minimising `Σ_b ‖x0_b − x1_b‖²`
//!   ([`crate::path::couple`]),
//! - with `p_uncond > 0`, a dropout mask (stream `substream(seed, s, DROPOUT)`): sample `b` loses
//!   its conditioning when `u_b < p_uncond`, `u_b ~ U[0, 1)`,
//!
//! and the loss is the per-value mean squared error `mean((v_θ(x_t, t; c) − ẋ_t)²)` on the path
//! sample `(x_t, ẋ_t)` of [`AffinePath::sample`].
//!
//! # Classifier-free guidance convention
//!
//! Dropped conditioning is replaced by **zeros**: every conditioning field and scalar parameter
//! of the sample is set to 0 (after normalisation, so zero is the data set's mean conditioning).
//! The sampler's unconditional branch must therefore call the model with
//! [`Conditioning::null_like`] (all-zero fields and parameters of the same shapes), and the guided
//! velocity is `v_u + w (v_c − v_u)` ([`crate::sample::Cfg`]).
//!
//! Coupling pairs noise with data regardless of the conditioning; for conditional models with
//! strongly varying conditions prefer `ot_coupling = false`.

use burn::tensor::{Device, Int, Tensor, TensorData};
use fieldflow_pde::rng::{SampleRng, substream};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::flow_model::FlowModel;
pub use crate::noise::{GaussianNoise, NoiseSource};
use crate::path::{
    AffinePath, AnyScheduler, CondOtScheduler, CosineScheduler, LinearVpScheduler, PathError, PolynomialScheduler,
    VeScheduler, VpScheduler, couple,
};

/// Purpose tag of the times of a training step (`substream(seed, step, TIME)`).
pub const TIME: u64 = 0x5452_4e5f_5449_4d45; // "TRN_TIME"
/// Purpose tag of the conditioning dropout of a training step.
pub const DROPOUT: u64 = 0x5452_4e5f_4452_4f50; // "TRN_DROP"
/// Seed tag of the training source samples.
pub const NOISE: u64 = 0x5452_4e5f_4e4f_4953; // "TRN_NOIS"
/// Seed tag of the validation source samples.
pub const VALIDATION_NOISE: u64 = 0x5641_4c5f_4e4f_4953; // "VAL_NOIS"
/// Purpose tag of the validation times (`substream(seed, sample, VALIDATION_TIME)`).
pub const VALIDATION_TIME: u64 = 0x5641_4c5f_5449_4d45; // "VAL_TIME"

/// A seed derived from `seed` for one purpose, for samplers that take a seed rather than a
/// stream (the source measures): `seed ⊕ tag·φ` with `φ` the 64-bit golden ratio.
pub fn tagged_seed(seed: u64, tag: u64) -> u64 {
    seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The probability path's scheduler, as written in configs and checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PathSpec {
    /// Conditional OT: `α_t = t`, `σ_t = 1 − (1 − σ_min) t`.
    CondOt {
        /// Final noise level.
        #[serde(default)]
        sigma_min: f64,
    },
    /// `α_t = tⁿ`, `σ_t = 1 − tⁿ`.
    Polynomial {
        /// The exponent.
        n: f64,
    },
    /// Variance preserving (score-based diffusion in flow-matching time).
    Vp {
        /// `β_min`.
        beta_min: f64,
        /// `β_max`.
        beta_max: f64,
    },
    /// `α_t = t`, `σ_t = √(1 − t²)`.
    LinearVp,
    /// `α_t = sin(πt/2)`, `σ_t = cos(πt/2)`.
    Cosine,
    /// Variance exploding.
    Ve {
        /// `σ_min`.
        sigma_min: f64,
        /// `σ_max`.
        sigma_max: f64,
    },
}

impl Default for PathSpec {
    /// CondOT with `σ_min = 0`.
    fn default() -> Self {
        Self::CondOt { sigma_min: 0.0 }
    }
}

impl PathSpec {
    /// The scheduler.
    ///
    /// # Errors
    /// [`PathError::Parameter`] naming an invalid parameter.
    pub fn scheduler(&self) -> Result<AnyScheduler, PathError> {
        Ok(match *self {
            Self::CondOt { sigma_min } => CondOtScheduler::new(sigma_min)?.into(),
            Self::Polynomial { n } => PolynomialScheduler::new(n)?.into(),
            Self::Vp { beta_min, beta_max } => VpScheduler::new(beta_min, beta_max)?.into(),
            Self::LinearVp => LinearVpScheduler.into(),
            Self::Cosine => CosineScheduler.into(),
            Self::Ve { sigma_min, sigma_max } => VeScheduler::new(sigma_min, sigma_max)?.into(),
        })
    }
}

/// The distribution of training times.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TimeSampling {
    /// `t ~ U[0, 1)`.
    #[default]
    Uniform,
    /// `t = sigmoid(m + s z)`, `z ~ N(0, 1)` (Esser et al. 2024): more weight on mid-path times.
    LogitNormal {
        /// `m`.
        mean: f64,
        /// `s > 0`.
        std: f64,
    },
}

impl TimeSampling {
    /// Checks the logit-normal parameters.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming `time_sampling.mean` or `time_sampling.std`.
    pub fn validate(&self) -> Result<(), TrainError> {
        match *self {
            Self::Uniform => Ok(()),
            Self::LogitNormal { mean, .. } if !mean.is_finite() => {
                Err(TrainError::config("time_sampling.mean", format!("= {mean} must be finite")))
            }
            Self::LogitNormal { std, .. } if !(std.is_finite() && std > 0.0) => {
                Err(TrainError::config("time_sampling.std", format!("= {std} must be finite and positive")))
            }
            Self::LogitNormal { .. } => Ok(()),
        }
    }

    /// `n` times drawn from `rng`, each in `[0, 1]`.
    pub fn draw(&self, rng: &mut SampleRng, n: usize) -> Vec<f64> {
        match *self {
            Self::Uniform => (0..n).map(|_| rng.random::<f64>()).collect(),
            Self::LogitNormal { mean, std } => (0..n)
                .map(|_| {
                    let z: f64 = rng.sample(StandardNormal);
                    1.0 / (1.0 + (-(mean + std * z)).exp())
                })
                .collect(),
        }
    }
}

/// Conditioning inputs of a batch: fields on the grid and scalar parameters (both optional).
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// Conditioning fields `[B, C_c, H, W]` (e.g. a Darcy permeability).
    pub fields: Option<Tensor<4>>,
    /// Scalar parameters `[B, P]`.
    pub params: Option<Tensor<2>>,
}

impl Conditioning {
    /// Conditioning with the given parts.
    pub fn new(fields: Option<Tensor<4>>, params: Option<Tensor<2>>) -> Self {
        Self { fields, params }
    }

    /// The batch size (axis 0), `None` when empty.
    pub fn batch_size(&self) -> Option<usize> {
        self.fields.as_ref().map(|f| f.dims()[0]).or_else(|| self.params.as_ref().map(|p| p.dims()[0]))
    }

    /// Whether neither fields nor parameters are present.
    pub fn is_empty(&self) -> bool {
        self.fields.is_none() && self.params.is_none()
    }

    /// The null conditioning of the unconditional branch: zeros of the same shapes (the
    /// convention of training with conditioning dropout).
    pub fn null_like(&self) -> Self {
        Self {
            fields: self.fields.as_ref().map(|f| f.zeros_like()),
            params: self.params.as_ref().map(|p| p.zeros_like()),
        }
    }

    /// The conditioning of the samples `indices` (axis 0).
    ///
    /// # Shapes
    /// - indices: `[n]`; output: `[n, ...]`
    pub fn select(&self, indices: Tensor<1, Int>) -> Self {
        Self {
            fields: self.fields.as_ref().map(|f| f.clone().select(0, indices.clone())),
            params: self.params.as_ref().map(|p| p.clone().select(0, indices)),
        }
    }

    /// Zeros the conditioning of the samples `b` with `keep[b] == false`.
    ///
    /// # Shapes
    /// - `keep`: one entry per sample of the batch
    pub fn drop_where(self, keep: &[bool]) -> Self {
        let b = keep.len();
        let mask: Vec<f32> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        let mask = |device: &Device| Tensor::<1>::from_data(TensorData::new(mask.clone(), [b]), device);
        Self {
            fields: self.fields.map(|f| {
                let m = mask(&f.device()).reshape([b, 1, 1, 1]);
                f.mul(m)
            }),
            params: self.params.map(|p| {
                let m = mask(&p.device()).reshape([b, 1]);
                p.mul(m)
            }),
        }
    }
}

/// The inputs of one loss evaluation: source and data samples, times, conditioning.
#[derive(Debug, Clone)]
pub struct CfmBatch<const D: usize> {
    /// Source samples `[B, ...]` (already coupled to `x1` when OT coupling is on).
    pub x0: Tensor<D>,
    /// Data samples `[B, ...]`.
    pub x1: Tensor<D>,
    /// Times `[B]`.
    pub t: Tensor<1>,
    /// Conditioning (after dropout).
    pub cond: Option<Conditioning>,
}

/// The conditional flow-matching loss with its sampling options; see the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct CfmLoss {
    path: AffinePath<AnyScheduler>,
    time: TimeSampling,
    p_uncond: f64,
    ot_coupling: bool,
}

impl CfmLoss {
    /// The loss on `path`'s scheduler with times from `time`, conditioning dropout probability
    /// `p_uncond` and optional OT coupling.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming `p_uncond` outside `[0, 1]` or invalid time sampling.
    pub fn new(
        scheduler: AnyScheduler,
        time: TimeSampling,
        p_uncond: f64,
        ot_coupling: bool,
    ) -> Result<Self, TrainError> {
        if !(0.0..=1.0).contains(&p_uncond) {
            return Err(TrainError::config("p_uncond", format!("= {p_uncond} must be in [0, 1]")));
        }
        time.validate()?;
        Ok(Self { path: AffinePath::new(scheduler), time, p_uncond, ot_coupling })
    }

    /// The path.
    pub fn path(&self) -> &AffinePath<AnyScheduler> {
        &self.path
    }

    /// The times of training step `step` (`n` of them).
    pub fn step_times(&self, seed: u64, step: u64, n: usize) -> Vec<f64> {
        self.time.draw(&mut substream(seed, step, TIME), n)
    }

    /// Which samples of step `step` keep their conditioning (all when `p_uncond = 0`).
    pub fn step_keep(&self, seed: u64, step: u64, n: usize) -> Vec<bool> {
        if self.p_uncond == 0.0 {
            return vec![true; n];
        }
        let mut rng = substream(seed, step, DROPOUT);
        (0..n).map(|_| rng.random::<f64>() >= self.p_uncond).collect()
    }

    /// The batch of training step `step` (0-based: the number of completed updates) for the data
    /// `x1` and conditioning `cond`: source samples, times, coupling and dropout drawn from the
    /// streams of `(seed, step)`.
    ///
    /// # Errors
    /// [`TrainError::Shape`] if the source samples do not have the shape of `x1` or the
    /// conditioning's batch differs; source and coupling errors.
    pub fn training_batch<const D: usize>(
        &self,
        seed: u64,
        step: u64,
        x1: Tensor<D>,
        cond: Option<Conditioning>,
        noise: &dyn NoiseSource<D>,
    ) -> Result<CfmBatch<D>, TrainError> {
        let b = x1.dims()[0];
        let device = x1.device();
        let start = step.saturating_mul(b as u64);
        let x0 = noise.draw(tagged_seed(seed, NOISE), start..start + b as u64, &device)?;
        check_batch(&x0, &x1, cond.as_ref())?;
        let x0 = if self.ot_coupling { couple(x0, &x1)? } else { x0 };
        let t = times(&self.step_times(seed, step, b), &device);
        let cond = match cond {
            Some(c) if self.p_uncond > 0.0 => Some(c.drop_where(&self.step_keep(seed, step, b))),
            other => other,
        };
        Ok(CfmBatch { x0, x1, t, cond })
    }

    /// A validation batch: the data samples `start .. start + B` of a held-out set with source
    /// samples and times fixed by `(seed, sample index)` (no coupling, no dropout), so that
    /// evaluations at different steps compare the same quantity.
    ///
    /// # Errors
    /// As [`CfmLoss::training_batch`].
    pub fn validation_batch<const D: usize>(
        &self,
        seed: u64,
        start: u64,
        x1: Tensor<D>,
        cond: Option<Conditioning>,
        noise: &dyn NoiseSource<D>,
    ) -> Result<CfmBatch<D>, TrainError> {
        let b = x1.dims()[0];
        let device = x1.device();
        let x0 = noise.draw(tagged_seed(seed, VALIDATION_NOISE), start..start + b as u64, &device)?;
        check_batch(&x0, &x1, cond.as_ref())?;
        let t: Vec<f64> =
            (start..start + b as u64).map(|i| self.time.draw(&mut substream(seed, i, VALIDATION_TIME), 1)[0]).collect();
        Ok(CfmBatch { x0, x1, t: times(&t, &device), cond })
    }

    /// `mean((v_θ(x_t, t; c) − ẋ_t)²)` over all values of the batch, a `[1]` tensor (tracked by
    /// autodiff when the model is).
    ///
    /// # Errors
    /// Model and path errors (shapes, missing conditioning).
    pub fn loss<const D: usize, M: FlowModel<D>>(
        &self,
        model: &M,
        batch: &CfmBatch<D>,
    ) -> Result<Tensor<1>, TrainError> {
        let sample = self.path.sample(batch.x0.clone(), batch.x1.clone(), batch.t.clone())?;
        let v = model.velocity(sample.xt, sample.t, batch.cond.as_ref())?;
        Ok((v - sample.dxt).square().mean())
    }
}

fn times(t: &[f64], device: &Device) -> Tensor<1> {
    let values: Vec<f32> = t.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(values, [t.len()]), device)
}

fn check_batch<const D: usize>(x0: &Tensor<D>, x1: &Tensor<D>, cond: Option<&Conditioning>) -> Result<(), TrainError> {
    if x0.dims() != x1.dims() {
        return Err(TrainError::Shape {
            what: "source samples (must match the data)",
            expected: x1.dims().to_vec(),
            got: x0.dims().to_vec(),
        });
    }
    let b = x1.dims()[0];
    if let Some(cb) = cond.and_then(Conditioning::batch_size)
        && cb != b
    {
        return Err(TrainError::Shape { what: "conditioning batch", expected: vec![b], got: vec![cb] });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ModelError;
    use burn::module::{Module, Param};

    /// `v(x, t) = (c − x)/(1 − t)`: the exact CondOT velocity (σ_min = 0) towards the constant
    /// data point `c`, for which the CFM loss vanishes.
    #[derive(Module, Debug)]
    struct TowardsConstant {
        c: Param<Tensor<1>>,
    }

    impl FlowModel<2> for TowardsConstant {
        type Config = ();
        const KIND: &'static str = "towards-constant";
        fn init(_: &(), device: &Device) -> Result<Self, ModelError> {
            Ok(Self { c: Param::from_tensor(Tensor::from_data(TensorData::new(vec![1.5_f32, -0.5], [2]), device)) })
        }
        fn velocity(&self, x: Tensor<2>, t: Tensor<1>, _: Option<&Conditioning>) -> Result<Tensor<2>, ModelError> {
            let [b, d] = x.dims();
            let c = self.c.val().reshape([1, d]);
            let one_minus_t = t.neg().add_scalar(1.0).reshape([b, 1]);
            Ok((c - x).div(one_minus_t))
        }
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.try_into_vec_as::<f32>().unwrap().into_iter().map(f64::from).collect()
    }

    #[test]
    fn loss_vanishes_for_the_exact_velocity_and_equals_the_target_energy_for_zero() {
        let device = Device::default();
        let model = TowardsConstant::init(&(), &device).unwrap();
        let b = 64;
        let x1 = model.c.val().reshape([1, 2]).repeat_dim(0, b);
        let loss = CfmLoss::new(AnyScheduler::default(), TimeSampling::Uniform, 0.0, false).unwrap();
        let batch = loss.training_batch(3, 7, x1.clone(), None, &GaussianNoise { dim: 2 }).unwrap();
        let l = values(loss.loss(&model, &batch).unwrap())[0];
        assert!(l < 1e-9, "loss of the exact field: {l}");

        // A zero field: the loss is mean((x1 − x0)²) (CondOT target ẋ_t = x1 − x0).
        #[derive(Module, Debug)]
        struct Zero {
            unused: Param<Tensor<1>>,
        }
        impl FlowModel<2> for Zero {
            type Config = ();
            const KIND: &'static str = "zero";
            fn init(_: &(), device: &Device) -> Result<Self, ModelError> {
                Ok(Self { unused: Param::from_tensor(Tensor::zeros([1], device)) })
            }
            fn velocity(&self, x: Tensor<2>, _: Tensor<1>, _: Option<&Conditioning>) -> Result<Tensor<2>, ModelError> {
                Ok(x.zeros_like())
            }
        }
        let zero = Zero::init(&(), &device).unwrap();
        let l0 = values(loss.loss(&zero, &batch).unwrap())[0];
        let (a, c) = (values(batch.x0.clone()), values(batch.x1.clone()));
        let want = a.iter().zip(&c).map(|(a, c)| (c - a).powi(2)).sum::<f64>() / a.len() as f64;
        assert!((l0 - want).abs() < 1e-5 * want, "{l0} vs {want}");
    }

    #[test]
    fn draws_are_keyed_by_seed_and_step() {
        let loss = CfmLoss::new(AnyScheduler::default(), TimeSampling::Uniform, 0.3, false).unwrap();
        assert_eq!(loss.step_times(1, 5, 16), loss.step_times(1, 5, 16));
        assert_ne!(loss.step_times(1, 5, 16), loss.step_times(1, 6, 16));
        assert_ne!(loss.step_times(1, 5, 16), loss.step_times(2, 5, 16));
        // The first n draws do not depend on the batch size.
        assert_eq!(loss.step_times(1, 5, 16)[..8], loss.step_times(1, 5, 8)[..]);
        let t = loss.step_times(0, 0, 20_000);
        assert!(t.iter().all(|t| (0.0..1.0).contains(t)));
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "uniform mean {mean}");
        // Dropout frequency ≈ p_uncond (20 000 draws: σ ≈ 0.0032).
        let keep = loss.step_keep(0, 0, 20_000);
        let dropped = keep.iter().filter(|k| !**k).count() as f64 / keep.len() as f64;
        assert!((dropped - 0.3).abs() < 0.015, "dropout rate {dropped}");
    }

    #[test]
    fn logit_normal_times_have_the_right_median() {
        let ts = TimeSampling::LogitNormal { mean: 0.5, std: 1.0 };
        ts.validate().unwrap();
        let mut t = ts.draw(&mut substream(0, 0, TIME), 20_001);
        t.sort_by(f64::total_cmp);
        let median = t[10_000];
        let want = 1.0 / (1.0 + (-0.5_f64).exp());
        assert!((median - want).abs() < 0.01, "{median} vs {want}");
        assert!(TimeSampling::LogitNormal { mean: 0.0, std: 0.0 }.validate().is_err());
    }

    #[test]
    fn dropout_zeros_the_conditioning_of_the_dropped_samples() {
        let device = Device::default();
        let b = 32;
        let fields = Tensor::<4>::ones([b, 2, 3, 3], &device);
        let params = Tensor::<2>::ones([b, 2], &device).mul_scalar(2.0);
        let cond = Conditioning::new(Some(fields), Some(params));
        let loss = CfmLoss::new(AnyScheduler::default(), TimeSampling::Uniform, 0.5, false).unwrap();
        let x1 = Tensor::<2>::zeros([b, 2], &device);
        let batch = loss.training_batch(9, 4, x1, Some(cond.clone()), &GaussianNoise { dim: 2 }).unwrap();
        let keep = loss.step_keep(9, 4, b);
        assert!(keep.iter().any(|k| *k) && keep.iter().any(|k| !*k));
        let out = batch.cond.unwrap();
        let f = values(out.fields.unwrap());
        let p = values(out.params.unwrap());
        for (i, k) in keep.iter().enumerate() {
            let want = if *k { 1.0 } else { 0.0 };
            assert!(f[i * 18..(i + 1) * 18].iter().all(|v| *v == want), "sample {i}");
            assert!(p[i * 2..(i + 1) * 2].iter().all(|v| *v == 2.0 * want), "sample {i}");
        }
        let null = cond.null_like();
        assert!(values(null.fields.unwrap()).iter().all(|v| *v == 0.0));
        assert!(CfmLoss::new(AnyScheduler::default(), TimeSampling::Uniform, 1.5, false).is_err());
    }

    #[test]
    fn ot_coupling_lowers_the_transport_cost_and_permutes_the_noise() {
        let device = Device::default();
        let b = 64;
        let x1 = crate::bridge::to_tensor::<2, _>(super::super::data::eight_gaussians(5, 0..b as u64).view(), &device);
        let noise = GaussianNoise { dim: 2 };
        let plain = CfmLoss::new(AnyScheduler::default(), TimeSampling::Uniform, 0.0, false).unwrap();
        let ot = CfmLoss::new(AnyScheduler::default(), TimeSampling::Uniform, 0.0, true).unwrap();
        let a = plain.training_batch(1, 2, x1.clone(), None, &noise).unwrap();
        let c = ot.training_batch(1, 2, x1, None, &noise).unwrap();
        let cost = |x0: Tensor<2>, x1: Tensor<2>| values((x0 - x1).square().sum())[0];
        let (ca, cc) = (cost(a.x0.clone(), a.x1.clone()), cost(c.x0.clone(), c.x1));
        assert!(cc < 0.5 * ca, "OT cost {cc} vs independent {ca}");
        let (mut va, mut vc) = (values(a.x0), values(c.x0));
        va.sort_by(f64::total_cmp);
        vc.sort_by(f64::total_cmp);
        assert_eq!(va, vc);
    }

    #[test]
    fn path_specs_build_their_schedulers() {
        use crate::path::Scheduler;
        assert_eq!(PathSpec::default().scheduler().unwrap(), AnyScheduler::default());
        let s = PathSpec::CondOt { sigma_min: 0.1 }.scheduler().unwrap();
        assert!((s.at(1.0).sigma_t - 0.1).abs() < 1e-15);
        assert!(PathSpec::CondOt { sigma_min: 1.0 }.scheduler().is_err());
        let json = serde_json::to_string(&PathSpec::Ve { sigma_min: 0.01, sigma_max: 50.0 }).unwrap();
        assert_eq!(json, r#"{"kind":"ve","sigma_min":0.01,"sigma_max":50.0}"#);
        let spec: PathSpec = toml::from_str("kind = \"cond_ot\"").unwrap();
        assert_eq!(spec, PathSpec::default());
    }
}
