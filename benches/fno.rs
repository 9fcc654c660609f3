//! Forward pass of the default FNO velocity field (width 32, 12 × 12 modes, 4 layers, 2 channels)
//! on a batch of 16 fields of 64², on burn's default CPU device.
//!
//! `cargo bench --bench fno`

use burn::tensor::{Device, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use fieldflow::model::FnoConfig;
use fieldflow_pde::rng::stream;
use rand::RngExt;
use std::hint::black_box;

fn fno_forward(c: &mut Criterion) {
    let device = Device::default();
    let Ok(fno) = FnoConfig::new(2, 2).init(&device) else { return };
    let (b, n) = (16, 64);
    let mut rng = stream(0, 0);
    let values: Vec<f32> = (0..b * 2 * n * n).map(|_| rng.random::<f32>() - 0.5).collect();
    let x = Tensor::<4>::from_data(TensorData::new(values, [b, 2, n, n]), &device);
    let t = Tensor::<1>::full([b], 0.5, &device);
    let mut group = c.benchmark_group("fno_forward");
    group.sample_size(10);
    group.bench_function("16x64", |bench| {
        bench.iter(|| black_box(fno.forward(x.clone(), t.clone(), None, None).map(|out| out.into_data())))
    });
    group.finish();
}

criterion_group!(benches, fno_forward);
criterion_main!(benches);
