//! Atomic output: the final path only ever holds a complete file.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fieldflow_datasets::{DatasetError, Dtype, FieldReader, FieldWriter, WriterOptions};

#[test]
fn existing_target_is_refused_without_force() {
    let (dir, path) = tmp();
    std::fs::write(&path, b"precious").unwrap();
    let err = FieldWriter::create(&path, spec(Dtype::F32, false, false), &WriterOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::Exists { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()) && msg.contains("use --force"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    assert_eq!(dir_names(dir.path()), ["data.h5"]);
}

#[test]
fn existing_sidecar_is_refused_without_force() {
    let (dir, path) = tmp();
    std::fs::write(dir.path().join("data.xdmf"), b"old").unwrap();
    let err = FieldWriter::create(&path, spec(Dtype::F32, false, false), &WriterOptions::default()).unwrap_err();
    assert!(err.to_string().contains("data.xdmf") && err.to_string().contains("--force"), "{err}");
}

#[test]
fn force_replaces_the_file_and_its_sidecar() {
    let (dir, path) = tmp();
    write_file(&path, 2, 2, spec(Dtype::F32, false, false), &WriterOptions::default());
    let old_xdmf = std::fs::read_to_string(dir.path().join("data.xdmf")).unwrap();
    let options = WriterOptions { force: true, ..WriterOptions::default() };
    write_file(&path, 5, 2, spec(Dtype::F64, false, false), &options);
    let r = FieldReader::open(&path).unwrap();
    assert_eq!((r.len(), r.dtype()), (5, Dtype::F64));
    assert_ne!(std::fs::read_to_string(dir.path().join("data.xdmf")).unwrap(), old_xdmf);
    assert_eq!(dir_names(dir.path()), ["data.h5", "data.xdmf"]);
}

#[test]
fn finished_writer_leaves_only_the_file_and_sidecar() {
    let (dir, path) = tmp();
    write_file(&path, 3, 2, spec(Dtype::F32, true, true), &WriterOptions::default());
    assert_eq!(dir_names(dir.path()), ["data.h5", "data.xdmf"]);
}

#[test]
fn dropped_writer_leaves_nothing() {
    let (dir, path) = tmp();
    let mut w = FieldWriter::create(&path, spec(Dtype::F32, true, false), &WriterOptions::default()).unwrap();
    w.append(fields(0, 2, 2, NY, NX).view(), Some(coefficients(0, 2, 1, NY, NX).view())).unwrap();
    // The temporary file exists while writing, hidden, beside the target.
    let names = dir_names(dir.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with(".data.h5.tmp-"), "{names:?}");
    drop(w);
    assert!(dir_names(dir.path()).is_empty());
    assert!(!path.exists());
}

#[test]
fn failed_finish_leaves_nothing() {
    let (dir, path) = tmp();
    let mut w = FieldWriter::create(&path, spec(Dtype::F32, false, true), &WriterOptions::default()).unwrap();
    w.append(fields(0, 2, 2, NY, NX).view(), None).unwrap();
    w.append_trajectories(trajectories(0, 1, T, 2, NY, NX).view()).unwrap();
    let err = w.finish().unwrap_err().to_string();
    assert!(err.contains("/trajectories holds 1 samples but /fields holds 2"), "{err}");
    assert!(dir_names(dir.path()).is_empty());
}

#[test]
fn target_created_meanwhile_is_not_overwritten() {
    let (dir, path) = tmp();
    let mut w = FieldWriter::create(&path, spec(Dtype::F32, false, false), &WriterOptions::default()).unwrap();
    w.append(fields(0, 1, 2, NY, NX).view(), None).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    assert!(matches!(w.finish(), Err(DatasetError::Exists { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    assert_eq!(dir_names(dir.path()), ["data.h5"]);
}
