//! Streaming statistics stored by the writer equal a two-pass computation over the file.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fieldflow_datasets::{Dtype, FieldReader, FieldWriter, Stats, WriterOptions};
use ndarray::{Array4, ArrayD, Axis};

/// Two-pass mean and population std of each channel along `axis`.
fn two_pass(data: &ArrayD<f64>, axis: usize) -> (Vec<f64>, Vec<f64>) {
    data.axis_iter(Axis(axis))
        .map(|lane| {
            let n = lane.len() as f64;
            let mean = lane.sum() / n;
            let var = lane.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            (mean, var.sqrt())
        })
        .unzip()
}

fn assert_matches(stats: &Stats, data: &ArrayD<f64>, axis: usize) {
    let (mean, std) = two_pass(data, axis);
    assert_eq!(stats.count as usize, data.len() / data.shape()[axis]);
    for c in 0..mean.len() {
        let scale = mean[c].abs().max(std[c]).max(1.0);
        assert!((stats.mean[c] - mean[c]).abs() <= 1e-12 * scale, "mean {c}: {} vs {}", stats.mean[c], mean[c]);
        assert!((stats.std[c] - std[c]).abs() <= 1e-12 * scale, "std {c}: {} vs {}", stats.std[c], std[c]);
        let lane = data.index_axis(Axis(axis), c);
        assert_eq!(stats.min[c], lane.iter().copied().fold(f64::INFINITY, f64::min));
        assert_eq!(stats.max[c], lane.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    }
}

#[test]
fn stored_stats_equal_two_pass_over_the_file() {
    for dtype in [Dtype::F32, Dtype::F64] {
        let (_dir, path) = tmp();
        write_file(&path, 11, 4, spec(dtype, true, true), &WriterOptions::default());
        let r = FieldReader::open(&path).unwrap();
        assert_matches(r.fields_stats().unwrap(), &r.read_range(0..11).unwrap().into_dyn(), 1);
        assert_matches(r.coefficients_stats().unwrap(), &r.read_coefficients_range(0..11).unwrap().into_dyn(), 1);
        assert_matches(r.trajectories_stats().unwrap(), &r.read_trajectories_range(0..11).unwrap().into_dyn(), 2);
    }
}

#[test]
fn stats_are_stable_for_data_with_a_large_offset() {
    // Values 1e6 + O(1): the naive E[x^2] - E[x]^2 loses ~all digits in f64; Chan's merge of
    // per-batch two-pass statistics must not.
    let (_dir, path) = tmp();
    let mut w = FieldWriter::create(&path, spec(Dtype::F64, false, false), &WriterOptions::default()).unwrap();
    let make = |start: usize, b: usize| {
        Array4::from_shape_fn((b, 2, NY, NX), |(n, c, y, x)| {
            1e6 * (c as f64 + 1.0) + (((start + n) * 7 + y * 3 + x * 5) % 13) as f64 / 7.0
        })
    };
    for (start, b) in [(0, 1), (1, 5), (6, 2), (8, 9)] {
        w.append(make(start, b).view(), None).unwrap();
    }
    w.finish().unwrap();
    let r = FieldReader::open(&path).unwrap();
    assert_matches(r.fields_stats().unwrap(), &make(0, 17).into_dyn(), 1);
}

#[test]
fn stats_do_not_depend_on_batching() {
    // Shards merged in order must store exactly the statistics of an unsharded run.
    let (dir, _) = tmp();
    let mut all = Vec::new();
    for batch in [1, 4, 11] {
        let path = dir.path().join(format!("b{batch}.h5"));
        write_file(&path, 11, batch, spec(Dtype::F64, true, true), &WriterOptions::default());
        let r = FieldReader::open(&path).unwrap();
        all.push((r.fields_stats().cloned(), r.coefficients_stats().cloned(), r.trajectories_stats().cloned()));
    }
    assert_eq!(all[0], all[1]);
    assert_eq!(all[0], all[2]);
}
