//! Darcy direct solve: numeric sparse Cholesky + triangular solves for one FNO coefficient field,
//! with the solver (pattern and symbolic analysis) built once outside the timing loop, as a
//! dataset pipeline uses it.
//!
//! `cargo bench -p fieldflow-pde --bench darcy -- --warm-up-time 1 --measurement-time 5`

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use fieldflow_pde::darcy::{DarcySolver, FnoCoefficient, Forcing};
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

criterion_group!(benches, darcy);
criterion_main!(benches);
