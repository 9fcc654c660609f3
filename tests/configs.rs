//! Every shipped config loads, validates and builds its job.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use fieldflow::config::datagen::DatagenConfig;
use fieldflow::config::generate::GenerateConfig;
use fieldflow::config::load;
use fieldflow::config::train::TrainJobConfig;

/// The schema of each file in `configs/`; a new config must be added here.
fn schema(name: &str) -> Option<&'static str> {
    match name {
        "ns2d.toml"
        | "ns2d-velocity.toml"
        | "ns2d-divfree-data.toml"
        | "kolmogorov.toml"
        | "kolmogorov-data.toml"
        | "kolmogorov-reference.toml"
        | "ns2d-divfree-reference.toml"
        | "darcy.toml"
        | "darcy-pair.toml"
        | "smoke-darcy-pair.toml"
        | "smoke-datagen.toml" => Some("datagen"),
        "smoke-train.toml"
        | "smoke-train-pbfm.toml"
        | "ns2d-divfree-train.toml"
        | "darcy-pair-train.toml"
        | "kolmogorov-train.toml" => Some("train"),
        "smoke-generate.toml" | "ns2d-divfree.toml" | "darcy-generate.toml" | "kolmogorov-generate.toml" => {
            Some("generate")
        }
        _ => None,
    }
}

#[test]
fn every_config_loads_validates_and_builds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("configs/ exists") {
        let path = entry.expect("readable entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !name.ends_with(".toml") {
            continue;
        }
        match schema(&name) {
            Some("datagen") => {
                let loaded = load::<DatagenConfig>(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
                loaded.value.validate(&loaded.source).unwrap_or_else(|e| panic!("{e}"));
                // Building the generator checks every parameter the numerics care about; the
                // expensive 256² NS config only builds its grids and samplers here.
                loaded.value.generator().unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            Some("train") => {
                let loaded = load::<TrainJobConfig>(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
                loaded.value.validate(&loaded.source).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            Some("generate") => {
                let loaded = load::<GenerateConfig>(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
                loaded.value.validate(&loaded.source).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            _ => panic!("configs/{name} has no schema in tests/configs.rs"),
        }
        seen += 1;
    }
    assert!(seen >= 5, "expected the shipped configs, found {seen}");
}
