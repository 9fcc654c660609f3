//! Darcy direct solve: numeric sparse Cholesky + triangular solves for one FNO coefficient field,
//! with the solver (pattern and symbolic analysis) built once outside the timing loop, as a
//! dataset pipeline uses it.
//!
//! `cargo bench -p fieldflow-pde --bench darcy -- --warm-up-time 1 --measurement-time 5`

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use fieldflow_pde::constraints::{Constraint, DarcyPde};
use fieldflow_pde::darcy::{DarcyOperator, DarcySolver, FaceAverage, FnoCoefficient, Forcing};
use ndarray::{Array3, s};
use std::hint::black_box;

fn darcy(c: &mut Criterion) {
    let mut group = c.benchmark_group("darcy");
    group.sample_size(20).sampling_mode(SamplingMode::Flat);
    for s in [129, 257] {
        let solver = match DarcySolver::new(s) {
            Ok(solver) => solver,
            Err(e) => {
                eprintln!("darcy/{s}: cannot build the solver: {e}");
                continue;
            }
        };
        let (Ok(a), Ok(f)) = (FnoCoefficient::default().sample(s, 0, 0), Forcing::default().field(s)) else {
            eprintln!("darcy/{s}: cannot build the inputs");
            continue;
        };
        group.bench_function(BenchmarkId::from_parameter(s), |b| {
            b.iter(|| black_box(solver.solve(black_box(a.view()), black_box(f.view()))))
        });
    }
    group.finish();
}

/// Projection of a noisy (a, u) pair onto the discrete Darcy equation (Gauss–Newton with sparse
/// normal-equation solves), as PCFM does at every sampling step.
fn pair_projection(c: &mut Criterion) {
    let mut group = c.benchmark_group("darcy_pair_projection");
    group.sample_size(20).sampling_mode(SamplingMode::Flat);
    for s in [33, 65] {
        let (Ok(op), Ok(a), Ok(f)) = (
            DarcyOperator::new(s, FaceAverage::Arithmetic),
            FnoCoefficient::default().sample(s, 0, 0),
            Forcing::default().field(s),
        ) else {
            eprintln!("darcy_pair_projection/{s}: cannot build the inputs");
            continue;
        };
        let Ok(constraint) = DarcyPde::new(op, f) else { continue };
        let mut pair = Array3::zeros((2, s, s));
        pair.slice_mut(s![0, .., ..]).assign(&a);
        pair.slice_mut(s![1, .., ..])
            .assign(&ndarray::Array2::from_shape_fn((s, s), |(i, j)| 0.05 * ((i * 7 + j * 3) as f64).sin()));
        group.bench_function(BenchmarkId::from_parameter(s), |b| b.iter(|| black_box(constraint.project(pair.view()))));
    }
    group.finish();
}

criterion_group!(benches, darcy, pair_projection);
criterion_main!(benches);
