//! Solver overhead: 20 Heun steps on a batch of 16 two-channel fields of 64² with a cheap
//! closure velocity (`v = x₁ − x`, a straight path towards a fixed field), on burn's default CPU
//! device. The velocity costs a few element-wise operations, so the time is the solver's own
//! (stage arithmetic, the per-step finiteness check and its read-back).
//!
//! `cargo bench --bench sampling`

use burn::tensor::{Device, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use fieldflow::sample::{SolveOptions, Solver, solve};
use fieldflow_pde::rng::stream;
use rand::RngExt;
use std::hint::black_box;

fn sample_heun(c: &mut Criterion) {
    let device = Device::default();
    let (b, n) = (16, 64);
    let mut rng = stream(0, 0);
    let mut field = |scale: f32| {
        let values: Vec<f32> = (0..b * 2 * n * n).map(|_| scale * (rng.random::<f32>() - 0.5)).collect();
        Tensor::<4>::from_data(TensorData::new(values, [b, 2, n, n]), &device)
    };
    let x0 = field(2.0);
    let target = field(1.0);
    let velocity = move |x: Tensor<4>, _t: f64| target.clone() - x;
    let options = SolveOptions::uniform(20);
    if let Err(e) = solve(&velocity, x0.clone(), &Solver::Heun, &options) {
        eprintln!("sample_heun: {e}");
        return;
    }
    let mut group = c.benchmark_group("sample_heun");
    group.sample_size(10);
    group.bench_function("16x64", |bench| {
        bench.iter(|| solve(&velocity, x0.clone(), &Solver::Heun, &options).map(|sol| black_box(sol.x.into_data())))
    });
    group.finish();
}

criterion_group!(benches, sample_heun);
criterion_main!(benches);
