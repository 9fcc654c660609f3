//! The CPU training path: a training step of an FNO through the hand-written gradient of
//! [`FnoGrad`], with AdamW, global-norm clipping and the EMA in place on flat `f32` buffers.
//!
//! [`EngineRun`] holds the weights `θ`, the AdamW moments `(m, v)` and step count, and the EMA as
//! flat buffers in burn's parameter order ([`FlatParams`]). One step is
//!
//! ```text
//! (x_t, ẋ_t) = path(x0, x1, t)                    (the library's path, any scheduler)
//! L, g       = FnoGrad::loss_and_grad(θ; x_t, t, c, ẋ_t)
//! g         ← g · min(1, c_max / ‖g‖)               (global norm, f64 sum of squares)
//! m ← β₁ m + (1 − β₁) g,  v ← β₂ v + (1 − β₂) g²
//! θ ← θ (1 − lr λ) − lr (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)      burn's AdamW, f32
//! θ_ema ← β_n θ_ema + (1 − β_n) θ                   as [`Ema::update`]
//! ```
//!
//! which is what burn's `AdamW` ([`AdamWOptions::optimizer`]) and [`Ema`] compute, operation by
//! operation in `f32`. The burn model, EMA and optimiser of the trainer are brought up to date
//! only when they are read (validation, checkpoints, the end of the run; [`EngineRun::sync_model`],
//! [`EngineRun::optimizer`]); the optimiser state goes through burn's own record (the moments of
//! every parameter keyed by its id), so checkpoints written on either path resume on either.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWState, AdaptiveMomentumState, GradientsParams, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor, TensorData};

use super::TrainError;
use super::ema::Ema;
use super::loss::{CfmBatch, CfmLoss};
use super::options::AdamWOptions;
use crate::model::{FlatParams, FnoGrad, GradBatch, Slot};

/// Which path computes the training steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrainPath {
    /// The CPU engine when it covers the run (an FNO without a Leray layer, no PBFM, on the flex
    /// CPU device), burn's autodiff otherwise.
    #[default]
    Auto,
    /// Always burn's autodiff (the reference).
    Burn,
}

/// One parameter's AdamW state: `(m, v, step count)`.
type Moments = (Vec<f32>, Vec<f32>, usize);

/// AdamW on a flat buffer, with burn's arithmetic (see the module docs).
#[derive(Debug, Clone)]
pub struct FlatAdamW {
    options: AdamWOptions,
    m: Vec<f32>,
    v: Vec<f32>,
    /// Completed updates (burn's `time`).
    time: usize,
}

impl FlatAdamW {
    /// Zero moments for `n` parameters.
    pub fn new(options: AdamWOptions, n: usize) -> Self {
        Self { options, m: vec![0.0; n], v: vec![0.0; n], time: 0 }
    }

    /// One update of `theta` with gradient `grad` at rate `lr`.
    pub fn step(&mut self, lr: LearningRate, theta: &mut [f32], grad: &[f32]) {
        let (b1, b2) = (self.options.beta1 as f32, self.options.beta2 as f32);
        let eps = self.options.epsilon as f32;
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        self.time += 1;
        let t = self.time as i32;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let decay = lr * self.options.weight_decay;
        let keep = (1.0 - decay) as f32;
        let lr = lr as f32;
        for (((th, g), m), v) in theta.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            *m = *m * b1 + *g * f1;
            *v = *v * b2 + (*g * *g) * f2;
            let delta = (*m / c1) / ((*v / c2).sqrt() + eps);
            let decayed = if decay == 0.0 { *th } else { *th * keep };
            *th = decayed - delta * lr;
        }
    }
}

/// `‖g‖₂` with an `f64` sum.
pub fn flat_norm(grad: &[f32]) -> f64 {
    grad.iter().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>().sqrt()
}

/// The engine state of a training run; see the module docs.
#[derive(Debug)]
pub struct EngineRun {
    engine: FnoGrad,
    slots: Vec<Slot>,
    theta: Vec<f32>,
    grad: Vec<f32>,
    adam: FlatAdamW,
    /// The EMA weights, decay and update count.
    ema: Option<(Vec<f32>, f64, u64)>,
}

