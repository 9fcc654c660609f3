//! Importers on small fixtures with exactly the upstream layouts (dataset names, float32 for
//! PDEBench, axis orders, LZF for PDEBench NS, MATLAB's userblock and `MATLAB_class`
//! attributes). Every spatial size differs (X = 5, Y = 4) and every index enters the values with
//! its own weight, so any axis mix-up fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::{dir_names, tmp};
use fieldflow_datasets::{
    Boundary, DatasetError, Dtype, FieldReader, ImportOptions, SourceFormat, WriterOptions, import, open_source,
};
use hdf5::types::FixedAscii;
use ndarray::{Array, Array1, Array2, Array3, Array4, Array5, ShapeBuilder};

const N: usize = 3;
const X: usize = 5;
const Y: usize = 4;
const TT: usize = 3;

/// The value fieldflow must end up with at `[n, t, c, y, x]` (t = 0 for fields).
fn value(n: usize, t: usize, c: usize, y: usize, x: usize) -> f64 {
    (n * 10000 + t * 1000 + c * 100 + y * 10 + x) as f64 + 0.5
}

fn write<T: hdf5::H5Type + Clone, D: ndarray::Dimension>(
    file: &hdf5::File,
    name: &str,
    data: &Array<T, D>,
) -> hdf5::Dataset {
    file.new_dataset_builder().with_data(data.as_standard_layout().view()).create(name).unwrap()
}

// ---------------------------------------------------------------------------------------------
// PDEBench

fn pdebench_darcy(path: &Path) {
    let file = hdf5::File::create(path).unwrap();
    // PDEBench axis order: (x, y).
    let tensor = Array4::<f32>::from_shape_fn((N, 1, X, Y), |(n, _, x, y)| value(n, 0, 0, y, x) as f32);
    let nu = Array3::<f32>::from_shape_fn((N, X, Y), |(n, x, y)| -value(n, 0, 0, y, x) as f32);
    write(&file, "tensor", &tensor);
    write(&file, "nu", &nu);
    write(&file, "x-coordinate", &Array1::<f32>::from_shape_fn(X, |i| (i as f32 + 0.5) / X as f32));
    write(&file, "y-coordinate", &Array1::<f32>::from_shape_fn(Y, |j| (j as f32 + 0.5) / Y as f32));
}

#[test]
fn pdebench_darcy_imports_with_x_and_y_swapped_into_place() {
    let (dir, dst) = tmp();
    let src = dir.path().join("2D_DarcyFlow_beta1.0_Train.hdf5");
    pdebench_darcy(&src);
    assert_eq!(SourceFormat::detect(&src).unwrap(), SourceFormat::PdebenchDarcy);
    let written = import(&src, &dst, &ImportOptions::default()).unwrap();
    assert_eq!(written.samples, N);

    let r = FieldReader::open(&dst).unwrap();
    let m = r.metadata();
    assert_eq!((m.pde.as_str(), m.boundary), ("darcy", Boundary::Dirichlet));
    assert_eq!((m.channels.clone(), m.coefficient_channels.clone()), (vec!["u".to_owned()], vec!["a".to_owned()]));
    assert_eq!(m.source.as_ref().unwrap().0, "pdebench-darcy");
    assert!(m.config.contains("pdebench-darcy") && m.created_by.starts_with("fieldflow "));
    assert_eq!(r.sample_shape(), [1, Y, X]);
    assert_eq!(r.dtype(), Dtype::F32);
    assert!((r.grid().x[0] - 0.1).abs() < 1e-7 && (r.grid().y[0] - 0.125).abs() < 1e-7);
    assert!((m.lx - 1.0).abs() < 1e-6 && (m.ly - 1.0).abs() < 1e-6);
    let expected = Array4::from_shape_fn((N, 1, Y, X), |(n, _, y, x)| value(n, 0, 0, y, x));
    assert_eq!(r.read_range(0..N).unwrap(), expected);
    assert_eq!(r.read_coefficients_range(0..N).unwrap(), -expected);
}

