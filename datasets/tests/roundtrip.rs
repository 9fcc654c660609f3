//! Write -> read round trips of every dataset kind, in both precisions, with partial reads and
//! batch iteration.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fieldflow_datasets::{Dtype, FieldReader, FieldWriter, Grid, WriterOptions};
use ndarray::{Array4, s};

fn check_all_kinds(dtype: Dtype, options: &WriterOptions) {
    let (_dir, path) = tmp();
    let n = 7;
    let written = write_file(&path, n, 3, spec(dtype, true, true), options);
    assert_eq!(written.samples, n);
    assert_eq!(written.path, path);

    let r = FieldReader::open(&path).unwrap();
    assert_eq!(r.len(), n);
    assert_eq!(r.sample_shape(), [2, NY, NX]);
    assert_eq!(r.dtype(), dtype);
    assert_eq!(r.coefficients_dtype(), Some(dtype));
    assert_eq!(r.trajectories_dtype(), Some(dtype));
    assert_eq!(r.metadata(), &metadata(true));
    assert_eq!(r.grid(), &Grid::periodic(NX, NY, 2.0, 1.0));
    assert_eq!(r.time(), Some(&TIME[..]));

    assert_eq!(r.read_range(0..n).unwrap(), fields(0, n, 2, NY, NX));
    assert_eq!(r.read_coefficients_range(0..n).unwrap(), coefficients(0, n, 1, NY, NX));
    assert_eq!(r.read_trajectories_range(0..n).unwrap(), trajectories(0, n, T, 2, NY, NX));
    // Partial reads, across batch and chunk boundaries.
    assert_eq!(r.read_range(2..5).unwrap(), fields(2, 3, 2, NY, NX));
    assert_eq!(r.read_coefficients_range(6..7).unwrap(), coefficients(6, 1, 1, NY, NX));
    assert_eq!(r.read_range(4..4).unwrap().dim(), (0, 2, NY, NX));
    for i in [0, 3, 6] {
        let traj = r.read_trajectory(i).unwrap();
        assert_eq!(traj, trajectories(i, 1, T, 2, NY, NX).index_axis_move(ndarray::Axis(0), 0));
    }
}

#[test]
fn all_kinds_round_trip_in_f32() {
    check_all_kinds(Dtype::F32, &WriterOptions::default());
}

#[test]
fn all_kinds_round_trip_in_f64() {
    check_all_kinds(Dtype::F64, &WriterOptions::default());
}

#[test]
fn round_trip_with_gzip_and_small_chunks() {
    check_all_kinds(Dtype::F32, &WriterOptions { chunk_samples: Some(2), gzip: Some(4), force: false });
}

#[test]
fn f64_keeps_full_precision_and_f32_rounds() {
    let (dir, path) = tmp();
    let data = Array4::from_shape_fn((2, 2, NY, NX), |(n, c, y, x)| 0.1 + (n + c + y + x) as f64 / 3.0);
    for (dtype, name) in [(Dtype::F64, "a.h5"), (Dtype::F32, "b.h5")] {
        let p = dir.path().join(name);
        let mut w = FieldWriter::create(&p, spec(dtype, false, false), &WriterOptions::default()).unwrap();
        w.append(data.view(), None).unwrap();
        w.finish().unwrap();
        let back = FieldReader::open(&p).unwrap().read_range(0..2).unwrap();
        match dtype {
            Dtype::F64 => assert_eq!(back, data),
            Dtype::F32 => assert_eq!(back, data.mapv(|v| f64::from(v as f32))),
        }
    }
    drop(path);
}

#[test]
fn fields_only_file_has_no_optional_datasets() {
    let (_dir, path) = tmp();
    write_file(&path, 3, 2, spec(Dtype::F32, false, false), &WriterOptions::default());
    let r = FieldReader::open(&path).unwrap();
    assert!(!r.has_coefficients());
    assert!(r.time().is_none());
    assert!(r.coefficients_stats().is_none());
    let err = r.read_coefficients_range(0..1).unwrap_err().to_string();
    assert!(err.contains("/coefficients") && err.contains("data.h5"), "{err}");
    assert!(r.read_trajectory(0).unwrap_err().to_string().contains("/trajectories"));
}

#[test]
fn batches_cover_the_file_in_order() {
    let (_dir, path) = tmp();
    let n = 10;
    write_file(&path, n, 4, spec(Dtype::F32, true, false), &WriterOptions::default());
    let r = FieldReader::open(&path).unwrap();
    let batches = r.batches(3).unwrap();
    assert_eq!(batches.len(), 4);
    let mut seen = 0;
    for batch in batches {
        let batch = batch.unwrap();
        assert_eq!(batch.start, seen);
        let b = batch.fields.dim().0;
        assert_eq!(b, 3.min(n - seen));
        assert_eq!(batch.fields, fields(seen, b, 2, NY, NX));
        assert_eq!(batch.coefficients.unwrap(), coefficients(seen, b, 1, NY, NX));
        seen += b;
    }
    assert_eq!(seen, n);
    assert!(r.batches(0).is_err());
}

#[test]
fn non_contiguous_input_views_are_written_in_logical_order() {
    let (_dir, path) = tmp();
    // A transposed (Fortran-order) view and a strided slice.
    let data = fields(0, 4, 2, NY, NX);
    let fortran = {
        let mut f = Array4::<f64>::zeros(ndarray::ShapeBuilder::f((4, 2, NY, NX)));
        f.assign(&data);
        f
    };
    let mut w = FieldWriter::create(&path, spec(Dtype::F64, false, false), &WriterOptions::default()).unwrap();
    w.append(fortran.view(), None).unwrap();
    w.append(data.slice(s![..;2, .., .., ..]), None).unwrap();
    assert_eq!(w.len(), 6);
    w.finish().unwrap();
    let r = FieldReader::open(&path).unwrap();
    assert_eq!(r.read_range(0..4).unwrap(), data);
    assert_eq!(r.read_range(4..6).unwrap(), data.slice(s![..;2, .., .., ..]));
}

#[test]
fn empty_file_is_valid() {
    let (_dir, path) = tmp();
    let w = FieldWriter::create(&path, spec(Dtype::F32, true, true), &WriterOptions::default()).unwrap();
    assert!(w.is_empty());
    let written = w.finish().unwrap();
    assert_eq!(written.samples, 0);
    let r = FieldReader::open(&path).unwrap();
    assert!(r.is_empty());
    assert_eq!(r.read_range(0..0).unwrap().dim(), (0, 2, NY, NX));
    assert_eq!(r.fields_stats().unwrap().count, 0);
}

#[test]
fn metadata_without_seed_round_trips() {
    let (_dir, path) = tmp();
    let mut s = spec(Dtype::F32, false, false);
    s.metadata.seed = None;
    s.metadata.source = Some(("pdebench-darcy".into(), "/data/x.hdf5".into()));
    let expected = s.metadata.clone();
    let w = FieldWriter::create(&path, s, &WriterOptions::default()).unwrap();
    w.finish().unwrap();
    assert_eq!(FieldReader::open(&path).unwrap().metadata(), &expected);
}
