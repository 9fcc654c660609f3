//! Bad input to every subcommand, through the real binary: exit code 2, a message on stderr that
//! names the file, key or flag at fault, no panic, and no output file (nor a hidden `.tmp`
//! sibling) left behind.
//!
//! Every failing command runs with its working directory in a scratch directory whose listing
//! (hidden files included) must be the same before and after, so that relative defaults of the
//! configs (`runs/smoke`, `smoke.h5`, …) are caught too.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{config, fieldflow, set_path};
use fieldflow_datasets::{FieldReader, FieldWriter, FileSpec, WriterOptions};

/// Every entry under `dir`, recursively, hidden ones included, as paths relative to `dir`.
fn listing(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Runs `cmd` in `work`, and asserts exit code 2, every needle in stderr, no panic, and the
/// listing of `work` unchanged. Returns stderr.
fn fails(mut cmd: Command, work: &Path, needles: &[&str]) -> String {
    let before = listing(work);
    let out = cmd.current_dir(work).output().expect("fieldflow runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let what = format!("{cmd:?}\nstderr: {stderr}");
    assert_eq!(out.status.code(), Some(2), "exit code of {what}");
    assert!(!stderr.contains("panicked"), "panic in {what}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {what}");
    }
    assert_eq!(listing(work), before, "files left behind by {what}");
    stderr
}

/// Four 16² velocity fields (u, v) from the smoke config, plus `extra` overrides.
fn velocity(out: &Path, extra: &[&str]) {
    fieldflow()
        .args(["datagen", "--quiet", "--config"])
        .arg(config("smoke-datagen.toml"))
        .args(["--set", "ns2d.output=\"velocity\"", "-o"])
        .arg(out)
        .args(extra)
        .assert()
        .success();
}

/// An HDF5 file that is not a data file of any kind fieldflow knows: one dataset named "foo".
fn foreign_hdf5(path: &Path) {
    let file = hdf5::File::create(path).unwrap();
    let values = ndarray::Array2::from_shape_fn((4, 5), |(i, j)| (i * 5 + j) as f64);
    file.new_dataset_builder().with_data(&values).create("foo").unwrap();
}

/// A scratch directory `dir/name`, created empty.
fn scratch(dir: &Path, name: &str) -> PathBuf {
    let work = dir.join(name);
    std::fs::create_dir(&work).unwrap();
    work
}

/// The three config-driven jobs: (subcommand, smoke config, key of a known section key to
/// misspell, its misspelling, wrong-type and out-of-range replacements with the key they name).
struct Job {
    command: &'static str,
    config: &'static str,
    /// (text in the smoke config, misspelt replacement, full misspelt key, suggestion).
    unknown: (&'static str, &'static str, &'static str, &'static str),
    /// (text, replacement, key) giving a value of the wrong type.
    wrong_type: (&'static str, &'static str, &'static str),
    /// (text, replacement, key) giving a value out of its range.
    out_of_range: (&'static str, &'static str, &'static str),
}

const JOBS: [Job; 3] = [
    Job {
        command: "datagen",
        config: "smoke-datagen.toml",
        unknown: ("viscosity = 1e-2", "viscosty = 1e-2", "ns2d.viscosty", "viscosity"),
        wrong_type: ("viscosity = 1e-2", "viscosity = \"thick\"", "ns2d.viscosity"),
        out_of_range: ("batch = 2 ", "batch = 0 ", "batch"),
    },
    Job {
        command: "train",
        config: "smoke-train.toml",
        unknown: ("\nsteps = 30 ", "\nstpes = 30 ", "train.stpes", "steps"),
        wrong_type: ("width = 8 ", "width = \"wide\" ", "model.width"),
        out_of_range: ("train_fraction = 0.75", "train_fraction = 1.5", "data.train_fraction"),
    },
    Job {
        command: "generate",
        config: "smoke-generate.toml",
        unknown: ("steps = 4 ", "stpes = 4 ", "sampler.stpes", "steps"),
        wrong_type: ("steps = 4 ", "steps = \"four\" ", "sampler.steps"),
        out_of_range: ("steps = 4 ", "steps = 0 ", "sampler.steps"),
    },
];

/// The job's command writing (if it got that far) into `work/out.h5` or `work/run`.
fn job_command(job: &Job, config_path: &Path, work: &Path, extra: &[&str]) -> Command {
    let mut cmd = fieldflow();
    cmd.args([job.command, "--quiet", "--config"]).arg(config_path);
    match job.command {
        "train" => {
            cmd.args(["--set", &set_path("output.run_dir", &work.join("run"))]);
        }
        _ => {
            cmd.arg("-o").arg(work.join("out.h5"));
        }
    }
    cmd.args(extra);
    cmd
}

#[test]
fn config_errors_of_every_job_exit_2_name_the_key_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = scratch(dir.path(), "work");
    let configs = scratch(dir.path(), "configs");
    for job in &JOBS {
        let base = std::fs::read_to_string(config(job.config)).unwrap();
        let bad = configs.join(format!("bad-{}.toml", job.command));
        let edited = |(from, to): (&str, &str)| {
            assert!(base.contains(from), "{} holds {from:?}", job.config);
            base.replacen(from, to, 1)
        };
        let file = bad.file_name().unwrap().to_string_lossy().into_owned();
        let (from, to, key, suggestion) = job.unknown;
        let unknown = format!("unknown key `{key}`");
        let did_you_mean = format!("did you mean `{suggestion}`?");
        let (wt_from, wt_to, wt_key) = job.wrong_type;
        let (or_from, or_to, or_key) = job.out_of_range;
        let cases: Vec<(String, Vec<&str>)> = vec![
            (edited((from, to)), vec![&file, &unknown, &did_you_mean]),
            (edited((wt_from, wt_to)), vec![&file, wt_key, "invalid type"]),
            (edited((or_from, or_to)), vec![&file, or_key]),
            (format!("{base}\n[unclosed\n"), vec![&file, "is not valid TOML"]),
            ("samples = \n".into(), vec![&file, "is not valid TOML"]),
        ];
        for (text, needles) in cases {
            std::fs::write(&bad, &text).unwrap();
            fails(job_command(job, &bad, &work, &[]), &work, &needles);
        }

        // The same mistakes as `--set` overrides on the pristine config.
        let smoke = config(job.config);
        let key_value = |text: &str| text.trim().replace(' ', "");
        let set_unknown = format!("{key}={}", key_value(to).split_once('=').unwrap().1);
        let set_wrong = format!("{wt_key}={}", key_value(wt_to).split_once('=').unwrap().1);
        let set_range = format!("{or_key}={}", key_value(or_to).split_once('=').unwrap().1);
        for (set, needles) in [
            (set_unknown.as_str(), vec![job.config, unknown.as_str(), did_you_mean.as_str()]),
            (set_wrong.as_str(), vec![job.config, wt_key]),
            (set_range.as_str(), vec![job.config, or_key]),
        ] {
            fails(job_command(job, &smoke, &work, &["--set", set]), &work, &needles);
        }

        // Malformed key paths of `--set`.
        for (set, reason) in [
            ("samples.x=1", "`samples` is a value, not a section"),
            ("no-equals-sign", "expected `section.key=value`"),
            ("solver..steps=1", "empty key segment"),
            ("=3", "empty key segment"),
            (".x=1", "empty key segment"),
        ] {
            let set = if job.command == "train" && set.starts_with("samples") { "data.path.x=1" } else { set };
            let reason = if set.starts_with("data.path") { "`path` is a value, not a section" } else { reason };
            let spec = format!("invalid --set `{set}`");
            fails(job_command(job, &smoke, &work, &["--set", set]), &work, &[&spec, reason]);
        }
        // An unknown section.
        fails(job_command(job, &smoke, &work, &["--set", "nosuch.key=1"]), &work, &["nosuch"]);

        // A missing config file.
        let missing = configs.join("missing.toml");
        fails(job_command(job, &missing, &work, &[]), &work, &["missing.toml", "cannot read config"]);
        // A directory instead of a config file.
        fails(job_command(job, &configs, &work, &[]), &work, &["configs", "cannot read config"]);
    }
}

#[test]
fn generate_takes_any_fixed_step_solver_as_the_pcfm_predictor() {
    let dir = tempfile::tempdir().unwrap();
    let work = scratch(dir.path(), "work");
    let dry_run = |sets: &[String]| {
        let mut cmd = fieldflow();
        cmd.args(["generate", "--dry-run", "--config"]).arg(config("smoke-generate.toml"));
        for set in sets {
            cmd.args(["--set", set]);
        }
        let out = cmd.current_dir(&work).assert().success().get_output().clone();
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    for solver in ["euler", "midpoint", "heun", "rk4"] {
        for method in ["pcfm", "project"] {
            let sets = [format!("sampler.solver=\"{solver}\""), format!("sampler.method=\"{method}\"")];
            let (effective, stderr) = dry_run(&sets);
            assert!(effective.contains(&format!("solver = \"{solver}\"")), "{effective}");
            assert!(effective.contains(&format!("method = \"{method}\"")), "{effective}");
            assert!(!stderr.contains("warning"), "{stderr}");
        }
    }
    // The earlier spellings mean the same, with a warning naming the new keys.
    let (effective, stderr) = dry_run(&["solver.method=\"midpoint\"".into(), "constraint.method=\"pcfm\"".into()]);
    assert!(effective.contains("solver = \"midpoint\"") && effective.contains("method = \"pcfm\""), "{effective}");
    for moved in ["`solver.method` is now `sampler.solver`", "`constraint.method` is now `sampler.method`"] {
        assert!(stderr.contains(moved), "{stderr}");
    }
}

/// Sampler options that only one method understands are refused for the others, naming the key.
#[test]
fn generate_refuses_options_of_another_method() {
    let dir = tempfile::tempdir().unwrap();
    let work = scratch(dir.path(), "work");
    let job = &JOBS[2];
    // A parameter lives in its method's table: one of another method is an unknown key there.
    let cases: [(&[&str], &[&str]); 9] = [
        (&["--set", "sampler.pcfm.mixing=2"], &["unknown key `sampler.pcfm.mixing`"]),
        (&["--set", "constraint.darcy.anchor=\"state\""], &["unknown key `constraint.darcy.anchor`"]),
        (&["--set", "sampler.pcfm.anchor=\"noise\""], &["sampler.pcfm.anchor", "noise"]),
        (&["--set", "sampler.method=\"plain\""], &["`sampler.method`", "plain", "constraint"]),
        (&["--set", "sampler.method=\"eci\"", "--set", "constraint.kind=\"none\""], &["`sampler.method`", "eci"]),
        (&["--set", "sampler.stochastic.threshold=1.5"], &["`sampler.stochastic.threshold`", "[0, 1]"]),
        (&["--set", "sampler.solver={ dopri5 = {} }"], &["`sampler.solver`", "fixed-step"]),
        // Earlier spellings keep their meaning: PBFM's sampler cannot carry PCFM corrections,
        // and a threshold is range-checked under its new name.
        (
            &["--set", "solver.method=\"stochastic\"", "--set", "constraint.method=\"pcfm\""],
            &["`solver.method`", "stochastic", "PCFM"],
        ),
        (&["--set", "solver.renoise_threshold=1.5"], &["`sampler.stochastic.threshold`", "[0, 1]"]),
    ];
    for (extra, expected) in cases {
        let mut wanted = vec!["smoke-generate.toml"];
        wanted.extend_from_slice(expected);
        fails(job_command(job, &config("smoke-generate.toml"), &work, extra), &work, &wanted);
    }
}

#[test]
fn train_rejects_missing_empty_and_foreign_data_files() {
    let dir = tempfile::tempdir().unwrap();
    let work = scratch(dir.path(), "work");
    let data = scratch(dir.path(), "data");
    let text = data.join("text.h5");
    std::fs::write(&text, "this is not an HDF5 file\n").unwrap();
    let foreign = data.join("foreign.h5");
    foreign_hdf5(&foreign);
    // A native file with its metadata but no samples.
    let velocity_file = data.join("velocity.h5");
    velocity(&velocity_file, &[]);
    let empty = data.join("empty.h5");
    {
        let reader = FieldReader::open(&velocity_file).unwrap();
        let spec = FileSpec::new(reader.metadata().clone(), reader.grid().clone(), reader.dtype());
        FieldWriter::create(&empty, spec, &WriterOptions::default()).unwrap().finish().unwrap();
    }
    let cases: [(&Path, &str); 5] = [
        (&data.join("missing.h5"), "missing.h5"),
        (&text, "text.h5"),
        (&foreign, "foreign.h5"),
        (&empty, "empty.h5"),
        (&data, "data"),
    ];
    for (path, needle) in cases {
        let mut cmd = fieldflow();
        cmd.args(["train", "--quiet", "--config"]).arg(config("smoke-train.toml")).args([
            "--set",
            &set_path("data.path", path),
            "--set",
            &set_path("output.run_dir", &work.join("run")),
        ]);
        fails(cmd, &work, &[needle]);
    }
    // The run directory is only created once the data are known to be usable.
    assert!(!work.join("run").exists());
}

/// Generates velocity data into `dir/data.h5` and trains the smoke model for 2 steps into
/// `dir/run`.
fn tiny_model(dir: &Path) -> PathBuf {
    let data = dir.join("data.h5");
    velocity(&data, &[]);
    let run = dir.join("run");
    fieldflow()
        .args(["train", "--quiet", "--config"])
        .arg(config("smoke-train.toml"))
        .args(["--set", &set_path("data.path", &data), "--set", &set_path("output.run_dir", &run)])
        .args(["--set", "train.steps=2", "--set", "train.validate_every=0"])
        .assert()
        .success();
    run
}

#[test]
fn generate_rejects_bad_models_references_devices_and_existing_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_model(dir.path());
    let work = scratch(dir.path(), "work");
    let out = work.join("gen.h5");
    let generate = |run_dir: &Path, extra: &[&str]| {
        let mut cmd = fieldflow();
        cmd.args(["generate", "--quiet", "--config"])
            .arg(config("smoke-generate.toml"))
            .args(["--set", &set_path("model.run_dir", run_dir), "-o"])
            .arg(&out)
            .args(extra);
        cmd
    };
    // Missing model directories: a missing path, an empty directory, a file.
    let models = scratch(dir.path(), "models");
    let empty_run = scratch(&models, "empty-run");
    fails(generate(&models.join("no-such-run"), &[]), &work, &["no-such-run", "model.run_dir"]);
    fails(generate(&empty_run, &[]), &work, &["empty-run", "no checkpoint"]);
    let not_a_dir = models.join("model.txt");
    std::fs::write(&not_a_dir, "not a model").unwrap();
    fails(generate(&not_a_dir, &[]), &work, &["model.txt"]);
    // A checkpoint directory whose files are not a checkpoint.
    let broken = scratch(&models, "broken");
    std::fs::write(broken.join("checkpoint.json"), "{ not json").unwrap();
    fails(generate(&broken, &[]), &work, &["broken"]);
    // A checkpoint whose normalisation was damaged: zero standard deviations would scale every
    // field wrongly, so the load refuses them, naming the key and the entry; so for one value
    // for two channels.
    let newest = std::fs::read_dir(run.join("checkpoints")).unwrap().map(|e| e.unwrap().path()).max().unwrap();
    for (name, std, needle) in [("zero-std", "[0.0, 0.0]", "std[0] = 0"), ("one-std", "[1.0]", "for 2 channel(s)")] {
        let damaged = scratch(&models, name);
        for file in std::fs::read_dir(&newest).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, damaged.join(file.file_name().unwrap())).unwrap();
        }
        let meta = damaged.join("checkpoint.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
        json["normalization"]["fields"]["std"] = serde_json::from_str(std).unwrap();
        std::fs::write(&meta, serde_json::to_string(&json).unwrap()).unwrap();
        fails(generate(&damaged, &[]), &work, &[name, "normalization.fields", needle]);
    }

    // The preview's reference spectrum file is missing.
    let reference = set_path("preview.reference", &work.join("nope.h5"));
    fails(
        generate(&run, &["--set", &reference, "--set", "preview.samples=2"]),
        &work,
        &["preview.reference", "nope.h5"],
    );
    // A resolution that does not keep the training grid's aspect ratio on an even grid.
    fails(generate(&run, &["--set", "resolution=3"]), &work, &["resolution"]);

    // CUDA in a build without it.
    #[cfg(not(feature = "cuda"))]
    fails(generate(&run, &["--device", "cuda"]), &work, &["--device cuda", "--features cuda"]);

    // A constraint that the model's channels cannot satisfy: a vorticity-only model.
    let w_data = dir.path().join("w.h5");
    fieldflow()
        .args(["datagen", "--quiet", "--config"])
        .arg(config("smoke-datagen.toml"))
        .args(["--set", "ns2d.output=\"vorticity\"", "-o"])
        .arg(&w_data)
        .assert()
        .success();
    let w_run = dir.path().join("w-run");
    fieldflow()
        .args(["train", "--quiet", "--config"])
        .arg(config("smoke-train.toml"))
        .args(["--set", &set_path("data.path", &w_data), "--set", &set_path("output.run_dir", &w_run)])
        .args(["--set", "train.steps=1", "--set", "train.validate_every=0"])
        .assert()
        .success();
    fails(generate(&w_run, &[]), &work, &["constraint.kind", "[\"w\"]"]);

    // An existing output without --force: untouched, byte for byte, and no sidecar or preview.
    let bytes = b"an earlier result\n".to_vec();
    std::fs::write(&out, &bytes).unwrap();
    fails(generate(&run, &[]), &work, &["gen.h5", "--force"]);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    // With --force the same command works (so the failure above was the existing file).
    generate(&run, &["--force"]).current_dir(&work).assert().success();
    assert_eq!(FieldReader::open(&out).unwrap().len(), 4);
}

#[test]
fn readers_reject_missing_text_and_foreign_hdf5_files() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = scratch(dir.path(), "inputs");
    let good = inputs.join("good.h5");
    velocity(&good, &[]);
    let text = inputs.join("x.h5");
    std::fs::write(&text, "some text, not HDF5\n").unwrap();
    let foreign = inputs.join("foo.h5");
    foreign_hdf5(&foreign);
    let missing = inputs.join("missing.h5");
    let work = scratch(dir.path(), "work");
    let png = work.join("p.png");
    for bad in [&missing, &text, &foreign] {
        let name = bad.file_name().unwrap().to_string_lossy().into_owned();
        let mut commands: Vec<Command> = Vec::new();
        let mut add = |args: Vec<&std::ffi::OsStr>| {
            let mut cmd = fieldflow();
            cmd.args(args);
            commands.push(cmd);
        };
        let (b, g, p) = (bad.as_os_str(), good.as_os_str(), png.as_os_str());
        let o = std::ffi::OsStr::new;
        let out = work.join("out.h5");
        let out = out.as_os_str();
        if bad != &foreign {
            add(vec![o("info"), b]);
            add(vec![o("info"), o("--json"), b]);
        }
        add(vec![o("check"), b]);
        add(vec![o("check"), o("--write"), b]);
        add(vec![o("eval"), b, o("--reference"), g]);
        add(vec![o("eval"), g, o("--reference"), b]);
        add(vec![o("plot"), o("fields"), b, o("-o"), p]);
        add(vec![o("plot"), o("spectrum"), b, o("-o"), p]);
        add(vec![o("plot"), o("spectrum"), g, o("--reference"), b, o("-o"), p]);
        add(vec![o("plot"), o("loss"), b, o("-o"), p]);
        add(vec![o("import"), b, o("-o"), out]);
        add(vec![o("merge"), o("-o"), out, g, b]);
        add(vec![o("merge"), o("-o"), out, b]);
        for cmd in commands {
            fails(cmd, &work, &[&name]);
        }
        // No temporary file beside the inputs either (`check --write` rewrites in place).
        assert!(listing(&inputs).iter().all(|p| !p.to_string_lossy().contains(".tmp")), "{:?}", listing(&inputs));
    }
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "some text, not HDF5\n");
    // `info` summarises any HDF5 file (by design, see fieldflow_datasets::info): exit 0, with the
    // problem named and the layout listed.
    for json in [false, true] {
        let mut cmd = fieldflow();
        cmd.arg("info");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg(&foreign).current_dir(&work).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(stdout.contains("unrecognised layout (datasets: foo)") && stdout.contains("/foo"), "{stdout}");
    }
}

