//! `fieldflow plot` through the real binary.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::fieldflow;
use predicates::prelude::*;

fn datagen(out: &Path, extra: &[&str]) {
    common::datagen("smoke-datagen.toml", out, extra);
}

/// Decodes a PNG: (width, height, RGB bytes).
fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("the PNG exists")));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Distinct colours in an RGB picture.
fn colours(png: &(u32, u32, Vec<u8>)) -> usize {
    png.2.chunks(3).map(|c| (c[0], c[1], c[2])).collect::<std::collections::HashSet<_>>().len()
}

/// Files in `dir` (to check that failures leave nothing behind).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn fields_and_spectra_of_a_velocity_file_are_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("both.h5");
    datagen(&data, &[]);

    // Default: vorticity of the first 4 samples, one row of 4 panels.
    let out = dir.path().join("vorticity.png");
    fieldflow()
        .args(["plot", "fields"])
        .arg(&data)
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("vorticity.png"));
    let png = read_png(&out);
    assert!(png.0 > 3 * png.1, "four panels side by side: {}×{}", png.0, png.1);
    assert!(colours(&png) > 100, "a heatmap has many colours");

    // Two samples of the speed and of a stored channel: two panels.
    for channel in ["speed", "u"] {
        let out = dir.path().join(format!("{channel}.png"));
        fieldflow()
            .args(["plot", "fields", "--samples", "1,3", "--channel", channel])
            .arg(&data)
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        let two = read_png(&out);
        assert!(two.0 < png.0 && two.1 == png.1, "{channel}: {}×{}", two.0, two.1);
    }

    // Spectrum, against a reference on a finer grid.
    let fine = dir.path().join("fine.h5");
    datagen(&fine, &["--set", "ns2d.resolution=32", "--set", "samples=2"]);
    let out = dir.path().join("spectrum.png");
    fieldflow()
        .args(["plot", "spectrum"])
        .arg(&data)
        .arg("--reference")
        .arg(&fine)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let png = read_png(&out);
    // The spectra panel (560 rows) over the per-shell ratio panel (300 rows).
    assert_eq!((png.0, png.1), (820, 860));
    // Both curves are drawn (the first two palette colours) in the upper panel, and the ratio
    // (first colour) with its shaded band in the lower one.
    let count = |rgb: [u8; 3], rows: std::ops::Range<usize>| {
        png.2.chunks(3).enumerate().filter(|(i, c)| *c == rgb && rows.contains(&(i / 820))).count()
    };
    assert!(count([0x1f, 0x77, 0xb4], 0..560) > 50 && count([0xd6, 0x27, 0x28], 0..560) > 50);
    assert!(count([0x1f, 0x77, 0xb4], 560..860) > 50 && count([0xd9, 0xea, 0xd3], 560..860) > 1000);
}

#[test]
fn loss_curves_from_a_run_directory_or_its_csv() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    // Rows built from the header's column names, so that the test follows the log's layout.
    let header = fieldflow::train::log::HEADER;
    let mut log = format!("{header}\n");
    for step in 1..=20u32 {
        let s = f64::from(step);
        let row: Vec<String> = header
            .split(',')
            .map(|column| match column {
                "step" => step.to_string(),
                "train_loss" => format!("{:e}", 1.0 / s),
                "val_loss" if step % 5 == 0 => format!("{:e}", 1.2 / s),
                "val_loss" | "ema_val_loss" | "residual_loss" => String::new(),
                _ => "1e-3".into(),
            })
            .collect();
        log.push_str(&row.join(","));
        log.push('\n');
    }
    std::fs::write(run.join("train_log.csv"), log).unwrap();
    for (input, name) in [(run.clone(), "from_dir.png"), (run.join("train_log.csv"), "from_csv.png")] {
        let out = dir.path().join(name);
        fieldflow().args(["plot", "loss"]).arg(&input).arg("-o").arg(&out).assert().success();
        let png = read_png(&out);
        assert_eq!((png.0, png.1), (820, 560));
        let count = |rgb: [u8; 3]| png.2.chunks(3).filter(|c| *c == rgb).count();
        assert!(count([0x1f, 0x77, 0xb4]) > 50 && count([0xd6, 0x27, 0x28]) > 20, "training and validation loss");
    }
}

#[test]
fn bad_input_exits_2_names_the_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vorticity.h5");
    datagen(&data, &["--set", "ns2d.output=\"vorticity\""]);
    let work = dir.path().join("out");
    std::fs::create_dir(&work).unwrap();
    let out = work.join("p.png");
    let csv = work.join("empty.csv");
    std::fs::write(&csv, "step,lr\n").unwrap();
    let before = files(&work);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["fields".into(), "missing.h5".into()], "missing.h5"),
        (vec!["fields".into(), data.display().to_string(), "--channel".into(), "pressure".into()], "pressure"),
        // Vorticity cannot be computed without u, v.
        (vec!["fields".into(), data.display().to_string(), "--channel".into(), "speed".into()], "speed"),
        (vec!["fields".into(), data.display().to_string(), "--samples".into(), "0,9".into()], "sample 9"),
        (vec!["fields".into(), data.display().to_string(), "--cmap".into(), "jet".into()], "jet"),
        (vec!["spectrum".into(), data.display().to_string(), "--reference".into(), "nope.h5".into()], "nope.h5"),
        (vec!["loss".into(), work.join("no-run").display().to_string()], "no-run"),
        (vec!["loss".into(), csv.display().to_string()], "train_loss"),
    ];
    for (args, needle) in cases {
        fieldflow()
            .arg("plot")
            .args(&args)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
        assert_eq!(files(&work), before, "{args:?} left a file behind");
    }
    // Unwritable outputs: a missing directory, a directory.
    for bad in [work.join("no-dir").join("p.png"), work.clone()] {
        fieldflow()
            .args(["plot", "fields"])
            .arg(&data)
            .arg("-o")
            .arg(&bad)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--output"));
    }
    assert_eq!(files(&work), before);
    // The vorticity-only file itself plots fine (its one channel, w).
    fieldflow().args(["plot", "fields"]).arg(&data).arg("-o").arg(&out).assert().success();
    assert!(read_png(&out).0 > 0);
}
