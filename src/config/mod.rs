//! Job configs: one TOML file per job, every key known (unknown keys are errors with a
//! suggestion), `--set section.key=value` overrides, and messages that name the file and key.

pub mod datagen;
pub mod generate;
pub mod load;
pub mod train;

pub use load::{
    ConfigError, Loaded, Migration, Source, from_str, from_str_migrated, load, load_migrated, out_of_range,
};
