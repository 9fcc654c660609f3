//! Interoperability with h5py + numpy: Python reads what fieldflow writes, and fieldflow imports
//! what Python writes in PDEBench's layout (including the LZF filter as h5py implements it).
//!
//! The interpreter is `$FIELDFLOW_PYTHON` if set, else `python3`; it needs h5py and numpy
//! (`datasets/tests/python/requirements.txt`). These tests fail, rather than skip, when they
//! are missing. The tests of this binary run one at a time: HDF5 opens files without
//! `O_CLOEXEC`, so a Python child spawned while another thread had a file open would inherit
//! its lock.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::*;
use fieldflow_datasets::{Dtype, FieldReader, ImportOptions, WriterOptions, import};
use ndarray::{Array4, Array5};

static SERIAL: Mutex<()> = Mutex::new(());

fn python() -> String {
    std::env::var("FIELDFLOW_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name)
}

/// Fails with instructions when the interpreter or h5py/numpy are missing.
fn require_h5py() {
    let py = python();
    let ok = Command::new(&py).args(["-c", "import h5py, numpy"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        panic!(
            "the Python interop tests need h5py and numpy, which `{py}` cannot import.\n\
             Install them in a virtual environment and point FIELDFLOW_PYTHON at it:\n\
             \n    python3 -m venv .venv && .venv/bin/pip install -r datasets/tests/python/requirements.txt\n\
             \x20   export FIELDFLOW_PYTHON=$PWD/.venv/bin/python\n\
             \n(scripts/test does this for you.)"
        );
    }
}

fn run(args: &[&std::ffi::OsStr]) {
    let out = Command::new(python()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn h5py_reads_what_fieldflow_writes() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    require_h5py();
    let (_dir, path) = tmp();
    write_file(&path, 5, 2, spec(Dtype::F32, true, true), &WriterOptions::default());
    run(&[script("check_native.py").as_os_str(), path.as_os_str()]);
}

fn value(n: usize, t: usize, c: usize, y: usize, x: usize) -> f64 {
    (n * 10000 + t * 1000 + c * 100 + y * 10 + x) as f64 + 0.5
}

#[test]
fn fieldflow_imports_what_h5py_writes_in_pdebench_layout() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    require_h5py();
    let (dir, _) = tmp();
    let (n, t, nx, ny) = (3, 3, 5, 4);

    let src = dir.path().join("2D_DarcyFlow_beta1.0_Train.hdf5");
    run(&[script("make_pdebench.py").as_os_str(), "darcy".as_ref(), src.as_os_str()]);
    let dst = dir.path().join("darcy.h5");
    import(&src, &dst, &ImportOptions::default()).unwrap();
    let r = FieldReader::open(&dst).unwrap();
    let expected = Array4::from_shape_fn((n, 1, ny, nx), |(n, _, y, x)| value(n, 0, 0, y, x));
    assert_eq!(r.read_range(0..n).unwrap(), expected);
    assert_eq!(r.read_coefficients_range(0..n).unwrap(), -expected);
    assert!((r.grid().x[0] - 0.1).abs() < 1e-7);

    let src = dir.path().join("ns_incom_inhom_2d_512-0.h5");
    run(&[script("make_pdebench.py").as_os_str(), "incomp-ns".as_ref(), src.as_os_str()]);
    let dst = dir.path().join("ns.h5");
    import(&src, &dst, &ImportOptions::default()).unwrap();
    let r = FieldReader::open(&dst).unwrap();
    let traj = Array5::from_shape_fn((n, t, 2, ny, nx), |(n, t, c, y, x)| value(n, t, c, y, x));
    assert_eq!(r.read_trajectories_range(0..n).unwrap(), traj);
    let force = Array4::from_shape_fn((n, 2, ny, nx), |(n, c, y, x)| -value(n, 0, c, y, x));
    assert_eq!(r.read_coefficients_range(0..n).unwrap(), force);
    assert_eq!(r.time(), Some(&[0.0, 0.5, 1.0][..]));
}
