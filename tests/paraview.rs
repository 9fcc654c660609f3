//! ParaView's XDMF reader loads the sidecars fieldflow writes: VTK's `vtkXdmfReader` (the `vtk`
//! wheel, the reader behind ParaView's "XDMF Reader") opens a generated file, a data file with
//! trajectories and a Darcy file, and every channel of the first samples has the values h5py
//! reads, the trajectory times among its time steps (`tests/python/vtk_reader.py`). The
//! interpreter is `$FIELDFLOW_PYTHON` (`scripts/test` installs `vtk` into `.venv`).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{config, datagen, fieldflow};

fn vtk_reads(files: &[PathBuf]) {
    let python = std::env::var("FIELDFLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/vtk_reader.py");
    let out = std::process::Command::new(&python).arg(&script).args(files).output().unwrap_or_else(|e| {
        panic!("cannot run {python} ({e}); run scripts/test, or set FIELDFLOW_PYTHON to a python with vtk and h5py")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "vtkXdmfReader: {text}");
    assert_eq!(text.matches("as h5py reads them").count(), files.len(), "{text}");
}

#[test]
fn vtk_xdmf_reader_loads_every_channel_of_generated_trajectory_and_darcy_files() {
    let dir = tempfile::tempdir().unwrap();
    // Vorticity and velocity with two snapshots per sample, and the initial vorticity as a
    // coefficient.
    let trajectories = dir.path().join("ns.h5");
    datagen("smoke-datagen.toml", &trajectories, &["--set", "ns2d.output=\"both\""]);
    let darcy = dir.path().join("darcy.h5");
    datagen("darcy.toml", &darcy, &["--set", "samples=3", "--set", "darcy.resolution=17"]);
    let generated = dir.path().join("generated.h5");
    fieldflow()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["generate", "--quiet", "--config"])
        .arg(config("ns2d-divfree.toml"))
        .args(["--set", "samples=2", "--set", "preview.samples=0", "--set", "sampler.steps=2", "-o"])
        .arg(&generated)
        .assert()
        .success();
    vtk_reads(&[generated, trajectories, darcy]);
}