#[test]
fn merge_rejects_shards_of_different_grids_and_existing_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = scratch(dir.path(), "inputs");
    let (a, b, c) = (inputs.join("a.h5"), inputs.join("b.h5"), inputs.join("c.h5"));
    velocity(&a, &[]);
    velocity(&b, &["--set", "ns2d.resolution=8"]);
    velocity(&c, &["--set", "output.dtype=\"f32\""]);
    let work = scratch(dir.path(), "work");
    let out = work.join("merged.h5");
    for (second, name) in [(&b, "b.h5"), (&c, "c.h5")] {
        let mut cmd = fieldflow();
        cmd.args(["merge", "--quiet", "-o"]).arg(&out).arg(&a).arg(second);
        fails(cmd, &work, &[name, "a.h5", "same config"]);
    }
    // An existing output without --force is left as it was.
    let bytes = b"keep me".to_vec();
    std::fs::write(&out, &bytes).unwrap();
    let mut cmd = fieldflow();
    cmd.args(["merge", "--quiet", "-o"]).arg(&out).arg(&a).arg(&a);
    fails(cmd, &work, &["merged.h5", "--force"]);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = scratch(dir.path(), "inputs");
    let good = inputs.join("good.h5");
    velocity(&good, &[]);
    let work = scratch(dir.path(), "work");
    let out = work.join("out.h5");
    let cmd = |args: &[&str]| {
        let mut cmd = fieldflow();
        cmd.args(args);
        cmd
    };
    let import = |flags: &[&str]| {
        let mut c = fieldflow();
        c.arg("import").arg(&good).arg("-o").arg(&out).args(flags);
        c
    };
    fails(import(&["--dtype", "f16"]), &work, &["--dtype"]);
    fails(import(&["--gzip", "12"]), &work, &["--gzip 12"]);
    fails(import(&["--format", "netcdf"]), &work, &["--format netcdf"]);
    let mut threads = cmd(&["--threads", "0", "info"]);
    threads.arg(&good);
    fails(threads, &work, &["--threads"]);
    let mut shard = cmd(&["datagen", "--config"]);
    shard.arg(config("smoke-datagen.toml")).arg("-o").arg(&out).args(["--shard", "2/2"]);
    fails(shard, &work, &["invalid shard `2/2`"]);
    // Unknown subcommands and flags: clap's usage errors, also exit 2.
    for args in [&["nosuch"][..], &["train", "--no-such-flag"], &["plot", "nosuch"], &["eval"]] {
        fails(cmd(args), &work, &[]);
    }
}