fn pdebench_incomp_ns(path: &Path) {
    let file = hdf5::File::create(path).unwrap();
    // velocity (B, T, X, Y, 2), force (B, X, Y, 2), particles (B, T, X, Y, 1), t (B, T); LZF.
    let velocity = Array5::<f32>::from_shape_fn((N, TT, X, Y, 2), |(n, t, x, y, c)| value(n, t, c, y, x) as f32);
    let force = Array4::<f32>::from_shape_fn((N, X, Y, 2), |(n, x, y, c)| -value(n, 0, c, y, x) as f32);
    let particles = Array5::<f32>::from_shape_fn((N, TT, X, Y, 1), |(n, t, x, y, _)| (n + t + x + y) as f32);
    let t = Array2::<f32>::from_shape_fn((N, TT), |(_, k)| k as f32 * 0.5);
    for (name, chunk) in [("velocity", vec![1, 1, X, Y, 2]), ("particles", vec![1, 1, X, Y, 1])] {
        let data = if name == "velocity" { &velocity } else { &particles };
        file.new_dataset_builder().lzf().chunk(chunk).with_data(data.view()).create(name).unwrap();
    }
    file.new_dataset_builder().lzf().chunk(vec![1, X, Y, 2]).with_data(force.view()).create("force").unwrap();
    write(&file, "t", &t);
}

#[test]
fn pdebench_incompressible_ns_imports_lzf_trajectories() {
    let (dir, dst) = tmp();
    let src = dir.path().join("ns_incom_inhom_2d_512-0.h5");
    pdebench_incomp_ns(&src);
    let lzf = hdf5::File::open(&src).unwrap().dataset("velocity").unwrap().filters();
    assert!(lzf.iter().any(|f| matches!(f, hdf5::filters::Filter::LZF)), "{lzf:?}");
    assert_eq!(SourceFormat::detect(&src).unwrap(), SourceFormat::PdebenchIncompNs);
    import(&src, &dst, &ImportOptions { batch_size: Some(2), ..ImportOptions::default() }).unwrap();

    let r = FieldReader::open(&dst).unwrap();
    assert_eq!(r.metadata().channels, ["u", "v"]);
    assert_eq!(r.metadata().coefficient_channels, ["fx", "fy"]);
    assert_eq!(r.time(), Some(&[0.0, 0.5, 1.0][..]));
    let traj = Array5::from_shape_fn((N, TT, 2, Y, X), |(n, t, c, y, x)| value(n, t, c, y, x));
    assert_eq!(r.read_trajectories_range(0..N).unwrap(), traj);
    let last = Array4::from_shape_fn((N, 2, Y, X), |(n, c, y, x)| value(n, TT - 1, c, y, x));
    assert_eq!(r.read_range(0..N).unwrap(), last);
    let force = Array4::from_shape_fn((N, 2, Y, X), |(n, c, y, x)| -value(n, 0, c, y, x));
    assert_eq!(r.read_coefficients_range(0..N).unwrap(), force);
}

fn pdebench_compressible(path: &Path) {
    let file = hdf5::File::create(path).unwrap();
    for (c, name) in ["density", "Vx", "Vy", "pressure"].into_iter().enumerate() {
        let a = Array4::<f32>::from_shape_fn((N, TT, X, Y), |(n, t, x, y)| value(n, t, c, y, x) as f32);
        write(&file, name, &a);
    }
    write(&file, "t-coordinate", &Array1::<f32>::from_shape_fn(TT + 1, |k| k as f32 * 0.25));
    write(&file, "x-coordinate", &Array1::<f32>::from_shape_fn(X, |i| (i as f32 + 0.5) / X as f32));
    write(&file, "y-coordinate", &Array1::<f32>::from_shape_fn(Y, |j| (j as f32 + 0.5) / Y as f32));
}

