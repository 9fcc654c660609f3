//! Bad input gives errors that name the file and the dataset or attribute at fault.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;
use fieldflow_datasets::{DatasetError, Dtype, FieldReader, FieldWriter, Metadata, WriterOptions};
use ndarray::{Array1, Array4, Array5};

/// A valid file, then `edit` applied to it with the raw HDF5 API.
fn broken(edit: impl FnOnce(&hdf5::File)) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = tmp();
    write_file(&path, 3, 3, spec(Dtype::F32, true, true), &WriterOptions::default());
    edit(&hdf5::File::open_rw(&path).unwrap());
    (dir, path)
}

fn open_err(path: &Path) -> (DatasetError, String) {
    let err = FieldReader::open(path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "message does not name the file: {msg}");
    (err, msg)
}

#[test]
fn missing_dataset() {
    let (_dir, path) = broken(|f| f.unlink("grid/x").unwrap());
    let (err, msg) = open_err(&path);
    assert!(matches!(err, DatasetError::MissingDataset { .. }), "{err:?}");
    assert!(msg.contains("dataset /grid/x is missing"), "{msg}");

    let (_dir, path) = broken(|f| f.unlink("coefficients").unwrap());
    assert!(open_err(&path).1.contains("dataset /coefficients is missing"));

    let (_dir, path) = broken(|f| f.unlink("time").unwrap());
    assert!(open_err(&path).1.contains("dataset /time is missing"));
}

#[test]
fn wrong_shapes() {
    let (_dir, path) = broken(|f| {
        f.unlink("fields").unwrap();
        f.new_dataset_builder().with_data(&Array4::<f32>::zeros((3, 3, NY, NX))).create("fields").unwrap();
    });
    let (err, msg) = open_err(&path);
    assert!(matches!(err, DatasetError::Shape { .. }), "{err:?}");
    assert!(msg.contains("/fields has shape (3, 3, 4, 6)") && msg.contains("/channels"), "{msg}");

    let (_dir, path) = broken(|f| {
        f.unlink("trajectories").unwrap();
        f.new_dataset_builder().with_data(&Array5::<f32>::zeros((2, T, 2, NY, NX))).create("trajectories").unwrap();
    });
    assert!(open_err(&path).1.contains("/trajectories has shape (2, 3, 2, 4, 6), expected (3, 3, 2, 4, 6)"));

    let (_dir, path) = broken(|f| {
        f.unlink("grid/y").unwrap();
        f.group("grid").unwrap().new_dataset_builder().with_data(&Array1::<f64>::zeros(NY + 1)).create("y").unwrap();
    });
    assert!(open_err(&path).1.contains("/grid/y has shape (5,), expected (4,)"));

    let (_dir, path) = broken(|f| {
        f.unlink("coefficients").unwrap();
        f.new_dataset_builder().with_data(&Array4::<i32>::zeros((3, 1, NY, NX))).create("coefficients").unwrap();
    });
    let (err, msg) = open_err(&path);
    assert!(matches!(err, DatasetError::Dtype { .. }) && msg.contains("/coefficients has type int32"), "{msg}");
}

#[test]
fn wrong_format_version() {
    let (_dir, path) = broken(|f| {
        f.delete_attr("fieldflow_format").unwrap();
        f.new_attr::<i64>().shape(()).create("fieldflow_format").unwrap().write_scalar(&2i64).unwrap();
    });
    let (err, msg) = open_err(&path);
    assert!(matches!(err, DatasetError::FormatVersion { found: 2, supported: 1, .. }), "{err:?}");
    assert!(msg.contains("/fieldflow_format = 2"), "{msg}");

    let (_dir, path) = broken(|f| f.delete_attr("fieldflow_format").unwrap());
    assert!(open_err(&path).1.contains("attribute /fieldflow_format is missing"));
}

#[test]
fn bad_attributes() {
    let (_dir, path) = broken(|f| {
        f.delete_attr("boundary").unwrap();
        let v: hdf5::types::VarLenUnicode = "neumann".parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>().shape(()).create("boundary").unwrap().write_scalar(&v).unwrap();
    });
    let (err, msg) = open_err(&path);
    assert!(
        matches!(err, DatasetError::BadAttribute { .. }) && msg.contains("/boundary") && msg.contains("neumann"),
        "{msg}"
    );

    let (_dir, path) = broken(|f| {
        f.delete_attr("lx").unwrap();
        let v: hdf5::types::VarLenUnicode = "one".parse().unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>().shape(()).create("lx").unwrap().write_scalar(&v).unwrap();
    });
    assert!(open_err(&path).1.contains("attribute /lx: expected a number"));
}

#[test]
fn fixed_length_string_attributes_are_read() {
    // h5py writes numpy bytes as fixed-length ASCII; those must read like our vlen UTF-8 ones.
    let (_dir, path) = broken(|f| {
        f.delete_attr("pde").unwrap();
        let v = hdf5::types::FixedAscii::<8>::from_ascii("darcy").unwrap();
        f.new_attr::<hdf5::types::FixedAscii<8>>().shape(()).create("pde").unwrap().write_scalar(&v).unwrap();
    });
    assert_eq!(FieldReader::open(&path).unwrap().metadata().pde, "darcy");
}

#[test]
fn not_hdf5_and_missing_files() {
    let (dir, path) = tmp();
    std::fs::write(&path, b"this is not an HDF5 file, just text").unwrap();
    let (err, msg) = open_err(&path);
    assert!(matches!(err, DatasetError::NotHdf5 { .. }) && msg.ends_with("not an HDF5 file"), "{msg}");
    let missing = dir.path().join("missing.h5");
    let (err, _) = open_err(&missing);
    assert!(matches!(err, DatasetError::NotFound { .. }));
}