impl EngineRun {
    /// The engine state of a run whose burn state is `model`, `optimizer` and `ema`
    /// (fresh or restored from a checkpoint).
    ///
    /// # Errors
    /// Model errors (an architecture the engine does not cover), readback errors.
    pub fn new<M: Module>(
        engine: FnoGrad,
        model: &M,
        optimizer: &ModuleOptimizer,
        options: AdamWOptions,
        ema: Option<&Ema<M>>,
    ) -> Result<Self, TrainError> {
        let flat = FlatParams::of(model)?;
        if flat.slots.iter().map(|s| &s.dims).ne(engine.slots().iter().map(|s| &s.dims)) {
            return Err(TrainError::Shape {
                what: "engine parameters",
                expected: vec![engine.num_params()],
                got: vec![flat.len()],
            });
        }
        let mut adam = FlatAdamW::new(options, flat.len());
        let states = extract_moments(optimizer, model)?;
        for (slot, state) in flat.slots.iter().zip(states) {
            if let Some((m, v, time)) = state {
                adam.m[slot.range()].copy_from_slice(&m);
                adam.v[slot.range()].copy_from_slice(&v);
                adam.time = time;
            }
        }
        let ema = match ema {
            Some(e) => Some((FlatParams::of(e.model())?.values, e.decay(), e.updates())),
            None => None,
        };
        let n = flat.len();
        Ok(Self { engine, slots: flat.slots, theta: flat.values, grad: vec![0.0; n], adam, ema })
    }

    /// One training step on `batch` at rate `lr`: returns `(loss, gradient norm before clipping)`
    /// and updates the weights and the EMA, unless the loss or the norm is not finite (then the
    /// weights are left as they were and the caller stops).
    ///
    /// # Errors
    /// Path, model and readback errors.
    pub fn step<const D: usize>(
        &mut self,
        loss_fn: &CfmLoss,
        batch: &CfmBatch<D>,
        lr: LearningRate,
        clip_norm: Option<f64>,
    ) -> Result<(f64, f64), TrainError> {
        let sample = loss_fn.path().sample(batch.x0.clone(), batch.x1.clone(), batch.t.clone())?;
        let dims = sample.xt.dims();
        let &[b, _, h, w] = dims.as_slice() else {
            return Err(TrainError::Shape {
                what: "engine batch rank ([B, C, H, W])",
                expected: vec![4],
                got: vec![D],
            });
        };
        let x = readback("path sample", sample.xt)?;
        let target = readback("path velocity", sample.dxt)?;
        let t = readback("times", sample.t)?;
        let t = if t.len() == 1 { vec![t[0]; b] } else { t };
        let cond = match batch.cond.as_ref().and_then(|c| c.fields.clone()) {
            Some(f) => Some(readback("conditioning", f)?),
            None => None,
        };
        let params = match batch.cond.as_ref().and_then(|c| c.params.clone()) {
            Some(p) => Some(readback("parameters", p)?),
            None => None,
        };
        let gb = GradBatch {
            shape: (b, h, w),
            x: &x,
            t: &t,
            cond: cond.as_deref(),
            params: params.as_deref(),
            target: &target,
        };
        let loss = self.engine.loss_and_grad(&self.theta, &gb, &mut self.grad)?;
        let norm = flat_norm(&self.grad);
        if !loss.is_finite() || !norm.is_finite() {
            return Ok((loss, norm));
        }
        if let Some(max) = clip_norm
            && norm > max
        {
            let factor = (max / norm) as f32;
            self.grad.iter_mut().for_each(|g| *g *= factor);
        }
        self.adam.step(lr, &mut self.theta, &self.grad);
        if let Some((ema, decay, updates)) = &mut self.ema {
            let beta = Ema::<crate::model::Fno>::weight(*decay, *updates);
            let (keep, take) = (beta as f32, (1.0 - beta) as f32);
            ema.iter_mut().zip(&self.theta).for_each(|(e, th)| *e = *e * keep + *th * take);
            *updates += 1;
        }
        Ok((loss, norm))
    }

    /// `model` with the engine's current weights.
    ///
    /// # Errors
    /// Model errors if `model` is not the engine's architecture.
    pub fn sync_model<M: Module>(&self, model: M) -> Result<M, TrainError> {
        Ok(FlatParams::write_into(&self.slots, &self.theta, model)?)
    }