#[test]
fn pdebench_compressible_imports_four_channels() {
    let (dir, dst) = tmp();
    let src = dir.path().join("2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5");
    pdebench_compressible(&src);
    assert_eq!(SourceFormat::detect(&src).unwrap(), SourceFormat::PdebenchCompressible);
    import(&src, &dst, &ImportOptions { dtype: Dtype::F64, ..ImportOptions::default() }).unwrap();

    let r = FieldReader::open(&dst).unwrap();
    assert_eq!(r.metadata().channels, ["density", "u", "v", "pressure"]);
    assert_eq!(r.metadata().boundary, Boundary::Periodic);
    assert_eq!(r.time(), Some(&[0.0, 0.25, 0.5][..]));
    let traj = Array5::from_shape_fn((N, TT, 4, Y, X), |(n, t, c, y, x)| value(n, t, c, y, x));
    assert_eq!(r.read_trajectories_range(0..N).unwrap(), traj);
    let last = Array4::from_shape_fn((N, 4, Y, X), |(n, c, y, x)| value(n, TT - 1, c, y, x));
    assert_eq!(r.read_range(0..N).unwrap(), last);
}

// ---------------------------------------------------------------------------------------------
// FNO .mat v7.3

/// Creates an HDF5 file the way MATLAB's `save -v7.3` does: a 512-byte userblock holding the
/// MAT-file header.
fn matlab_file(path: &Path) -> hdf5::File {
    hdf5::File::with_options().with_fcpl(|p| p.userblock(512)).create(path).unwrap()
}

fn write_matlab_header(path: &Path) {
    let mut header =
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .".to_vec();
    header.resize(116, b' ');
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&[0x00, 0x02, b'I', b'M']);
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&header).unwrap();
}

/// Writes a MATLAB array given in MATLAB's logical index order: MATLAB stores column-major, so
/// the HDF5 dataset has the axes reversed (a Fortran-order array viewed with reversed axes has
/// exactly MATLAB's bytes in C order).
fn write_matlab<D: ndarray::Dimension>(file: &hdf5::File, name: &str, matlab: Array<f64, D>) {
    assert!(matlab.t().is_standard_layout());
    let ds = write(file, name, &matlab.reversed_axes());
    let class = FixedAscii::<6>::from_ascii("double").unwrap();
    ds.new_attr::<FixedAscii<6>>().shape(()).create("MATLAB_class").unwrap().write_scalar(&class).unwrap();
}

fn fno_ns(path: &Path, with_t: bool) {
    let file = matlab_file(path);
    // MATLAB u(n, x, y, t), a(n, x, y), t(1, T); the first spatial MATLAB index is x.
    let u = Array4::from_shape_fn((N, X, Y, TT).f(), |(n, x, y, t)| value(n, t + 1, 0, y, x));
    let a = Array3::from_shape_fn((N, X, Y).f(), |(n, x, y)| value(n, 0, 0, y, x));
    write_matlab(&file, "u", u);
    write_matlab(&file, "a", a);
    if with_t {
        write_matlab(&file, "t", Array2::from_shape_fn((1, TT).f(), |(_, k)| (k + 1) as f64 * 0.1));
    }
    drop(file);
    write_matlab_header(path);
}

#[test]
fn fno_navier_stokes_mat_puts_a_at_time_zero_before_u() {
    let (dir, dst) = tmp();
    let src = dir.path().join("NavierStokes_V1e-3_N5000_T50.mat");
    fno_ns(&src, true);
    // The fixture really is MATLAB-shaped: userblock and reversed axes.
    let raw = hdf5::File::open(&src).unwrap();
    assert_eq!(raw.userblock(), 512);
    assert_eq!(raw.dataset("u").unwrap().shape(), [TT, Y, X, N]);
    assert_eq!(raw.dataset("a").unwrap().shape(), [Y, X, N]);
    drop(raw);
    assert_eq!(SourceFormat::detect(&src).unwrap(), SourceFormat::FnoNsMat);
    import(&src, &dst, &ImportOptions { dtype: Dtype::F64, ..ImportOptions::default() }).unwrap();

    let r = FieldReader::open(&dst).unwrap();
    assert_eq!(r.metadata().channels, ["w"]);
    assert!(r.metadata().coefficient_channels.is_empty());
    assert_eq!(r.sample_shape(), [1, Y, X]);
    let time = r.time().unwrap();
    assert_eq!(time.len(), TT + 1);
    assert_eq!(time[0], 0.0);
    for (k, t) in time[1..].iter().enumerate() {
        assert!((t - (k + 1) as f64 * 0.1).abs() < 1e-12);
    }
    let traj = Array5::from_shape_fn((N, TT + 1, 1, Y, X), |(n, t, _, y, x)| value(n, t, 0, y, x));
    assert_eq!(r.read_trajectories_range(0..N).unwrap(), traj);
    let last = Array4::from_shape_fn((N, 1, Y, X), |(n, _, y, x)| value(n, TT, 0, y, x));
    assert_eq!(r.read_range(0..N).unwrap(), last);
    assert_eq!(r.grid().x.len(), X);
    assert_eq!(r.grid().x[1], 1.0 / X as f64);
}

