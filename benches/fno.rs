//! Forward pass of FNO velocity fields on burn's default CPU device, through burn's tensor ops
//! (`Fno::forward`) and through the CPU inference engine (`FnoCpu`, used by `fieldflow generate`):
//!
//! - `fno_forward/16x64`: the default network (width 32, 12 × 12 modes, 4 layers, projection
//!   128), 16 fields of 64², burn.
//! - `fno_generate/{burn,cpu}`: the shipped model's size (width 24, projection 64), 64 fields of
//!   64²: one velocity evaluation of `fieldflow generate --config configs/ns2d-divfree.toml`.
//!
//! `cargo bench --bench fno`

use burn::tensor::{Device, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use fieldflow::model::{FnoConfig, FnoCpu};
use fieldflow_pde::rng::stream;
use rand::RngExt;
use std::hint::black_box;

fn input(b: usize, n: usize, device: &Device) -> (Tensor<4>, Tensor<1>) {
    let mut rng = stream(0, 0);
    let values: Vec<f32> = (0..b * 2 * n * n).map(|_| rng.random::<f32>() - 0.5).collect();
    let x = Tensor::<4>::from_data(TensorData::new(values, [b, 2, n, n]), device);
    (x, Tensor::<1>::full([b], 0.5, device))
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
    let Ok(fno) = FnoConfig::new(2, 2).with_width(24).with_projection_width(64).init(&device) else { return };
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

criterion_group!(benches, fno_forward, fno_generate);
criterion_main!(benches);
