//! A writer killed mid-way (SIGKILL, no unwinding) leaves no file at the final path.
//!
//! This lives in its own test binary on purpose: HDF5 opens files without `O_CLOEXEC`, so a child
//! process spawned while another test thread has a file open would inherit that file's lock and
//! make the other test fail to reopen it.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use fieldflow_datasets::{Dtype, FieldWriter, WriterOptions};

/// Run by [`killed_process_leaves_no_file_at_the_final_path`] in a child process: starts a file,
/// signals readiness, then waits to be killed. Does nothing when run on its own.
#[test]
#[ignore = "helper run in a child process by killed_process_leaves_no_file_at_the_final_path"]
fn child_writer_waiting_to_be_killed() {
    let Ok(target) = std::env::var("FIELDFLOW_TEST_KILL_TARGET") else { return };
    let target = std::path::PathBuf::from(target);
    let mut w = FieldWriter::create(&target, spec(Dtype::F32, false, false), &WriterOptions::default()).unwrap();
    w.append(fields(0, 3, 2, NY, NX).view(), None).unwrap();
    std::fs::write(target.with_extension("ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn killed_process_leaves_no_file_at_the_final_path() {
    let (dir, path) = tmp();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_writer_waiting_to_be_killed", "--test-threads=1"])
        .env("FIELDFLOW_TEST_KILL_TARGET", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = path.with_extension("ready");
    let start = Instant::now();
    while !ready.exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "child never got ready");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!path.exists(), "a killed writer left a file at the final path");
    assert!(!dir.path().join("data.xdmf").exists());
    let leftovers: Vec<String> = dir_names(dir.path()).into_iter().filter(|n| n != "data.ready").collect();
    assert!(leftovers.iter().all(|n| n.starts_with(".data.h5.tmp-")), "{leftovers:?}");
}
