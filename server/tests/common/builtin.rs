//! Stepline's core with the built-in engine, on a test's database, running the workflow
//! definitions the test writes.

use std::path::{Path, PathBuf};

/// Writes `definitions` (TOML texts) as files of a folder in `dir`: the folder.
pub fn write_definitions(dir: &Path, definitions: &[&str]) -> PathBuf {
    let folder = dir.join("workflows");
    std::fs::create_dir_all(&folder).unwrap();
    for (i, text) in definitions.iter().enumerate() {
        std::fs::write(folder.join(format!("{i}.toml")), text).unwrap();
    }
    folder
}

/// The core on the database of `dir` with the built-in engine over `definitions`, as
/// `instance` (the process's own by default; several instances in one test name
/// themselves), and a token of an operator to ask it with.
pub async fn core_in(
    dir: &Path,
    definitions: &[&str],
    instance: Option<&str>,
) -> (server::Core, String) {
    let folder = write_definitions(dir, definitions);
    let url = super::database::url_in(dir).await;
    let options = leptos::config::LeptosOptions::builder()
        .output_name("stepline")
        .build();
    let mut settings = server::BuiltinSettings {
        definitions: server::engines::builtin::definition::load_dir(&folder).unwrap(),
        ..Default::default()
    };
    if let Some(instance) = instance {
        settings.instance = instance.to_owned();
    }
    let core = server::start_core(&url, options, Some(settings))
        .await
        .unwrap();
    let token = super::core_state::operator_token(&core.state).await;
    (core, token)
}