#[test]
fn fno_navier_stokes_mat_without_t_uses_frame_numbers() {
    let (dir, _) = tmp();
    let src = dir.path().join("ns.mat");
    fno_ns(&src, false);
    let source = open_source(&src).unwrap();
    assert_eq!(source.time().unwrap(), [0.0, 1.0, 2.0, 3.0]);
}

fn fno_darcy(path: &Path) {
    let file = matlab_file(path);
    let sol = Array3::from_shape_fn((N, X, Y).f(), |(n, x, y)| value(n, 0, 0, y, x));
    let coeff = Array3::from_shape_fn((N, X, Y).f(), |(n, x, y)| -value(n, 0, 0, y, x));
    write_matlab(&file, "coeff", coeff);
    write_matlab(&file, "sol", sol);
    drop(file);
    write_matlab_header(path);
}

#[test]
fn fno_darcy_mat_imports_coefficients_and_solutions() {
    let (dir, dst) = tmp();
    let src = dir.path().join("piececonst_r421_N1024_smooth1.mat");
    fno_darcy(&src);
    assert_eq!(SourceFormat::detect(&src).unwrap(), SourceFormat::FnoDarcyMat);
    import(&src, &dst, &ImportOptions::default()).unwrap();

    let r = FieldReader::open(&dst).unwrap();
    assert_eq!(r.metadata().pde, "darcy");
    assert_eq!(r.metadata().boundary, Boundary::Dirichlet);
    let expected = Array4::from_shape_fn((N, 1, Y, X), |(n, _, y, x)| value(n, 0, 0, y, x));
    assert_eq!(r.read_range(0..N).unwrap(), expected);
    assert_eq!(r.read_coefficients_range(0..N).unwrap(), -expected);
    // Nodes including the boundary on the unit square.
    assert_eq!((r.grid().x[0], r.grid().x[X - 1], r.grid().y[Y - 1]), (0.0, 1.0, 1.0));
    assert_eq!((r.metadata().lx, r.metadata().ly), (1.0, 1.0));
}

// ---------------------------------------------------------------------------------------------
// Reading in place, options, errors

#[test]
fn sources_read_in_place_match_the_imported_files() {
    let (dir, _) = tmp();
    type Builder = fn(&Path);
    let builders: [(&str, Builder); 4] = [
        ("darcy.hdf5", pdebench_darcy),
        ("ns.h5", pdebench_incomp_ns),
        ("cfd.hdf5", pdebench_compressible),
        ("fno_darcy.mat", fno_darcy),
    ];
    for (name, build) in builders {
        let src = dir.path().join(name);
        build(&src);
        let dst = dir.path().join(format!("{name}.native.h5"));
        import(&src, &dst, &ImportOptions { dtype: Dtype::F64, ..ImportOptions::default() }).unwrap();
        let source = open_source(&src).unwrap();
        let native = FieldReader::open(&dst).unwrap();
        assert_eq!(source.len(), native.len());
        assert_eq!(source.read_fields(1..3).unwrap(), native.read_range(1..3).unwrap(), "{name}");
        assert_eq!(source.metadata(), native.metadata(), "{name}");
        let err = source.read_fields(2..N + 1).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("out of range"), "{err}");
    }
}

