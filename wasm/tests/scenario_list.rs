//! The browser tests embed the scenarios by name; a scenario file added later must be added to
//! `scenarios/mod.rs` too, or this native test fails.
#![cfg(not(target_arch = "wasm32"))]

mod scenarios;

#[test]
fn every_scenario_file_is_embedded() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/scenarios");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/scenarios exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = scenarios::SCENARIOS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "add new scenario files to wasm/tests/scenarios/mod.rs"
    );
    for (name, text) in scenarios::SCENARIOS {
        resile_core::sim::Scenario::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