#[test]
fn nan_in_appended_data_names_file_dataset_and_sample() {
    let (dir, path) = tmp();
    let mut w = FieldWriter::create(&path, spec(Dtype::F32, true, true), &WriterOptions::default()).unwrap();
    w.append(fields(0, 2, 2, NY, NX).view(), Some(coefficients(0, 2, 1, NY, NX).view())).unwrap();
    let mut bad = fields(2, 3, 2, NY, NX);
    bad[[1, 1, 2, 3]] = f64::NAN;
    let err = w.append(bad.view(), Some(coefficients(2, 3, 1, NY, NX).view())).unwrap_err();
    assert!(matches!(err, DatasetError::NonFinite { sample: 3, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("data.h5") && msg.contains("dataset /fields") && msg.contains("NaN in sample 3"), "{msg}");
    assert_eq!(w.len(), 2, "a rejected batch must not be appended");

    let mut bad_coef = coefficients(2, 1, 1, NY, NX);
    bad_coef[[0, 0, 0, 0]] = f64::INFINITY;
    let msg = w.append(fields(2, 1, 2, NY, NX).view(), Some(bad_coef.view())).unwrap_err().to_string();
    assert!(msg.contains("/coefficients") && msg.contains("infinite value inf in sample 2"), "{msg}");

    let mut bad_traj = trajectories(0, 1, T, 2, NY, NX);
    bad_traj[[0, 2, 0, 0, 0]] = 1e300;
    let msg = w.append_trajectories(bad_traj.view()).unwrap_err().to_string();
    assert!(msg.contains("/trajectories") && msg.contains("overflows float32") && msg.contains("sample 0"), "{msg}");

    // The writer is still usable after rejected batches.
    w.append(fields(2, 1, 2, NY, NX).view(), Some(coefficients(2, 1, 1, NY, NX).view())).unwrap();
    drop(w);
    assert!(dir_names(dir.path()).is_empty());
}

#[test]
fn wrong_batch_shapes_and_missing_parts_are_rejected() {
    let (_dir, path) = tmp();
    let mut w = FieldWriter::create(&path, spec(Dtype::F64, true, false), &WriterOptions::default()).unwrap();
    let msg =
        w.append(fields(0, 1, 3, NY, NX).view(), Some(coefficients(0, 1, 1, NY, NX).view())).unwrap_err().to_string();
    assert!(
        msg.contains("/fields (input batch) has shape (1, 3, 4, 6), expected (B, C, ny, nx) = (1, 2, 4, 6)"),
        "{msg}"
    );
    let msg =
        w.append(fields(0, 1, 2, NY, NX).view(), Some(coefficients(0, 1, 1, NX, NY).view())).unwrap_err().to_string();
    assert!(msg.contains("/coefficients (input batch)"), "{msg}");
    let msg = w.append(fields(0, 1, 2, NY, NX).view(), None).unwrap_err().to_string();
    assert!(msg.contains("/coefficients") && msg.contains("given none"), "{msg}");
    let msg = w.append_trajectories(trajectories(0, 1, T, 2, NY, NX).view()).unwrap_err().to_string();
    assert!(msg.contains("/trajectories") && msg.contains("without trajectory times"), "{msg}");
    assert!(w.is_empty());
}

#[test]
fn invalid_specs_are_rejected_before_any_file_is_made() {
    let (dir, path) = tmp();
    let mut s = spec(Dtype::F32, false, false);
    s.metadata = Metadata::new("x", &[]);
    assert!(FieldWriter::create(&path, s, &WriterOptions::default()).unwrap_err().to_string().contains("channel"));
    let mut s = spec(Dtype::F32, false, false);
    s.metadata.channels = vec!["u".into(), "u".into()];
    assert!(FieldWriter::create(&path, s, &WriterOptions::default()).unwrap_err().to_string().contains("duplicate"));
    let mut s = spec(Dtype::F32, false, false);
    s.metadata.lx = 0.0;
    assert!(FieldWriter::create(&path, s, &WriterOptions::default()).unwrap_err().to_string().contains("lx"));
    let s = spec(Dtype::F32, false, false).with_time(vec![]);
    assert!(FieldWriter::create(&path, s, &WriterOptions::default()).unwrap_err().to_string().contains("/time"));
    let options = WriterOptions { gzip: Some(10), ..WriterOptions::default() };
    assert!(
        FieldWriter::create(&path, spec(Dtype::F32, false, false), &options).unwrap_err().to_string().contains("gzip")
    );
    let err = FieldWriter::create(dir.path().join("x.xdmf"), spec(Dtype::F32, false, false), &WriterOptions::default());
    assert!(err.unwrap_err().to_string().contains(".xdmf"));
    assert!(dir_names(dir.path()).is_empty());
}

#[test]
fn out_of_range_reads() {
    let (_dir, path) = tmp();
    write_file(&path, 3, 3, spec(Dtype::F32, true, true), &WriterOptions::default());
    let r = FieldReader::open(&path).unwrap();
    let msg = r.read_range(2..4).unwrap_err().to_string();
    assert!(
        msg.contains("data.h5")
            && msg.contains("/fields")
            && msg.contains("samples 2..4 out of range (the dataset holds 3)"),
        "{msg}"
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 2..1;
    assert!(r.read_coefficients_range(reversed).is_err());
    assert!(r.read_trajectory(3).unwrap_err().to_string().contains("/trajectories"));
}