#[test]
fn limit_and_force_options_apply() {
    let (dir, dst) = tmp();
    let src = dir.path().join("darcy.hdf5");
    pdebench_darcy(&src);
    let options = ImportOptions { limit: Some(2), ..ImportOptions::default() };
    import(&src, &dst, &options).unwrap();
    assert_eq!(FieldReader::open(&dst).unwrap().len(), 2);
    let err = import(&src, &dst, &options).unwrap_err();
    assert!(matches!(err, DatasetError::Exists { .. }));
    let forced = ImportOptions { writer: WriterOptions { force: true, ..WriterOptions::default() }, ..options };
    import(&src, &dst, &forced).unwrap();
    assert_eq!(dir_names(dir.path()), ["darcy.hdf5", "data.h5", "data.xdmf"]);
}

#[test]
fn native_files_import_as_copies() {
    let (dir, src) = tmp();
    common::write_file(&src, 4, 3, common::spec(Dtype::F64, true, true), &WriterOptions::default());
    let dst = dir.path().join("copy.h5");
    import(&src, &dst, &ImportOptions { dtype: Dtype::F32, ..ImportOptions::default() }).unwrap();
    let (a, b) = (FieldReader::open(&src).unwrap(), FieldReader::open(&dst).unwrap());
    assert_eq!(a.metadata(), b.metadata());
    assert_eq!(a.read_trajectories_range(0..4).unwrap(), b.read_trajectories_range(0..4).unwrap());
    assert_eq!(b.dtype(), Dtype::F32);
}

#[test]
fn importer_errors_name_the_file_and_dataset() {
    let (dir, dst) = tmp();
    // Darcy with a wrongly shaped `nu`.
    let src = dir.path().join("bad_darcy.hdf5");
    {
        let file = hdf5::File::create(&src).unwrap();
        write(&file, "tensor", &Array4::<f32>::zeros((2, 1, X, Y)));
        write(&file, "nu", &Array3::<f32>::zeros((2, Y, X)));
    }
    let err = import(&src, &dst, &ImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("bad_darcy.hdf5") && err.contains("/nu") && err.contains("(2, 4, 5)"), "{err}");
    // Unknown layout.
    let src = dir.path().join("other.h5");
    write(&hdf5::File::create(&src).unwrap(), "something", &Array1::<f32>::zeros(3));
    let err = import(&src, &dst, &ImportOptions::default()).unwrap_err().to_string();
    assert!(err.contains("other.h5") && err.contains("unrecognised layout") && err.contains("something"), "{err}");
    // Forcing a format the file does not have.
    let options = ImportOptions { format: Some(SourceFormat::FnoDarcyMat), ..ImportOptions::default() };
    let err = import(&src, &dst, &options).unwrap_err().to_string();
    assert!(err.contains("other.h5") && err.contains("dataset /sol is missing"), "{err}");
    // A MATLAB v5 file (not HDF5).
    let src = dir.path().join("old.mat");
    let mut bytes = b"MATLAB 5.0 MAT-file, Platform: GLNXA64".to_vec();
    bytes.resize(256, 0);
    std::fs::write(&src, bytes).unwrap();
    let err = import(&src, &dst, &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::MatlabNotHdf5 { .. }), "{err:?}");
    assert!(err.to_string().contains("-v7.3"));
    // Nothing was written.
    assert!(!dst.exists());
}

#[test]
fn opening_an_upstream_file_as_native_suggests_import() {
    let (dir, _) = tmp();
    let src = dir.path().join("darcy.hdf5");
    pdebench_darcy(&src);
    let err = FieldReader::open(&src).unwrap_err().to_string();
    assert!(err.contains("PDEBench 2D Darcy") && err.contains("fieldflow import"), "{err}");
}

#[test]
fn format_names_round_trip() {
    for f in SourceFormat::ALL {
        assert_eq!(f.name().parse::<SourceFormat>().unwrap(), f);
    }
    assert!("pdebench".parse::<SourceFormat>().unwrap_err().contains("pdebench-darcy"));
}
