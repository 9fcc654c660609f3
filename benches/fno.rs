//! FNO velocity fields on burn's default CPU device: forward passes, training steps and sampling.
//!
//! - `fno_forward/16x64`: the default network (width 32, 12 × 12 modes, 4 layers, projection
//!   128), 16 fields of 64², burn.
//! - `fno_generate/{burn,cpu}`: the shipped model's size (width 24, projection 64), 64 fields of
//!   64²: one velocity evaluation of `fieldflow generate --config configs/ns2d-divfree.toml`.
//! - `fno_train_step/{b16_n64_w32,b16_n64_w24}`: one complete training step (white-noise sources,
//!   CondOT path, forward, MSE loss, backward, global-norm clipping, AdamW, EMA), batch 16 of 64²,
//!   for the PyTorch peer's network (width 32, projection 128) and the shipped size (width 24,
//!   projection 64), on the CPU training engine (`EngineRun`, the path `Trainer` takes on the
//!   CPU); `fno_train_step_burn/…`: the same step through burn's autodiff.
//! - `fno_sample/heun20_b64_n64_w24`: 20 Heun steps (40 evaluations) of 64 fields of 64² through
//!   `sample::solve` with the CPU engine (`FnoCpu`), unconstrained.
//!
//! The PyTorch peer of the training steps and of the sampling is `benches/peers/fno_train.py`.
//!
//! `cargo bench --bench fno`

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use fieldflow::model::{Fno, FnoConfig, FnoCpu, FnoGrad};
use fieldflow::noise::{SourceMeasure, SourceSampler};
use fieldflow::sample::{SolveOptions, Solver, solve};
use fieldflow::train::{AdamWOptions, CfmLoss, Ema, EngineRun, TrainConfig, clip_global_norm};
use fieldflow_pde::Grid2d;
use fieldflow_pde::rng::stream;
use rand::RngExt;
use std::hint::black_box;

fn input(b: usize, n: usize, device: &Device) -> (Tensor<4>, Tensor<1>) {
    let mut rng = stream(0, 0);
    let values: Vec<f32> = (0..b * 2 * n * n).map(|_| rng.random::<f32>() - 0.5).collect();
    let x = Tensor::<4>::from_data(TensorData::new(values, [b, 2, n, n]), device);
    (x, Tensor::<1>::full([b], 0.5, device))
}

/// The two benchmarked network sizes: `(id, width, projection width)`.
const SIZES: [(&str, usize, usize); 2] = [("b16_n64_w32", 32, 128), ("b16_n64_w24", 24, 64)];

fn network(width: usize, projection: usize) -> FnoConfig {
    FnoConfig::new(2, 2).with_width(width).with_projection_width(projection)
}

fn fno_forward(c: &mut Criterion) {
    let device = Device::default();
    let Ok(fno) = FnoConfig::new(2, 2).init(&device) else { return };
    let (x, t) = input(16, 64, &device);
    let mut group = c.benchmark_group("fno_forward");
    group.sample_size(10);
    group.bench_function("16x64", |bench| {
        bench.iter(|| black_box(fno.forward(x.clone(), t.clone(), None, None).map(|out| out.into_data())))
    });
    group.finish();
}

fn fno_generate(c: &mut Criterion) {
    let device = Device::default();
    let Ok(fno) = network(24, 64).init(&device) else { return };
    let Ok(engine) = FnoCpu::new(&fno) else { return };
    let (x, t) = input(64, 64, &device);
    let mut group = c.benchmark_group("fno_generate");
    group.sample_size(10);
    group.bench_function("burn", |bench| {
        bench.iter(|| black_box(fno.forward(x.clone(), t.clone(), None, None).map(|out| out.into_data())))
    });
    group.bench_function("cpu", |bench| {
        bench.iter(|| black_box(engine.forward(x.clone(), t.clone(), None, None).map(|out| out.into_data())))
    });
    group.finish();
}

/// The state of a burn-autodiff training run, stepped as `Trainer::fit` steps it (without the
/// data loader and logging).
struct BurnRun {
    model: Option<Fno>,
    optimizer: ModuleOptimizer,
    ema: Ema<Fno>,
    loss: CfmLoss,
    noise: SourceSampler,
    x1: Tensor<4>,
    step: u64,
}