/// An explicit `-o` in a directory that does not exist is the user's mistake: `merge` and `import`
/// exit 2 and say so once (`datagen` and `generate` create the directory of their config's output,
/// see `datagen_creates_its_output_directory`; `plot` names `--output`).
#[test]
fn an_output_in_a_missing_directory_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = scratch(dir.path(), "inputs");
    let good = inputs.join("good.h5");
    velocity(&good, &[]);
    let work = scratch(dir.path(), "work");
    let out = work.join("nodir").join("out.h5");
    let mut merge = fieldflow();
    merge.args(["merge", "--quiet", "-o"]).arg(&out).arg(&good);
    let mut import = fieldflow();
    import.arg("import").arg(&good).arg("-o").arg(&out);
    for cmd in [merge, import] {
        let stderr = fails(cmd, &work, &["nodir", "does not exist"]);
        assert_eq!(stderr.matches("does not exist").count(), 1, "said once: {stderr}");
    }
}

/// `datagen` writes its config's output under a directory it creates (a fresh clone has no `data/`).
#[test]
fn datagen_creates_its_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let work = scratch(dir.path(), "work");
    let out = work.join("new").join("deeper").join("out.h5");
    let mut datagen = fieldflow();
    datagen.args(["datagen", "--quiet", "--config"]).arg(config("smoke-datagen.toml")).arg("-o").arg(&out);
    datagen.current_dir(&work).assert().success();
    let source = fieldflow_datasets::open_source(&out).unwrap();
    assert_eq!(source.len(), 4, "the config's samples were written to {}", out.display());
}

/// Errors whose message includes their cause print it once under `{:#}` (they keep the cause out
/// of `source()`): "cannot read config x.toml: No such file or directory (os error 2)".
#[test]
fn a_missing_config_is_explained_once() {
    let dir = tempfile::tempdir().unwrap();
    let work = scratch(dir.path(), "work");
    let mut cmd = fieldflow();
    cmd.args(["datagen", "--config"]).arg(work.join("missing.toml"));
    let stderr = fails(cmd, &work, &["missing.toml"]);
    assert_eq!(stderr.matches("os error 2").count(), 1, "said once: {stderr}");
}