    /// The EMA of `ema`'s architecture with the engine's averaged weights and update count.
    ///
    /// # Errors
    /// As [`EngineRun::sync_model`].
    pub fn sync_ema<M: Module>(&self, ema: Ema<M>) -> Result<Ema<M>, TrainError> {
        match &self.ema {
            Some((values, decay, updates)) => {
                let model = FlatParams::write_into(&self.slots, values, ema.into_model())?;
                Ema::resume(model, *decay, *updates)
            }
            None => Ok(ema),
        }
    }

    /// burn's AdamW optimiser holding the engine's moments (for checkpoints), for the parameters
    /// of `model` (matched by id).
    ///
    /// # Errors
    /// Readback errors.
    pub fn optimizer<M: Module>(&self, model: &M) -> Result<ModuleOptimizer, TrainError> {
        let queue: VecDeque<Option<Moments>> = self
            .slots
            .iter()
            .map(|s| {
                (self.adam.time > 0)
                    .then(|| (self.adam.m[s.range()].to_vec(), self.adam.v[s.range()].to_vec(), self.adam.time))
            })
            .collect();
        let inject = Bridge { inject: Arc::new(Mutex::new(queue)), extract: Arc::new(Mutex::new(Vec::new())) };
        let mut optimizer = ModuleOptimizer::from(inject);
        let _ = optimizer.step(0.0, model.clone(), zero_grads(model));
        Ok(optimizer)
    }
}

fn readback<const D: usize>(what: &'static str, t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    t.try_into_vec_as::<f32>().map_err(|e| TrainError::Readback { what, reason: format!("{e:?}") })
}

/// A zero gradient for every parameter of `model` (on the plain device).
fn zero_grads<M: Module>(model: &M) -> GradientsParams {
    struct Zeros(GradientsParams);
    impl ModuleVisitor for Zeros {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v = param.val();
            let device: Device = v.device().without_autodiff();
            let shape: [usize; D] = v.dims();
            self.0.register(param.id, Tensor::<D>::zeros(shape, &device));
        }
    }
    let mut z = Zeros(GradientsParams::new());
    model.visit(&mut z);
    z.0
}

/// The AdamW state of every parameter of `model` held by `optimizer`, in visiting order.
fn extract_moments<M: Module>(optimizer: &ModuleOptimizer, model: &M) -> Result<Vec<Option<Moments>>, TrainError> {
    let bridge = Bridge { inject: Arc::new(Mutex::new(VecDeque::new())), extract: Arc::new(Mutex::new(Vec::new())) };
    let out = bridge.extract.clone();
    let mut reader = ModuleOptimizer::from(bridge).load_record(optimizer.to_record());
    let _ = reader.step(0.0, model.clone(), zero_grads(model));
    let states = out.lock().map_err(|_| TrainError::Readback { what: "optimizer state", reason: "poisoned".into() })?;
    Ok(states.clone())
}

/// An [`Optimizer`] with AdamW's state type that moves states between burn and the engine: each
/// step (one per parameter, in visiting order) records the state it is given (`extract`) and
/// returns the next queued one (`inject`), leaving the weights unchanged.
#[derive(Clone)]
struct Bridge {
    inject: Arc<Mutex<VecDeque<Option<Moments>>>>,
    extract: Arc<Mutex<Vec<Option<Moments>>>>,
}

impl Optimizer for Bridge {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        _lr: LearningRate,
        tensor: Tensor<D>,
        _grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let read = |t: &Tensor<D>| t.clone().try_into_vec_as::<f32>().unwrap_or_default();
        let seen = state.as_ref().map(|s| (read(&s.momentum.moment_1), read(&s.momentum.moment_2), s.momentum.time));
        if let Ok(mut out) = self.extract.lock() {
            out.push(seen);
        }
        let next = self.inject.lock().ok().and_then(|mut q| q.pop_front()).flatten();
        let state = match next {
            Some((m, v, time)) => {
                let device = tensor.device();
                let dims: [usize; D] = tensor.dims();
                let m = Tensor::<D>::from_data(TensorData::new(m, dims), &device);
                let v = Tensor::<D>::from_data(TensorData::new(v, dims), &device);
                Some(AdamWState::new(AdaptiveMomentumState::new(time, m, v)))
            }
            None => state,
        };
        (tensor, state)
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests;