impl BurnRun {
    fn new(config: &FnoConfig, batch: usize, n: usize) -> Option<Self> {
        let device = Device::default();
        let model = config.init(&device.clone().autodiff()).ok()?;
        let grid = Grid2d::square(n, 1.0).ok()?;
        let noise = SourceMeasure::White.sampler(&grid, 2).ok()?;
        // Stand-in data: another white-noise draw.
        let x1 = noise.sample(99, 0..batch as u64, &device).ok()?;
        let train = TrainConfig::default();
        Some(Self {
            ema: Ema::new(&model, 0.999).ok()?,
            model: Some(model),
            optimizer: AdamWOptions::default().optimizer(),
            loss: train.cfm_loss().ok()?,
            noise,
            x1,
            step: 0,
        })
    }

    /// One step; returns the loss.
    fn step(&mut self) -> Option<f64> {
        let model = self.model.take()?;
        let batch = self.loss.training_batch(0, self.step, self.x1.clone(), None, &self.noise).ok()?;
        let loss = self.loss.loss(&model, &batch).ok()?;
        let value = loss.clone().try_into_vec_as::<f32>().ok()?.first().copied().map(f64::from)?;
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clip_global_norm(&model, &mut grads, Some(1.0)).ok()?;
        let model = self.optimizer.step(1e-4, model, grads);
        self.ema.update(&model).ok()?;
        self.model = Some(model);
        self.step += 1;
        Some(value)
    }
}

/// The same run on the CPU training engine (the path `Trainer` takes on the CPU).
struct EngineBench {
    run: EngineRun,
    loss: CfmLoss,
    noise: SourceSampler,
    x1: Tensor<4>,
    step: u64,
}

impl EngineBench {
    fn new(burn: BurnRun) -> Option<Self> {
        let model = burn.model?;
        let engine = FnoGrad::new(&model).ok()?;
        let run = EngineRun::new(engine, &model, &burn.optimizer, AdamWOptions::default(), Some(&burn.ema)).ok()?;
        Some(Self { run, loss: burn.loss, noise: burn.noise, x1: burn.x1, step: 0 })
    }

    fn step(&mut self) -> Option<f64> {
        let batch = self.loss.training_batch(0, self.step, self.x1.clone(), None, &self.noise).ok()?;
        let (loss, _) = self.run.step(&self.loss, &batch, 1e-4, Some(1.0)).ok()?;
        self.step += 1;
        Some(loss)
    }
}

fn fno_train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("fno_train_step");
    group.sample_size(10);
    for (id, width, projection) in SIZES {
        let Some(mut run) = BurnRun::new(&network(width, projection), 16, 64).and_then(EngineBench::new) else {
            return;
        };
        group.bench_function(id, |bench| bench.iter(|| black_box(run.step())));
    }
    group.finish();
    let mut group = c.benchmark_group("fno_train_step_burn");
    group.sample_size(10);
    for (id, width, projection) in SIZES {
        let Some(mut run) = BurnRun::new(&network(width, projection), 16, 64) else { return };
        group.bench_function(id, |bench| bench.iter(|| black_box(run.step())));
    }
    group.finish();
}

fn fno_sample(c: &mut Criterion) {
    let device = Device::default();
    let Ok(fno) = network(24, 64).init(&device) else { return };
    let Ok(engine) = FnoCpu::new(&fno) else { return };
    let Ok(grid) = Grid2d::square(64, 1.0) else { return };
    let Ok(x0) = SourceMeasure::White.sample(&grid, 2, 0, 0..64, &device) else { return };
    let velocity = |x: Tensor<4>, t: f64| {
        let t = Tensor::<1>::full([1], t, &x.device());
        engine.forward(x.clone(), t, None, None).unwrap_or_else(|_| x.zeros_like())
    };
    let options = SolveOptions::uniform(20);
    let mut group = c.benchmark_group("fno_sample");
    group.sample_size(10);
    group.bench_function("heun20_b64_n64_w24", |bench| {
        bench.iter(|| solve(&velocity, x0.clone(), &Solver::Heun, &options).map(|sol| black_box(sol.x.into_data())))
    });
    group.finish();
}

criterion_group!(benches, fno_forward, fno_generate, fno_train_step, fno_sample);
criterion_main!(benches);
