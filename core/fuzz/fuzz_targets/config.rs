//! `Config::from_json` and `Scenario::from_json` on any text: a typed error or a valid value,
//! never a panic; whatever is accepted validates and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resile_core::sim::Scenario;
use resile_core::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_json(text) {
        assert!(config.validate().is_ok());
        let again = serde_json::to_string(&config).expect("a config serializes");
        assert_eq!(Config::from_json(&again).ok(), Some(config));
    }
    let _ = Scenario::from_json(text);
});
