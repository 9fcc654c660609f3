//! Criterion benchmarks of the spectral core, named as in the README's speed table:
//! `ns_step/256` (one FNO-scheme Navier–Stokes step at 256²) and `leray/64x256` (Leray projection
//! of 64 velocity fields at 256²). The Python peers live in `benches/peers/`.

use std::f64::consts::PI;

use criterion::{Criterion, criterion_group, criterion_main};
use fieldflow_pde::Grid2d;
use fieldflow_pde::leray::leray_batch;
use fieldflow_pde::navier_stokes::{NavierStokes2d, NsParams, TimeStepper};
use ndarray::Array4;

fn ns_step(c: &mut Criterion) {
    let n = 256;
    let Ok(grid) = Grid2d::square(n, 1.0) else { return };
    let w0 = grid.field_from_fn(|x, y| (2.0 * PI * x).sin() * (4.0 * PI * y).cos() + 0.5 * (6.0 * PI * (x + y)).cos());
    let Ok(mut ns) = NavierStokes2d::new(grid, NsParams::default(), w0.view()) else { return };
    c.bench_function("ns_step/256", |b| b.iter(|| ns.update(1e-4)));
}

fn leray(c: &mut Criterion) {
    let (batch, n) = (64, 256);
    let Ok(grid) = Grid2d::square(n, 2.0 * PI) else { return };
    let mut fields = Array4::from_shape_fn((batch, 2, n, n), |(b, ch, i, j)| {
        ((b * 31 + ch * 17 + i * 7 + j * 3) as f64 * 0.013).sin()
    });
    // Re-projecting a projected field costs the same as the first projection: no reset needed.
    c.bench_function("leray/64x256", |b| b.iter(|| leray_batch(&grid, fields.view_mut())));
}

fn fft(c: &mut Criterion) {
    let n = 256;
    let Ok(grid) = Grid2d::square(n, 1.0) else { return };
    let f = grid.field_from_fn(|x, y| (2.0 * PI * x).sin() * (4.0 * PI * y).cos());
    let mut spec = grid.spectral_zeros();
    let mut back = f.clone();
    c.bench_function("fft_forward/256", |b| b.iter(|| grid.forward(f.view(), spec.view_mut())));
    c.bench_function("fft_inverse/256", |b| b.iter(|| grid.inverse(spec.view(), back.view_mut())));
}

criterion_group!(benches, ns_step, leray, fft);
criterion_main!(benches);
