//! `info` summarises native, upstream and broken files.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fieldflow_datasets::{DatasetError, Dtype, SourceFormat, WriterOptions, info};

#[test]
fn native_file_summary() {
    let (_dir, path) = tmp();
    write_file(&path, 3, 2, spec(Dtype::F32, true, true), &WriterOptions { gzip: Some(3), ..WriterOptions::default() });
    let i = info(&path).unwrap();
    assert_eq!(i.format, Some(SourceFormat::Native));
    assert_eq!((i.samples, i.sample_shape, i.time_steps), (Some(3), Some([2, NY, NX]), Some(T)));
    assert_eq!(i.channels, ["u", "v"]);
    assert_eq!(i.coefficient_channels, ["a"]);
    assert!(i.problem.is_none());
    let attr = |name: &str| i.attributes.iter().find(|a| a.name == name).unwrap().value.clone();
    assert_eq!(attr("fieldflow_format"), "1");
    assert_eq!(attr("channels"), "[u, v]");
    assert_eq!(attr("lx"), "2.0");
    assert_eq!(attr("seed"), "42");
    let fields = i.datasets.iter().find(|d| d.name == "/fields").unwrap();
    assert_eq!((fields.shape.clone(), fields.dtype.as_str()), (vec![3, 2, NY, NX], "float32"));
    assert!(fields.filters.iter().any(|f| f.contains("Deflate")), "{:?}", fields.filters);
    assert!(i.datasets.iter().any(|d| d.name == "/stats/fields_mean"));
    assert_eq!(i.stats.len(), 2 + 1 + 2);
    let u = &i.stats[0];
    assert_eq!((u.dataset.as_str(), u.channel.as_str()), ("fields", "u"));
    assert_eq!(u.min, pattern(0, 0, 0, 0));

    let text = i.to_string();
    for needle in [
        "format      fieldflow native layout, version 1",
        "samples     3 x 2 channel(s) on 4 x 6 (ny x nx)",
        "channels    u, v",
        "coefficients a",
        "trajectories 3 time steps",
        "config",
        "(3 lines)",
        "chunks (64, 2, 4, 6)",
        "/trajectories",
        "fields/u",
        "coefficients/a",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn upstream_and_broken_files() {
    let (dir, path) = tmp();
    // An upstream-like file: recognised, readable in place.
    let src = dir.path().join("darcy.hdf5");
    {
        let f = hdf5::File::create(&src).unwrap();
        f.new_dataset_builder().with_data(&ndarray::Array4::<f32>::zeros((2, 1, 3, 3))).create("tensor").unwrap();
        f.new_dataset_builder().with_data(&ndarray::Array3::<f32>::zeros((2, 3, 3))).create("nu").unwrap();
    }
    let i = info(&src).unwrap();
    assert_eq!(i.format, Some(SourceFormat::PdebenchDarcy));
    assert_eq!(i.samples, Some(2));
    assert!(i.to_string().contains("PDEBench 2D Darcy"));

    // A native file with a broken layout: summarised, with the problem named.
    write_file(&path, 2, 2, spec(Dtype::F32, false, false), &WriterOptions::default());
    hdf5::File::open_rw(&path).unwrap().unlink("grid/x").unwrap();
    let i = info(&path).unwrap();
    assert!(i.problem.as_deref().unwrap().contains("/grid/x"));
    assert!(i.to_string().contains("problem"));

    // Not HDF5: an error.
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello").unwrap();
    assert!(matches!(info(&txt), Err(DatasetError::NotHdf5 { .. })));
}
