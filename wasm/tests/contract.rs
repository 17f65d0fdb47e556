//! The JS API's declarations (`src/types.d.ts`) checked against the core, so they cannot drift:
//! the `Why` union is the core's `Why`, every `ResileEvent` variant has the keys the core's
//! serde output has (as the JS API renames them), and `ClientConfig` names every field of the
//! core's `Config`. The scenario list the browser tests embed is generated from
//! `tests/scenarios/` by `build.rs`; this checks it names every file and that each parses.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};

use resile_core::sim::{run_scenario, Scenario};
use resile_core::{CallSpec, Config, Engine, Instant, Outcome, Why};
use resile_wasm::translate::{camel_keys, event_json};
use serde_json::Value;

mod scenarios {
    include!(concat!(env!("OUT_DIR"), "/scenarios.rs"));
}

const TYPES: &str = include_str!("../src/types.d.ts");
const WHY_SOURCE: &str = include_str!("../../core/src/why.rs");

// ---- a small reader for the declarations' object types ------------------------------------------

/// `{ a: T; b?: { c: U } }` → `a → (optional, "T")`, `b → (true, "{ c: U }")`: the top-level
/// members of an object type, split at `;` outside braces.
fn members(object: &str) -> BTreeMap<String, (bool, String)> {
    // Comments first: they may hold any punctuation.
    let mut text = String::new();
    let mut rest = object;
    while let Some(open) = rest.find("/*") {
        text.push_str(&rest[..open]);
        rest = rest[open..].split_once("*/").map_or("", |(_, after)| after);
    }
    text.push_str(rest);
    let body = text.trim();
    let body = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not an object type: {object}"));
    let mut parts = Vec::new();
    let (mut depth, mut start, mut prev) = (0i32, 0usize, ' ');
    for (i, c) in body.char_indices() {
        let arrow = prev == '=';
        prev = c;
        match c {
            '{' | '(' | '<' => depth += 1,
            '>' if arrow => {}
            '}' | ')' | '>' => depth -= 1,
            ';' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    let mut out = BTreeMap::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let (name, ty) = part
            .split_once(':')
            .unwrap_or_else(|| panic!("no type in `{part}`"));
        let name = name.trim();
        let (name, optional) = match name.strip_suffix('?') {
            Some(n) => (n, true),
            None => (name, false),
        };
        out.insert(name.to_string(), (optional, ty.trim().to_string()));
    }
    out
}

/// The text of `export type NAME = ...;` or `export interface NAME {...}`.
fn declaration(name: &str) -> &'static str {
    let start = TYPES
        .find(&format!("type {name} ="))
        .or_else(|| TYPES.find(&format!("interface {name} ")))
        .unwrap_or_else(|| panic!("types.d.ts declares no {name}"));
    let rest = &TYPES[start..];
    let end = rest
        .find("\n}\n")
        .map(|i| i + 2)
        .into_iter()
        .chain(rest.find(";\n\n").map(|i| i + 1))
        .chain(rest.find(");\n").map(|i| i + 2))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Checks `value` against an object type: every key declared, every required member present,
/// nested object types checked in turn. Returns what differs.
fn check_object(path: &str, ty: &str, value: &Value, problems: &mut Vec<String>) {
    let declared = members(ty);
    let Value::Object(map) = value else {
        problems.push(format!("{path}: expected an object, got {value}"));
        return;
    };
    for key in map.keys() {
        if !declared.contains_key(key) {
            problems.push(format!("{path}.{key}: sent but not declared in {ty}"));
        }
    }
    for (key, (optional, member_ty)) in &declared {
        match map.get(key) {
            None if !optional => {
                problems.push(format!("{path}.{key}: declared as required, not sent"))
            }
            Some(v @ Value::Object(_)) if member_ty.starts_with('{') => {
                let ty = member_ty.strip_suffix(" | null").unwrap_or(member_ty);
                check_object(&format!("{path}.{key}"), ty, v, problems)
            }
            _ => {}
        }
    }
}

// ---- the checks ---------------------------------------------------------------------------------

#[test]
fn every_scenario_file_is_embedded_and_parses() {
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
    let embedded: Vec<String> = scenarios::SCENARIOS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert!(!embedded.is_empty());
    assert_eq!(on_disk, embedded);
    for (name, text) in scenarios::SCENARIOS {
        Scenario::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_why_union_is_the_cores_why() {
    // The variants, from the core's source: a variant added there must be added here.
    let body = WHY_SOURCE
        .split("pub enum Why {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("core/src/why.rs declares `pub enum Why`");
    let core: BTreeSet<String> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.starts_with('#') && !l.is_empty())
        .map(|l| l.trim_end_matches(',').to_string())
        .map(|variant| {
            let why: Why = serde_json::from_value(Value::String(snake(&variant)))
                .unwrap_or_else(|e| panic!("Why::{variant}: {e}"));
            resile_wasm::translate::serde_name(&why)
        })
        .collect();
    assert!(core.len() >= 20, "read {} variants: {core:?}", core.len());
    let declared: BTreeSet<String> = declaration("Why")
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert_eq!(
        declared, core,
        "types.d.ts `Why` against resile-core's `Why`"
    );
}

/// `RetryAfterHeader` → `retry_after_header` (what serde's `rename_all = "snake_case"` does).
fn snake(variant: &str) -> String {
    let mut out = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The `ResileEvent` variants: event name → object type (the base members merged in).
fn event_types() -> BTreeMap<String, String> {
    let base = TYPES
        .split("interface EventBase ")
        .nth(1)
        .and_then(|rest| rest.split_inclusive('}').next())
        .map(members)
        .expect("types.d.ts declares EventBase");
    let mut out = BTreeMap::new();
    for line in declaration("ResileEvent").lines() {
        let Some(variant) = line.trim().strip_prefix("| ") else {
            continue;
        };
        let name = variant
            .split('"')
            .nth(1)
            .unwrap_or_else(|| panic!("no event name in {variant}"));
        let mut all = members(variant);
        for (k, v) in &base {
            all.insert(k.clone(), v.clone());
        }
        let text: Vec<String> = all
            .iter()
            .map(|(k, (opt, ty))| format!("{k}{}: {ty}", if *opt { "?" } else { "" }))
            .collect();
        out.insert(name.to_string(), format!("{{ {} }}", text.join("; ")));
    }
    out
}

#[test]
fn every_event_the_engine_emits_matches_its_declaration() {
    let declared = event_types();
    assert!(declared.len() >= 15, "{declared:?}");
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    let mut check = |event: &resile_core::Event| {
        let mut value = event_json(event);
        let name = value["event"].as_str().unwrap_or_default().to_string();
        // `explain` is there exactly when the core's serde form carries a `why` (a failure's,
        // for `call_failed` and `call_fell_back`), and explains that `why`.
        let raw = serde_json::to_value(event).expect("serializes");
        let why = raw
            .get("why")
            .or_else(|| raw.get("failure").and_then(|f| f.get("why")))
            .map(|w| serde_json::from_value::<Why>(w.clone()).expect("a Why"));
        if value.get("explain").and_then(Value::as_str) != why.map(|w| w.explain()) {
            problems.push(format!("`{name}`: explain is not its why's: {value}"));
        }
        // The driver adds the call's URL to `call_started`.
        if name == "call_started" {
            value["url"] = Value::String("http://h.test/x".into());
        }
        match declared.get(&name) {
            Some(ty) => check_object(&name, ty, &value, &mut problems),
            None => problems.push(format!("`{name}` is not a ResileEvent: {value}")),
        }
        seen.insert(name);
    };
    for (name, text) in scenarios::SCENARIOS {
        let s = Scenario::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let result = run_scenario(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        result.trace.iter().for_each(&mut check);
    }
    // What the scenarios do not show: a host answering 503 (breaker, budget) and then 200
    // (closed again), a client-side rate limit (waiting), a 429 whose hints CORS hid, a fleet
    // whose store never answers (fallback).
    let storms = [
        (r#"{"retry":{"max_attempts":3}}"#, 503, false),
        (
            r#"{"breaker":{"enabled":false},"budget":{"reserve":1,"ratio":0.01}}"#,
            503,
            false,
        ),
        (r#"{"limit":{"per_second":1,"burst":1}}"#, 429, true),
        // Fleet mode with no store answering: the engine falls back on its own.
        (
            r#"{"limit":{"per_second":5,"burst":1},"fleet":{"size":2}}"#,
            200,
            false,
        ),
    ];
    for (config, status, hidden) in storms {
        let config = Config::from_json(config).expect("valid config");
        let mut engine = Engine::new(config, 3, Instant::ZERO).expect("valid config");
        let mut now = Instant::ZERO;
        for round in 0..60 {
            let status = if round < 40 { status } else { 200 };
            let _ = engine.start(CallSpec::get("http://h.test"), now);
            for _ in 0..20 {
                while let Some(action) = engine.poll_action() {
                    if let resile_core::Action::Send { call, .. } = action {
                        let none: Vec<(String, String)> = Vec::new();
                        let mut r =
                            resile_core::Response::new(status, &none, resile_core::UnixTime::EPOCH);
                        r.hints_may_be_hidden = hidden;
                        engine.handle(call, Outcome::Response(r), now);
                    }
                }
                while let Some(e) = engine.poll_event() {
                    check(&e);
                }
                now = engine.poll_timeout().unwrap_or(now).max(now);
                engine.handle_timeout(now);
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let unseen: Vec<&String> = declared.keys().filter(|k| !seen.contains(*k)).collect();
    println!("events checked: {seen:?}; declared but not produced here: {unseen:?}");
    assert!(
        seen.len() >= 15,
        "only {seen:?} were produced: the check would say little"
    );
}

/// The members of `ClientConfig`.
fn client_config_members() -> BTreeMap<String, (bool, String)> {
    members(
        declaration("ClientConfig")
            .split_once('{')
            .map(|(_, rest)| format!("{{{rest}"))
            .as_deref()
            .unwrap_or("{}"),
    )
}

#[test]
fn client_config_declares_every_field_of_the_cores_config() {
    let core = camel_keys(serde_json::to_value(Config::default()).expect("serializes"));
    let mut problems = Vec::new();
    let declared = client_config_members();
    let Value::Object(map) = &core else {
        panic!("{core}")
    };
    for (key, value) in map {
        match declared.get(key) {
            None => problems.push(format!("ClientConfig has no `{key}`")),
            Some((_, ty)) if value.is_object() => {
                let ty = ty.strip_suffix(" | null").unwrap_or(ty);
                let fields = members(ty);
                for inner in value.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !fields.contains_key(inner) {
                        problems.push(format!("ClientConfig.{key} has no `{inner}`"));
                    }
                }
            }
            _ => {}
        }
    }
    let client_only = resile_wasm::translate::CLIENT_ONLY_KEYS;
    for key in declared.keys() {
        // `limit`, `preset`, `fleet`, `aws` and `retryThrottling` are options the core writes
        // out only when they are set.
        let optional =
            ["limit", "preset", "fleet", "aws", "retryThrottling"].contains(&key.as_str());
        if !map.contains_key(key) && !client_only.contains(&key.as_str()) && !optional {
            problems.push(format!(
                "ClientConfig declares `{key}`, which the core does not have"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn host_state_declares_what_hosts_sends() {
    // A host with every optional part: the AWS quota, the adaptive rate and limit.
    let mut config = Config::preset(resile_core::Preset::Aws21);
    config.adaptive_rate.enabled = true;
    config.concurrency.adaptive = Some(resile_core::config::AdaptiveConcurrency::Gradient2(
        Default::default(),
    ));
    let mut engine = Engine::new(config, 1, Instant::ZERO).expect("valid");
    let _ = engine.start(CallSpec::get("https://api.test/"), Instant::ZERO);
    let hosts = engine.hosts(Instant::ZERO);
    let json = camel_keys(
        serde_json::to_value(resile_wasm::translate::host_state(&hosts[0], Instant::ZERO)).unwrap(),
    );
    let mut problems = Vec::new();
    let ty = declaration("HostState");
    let body = ty
        .split_once('{')
        .map(|(_, rest)| format!("{{{rest}"))
        .unwrap();
    check_object("HostState", &body, &json, &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(json["retryQuota"], 500);
    assert_eq!(json["concurrencyLimit"], 20);
    assert_eq!(json["adaptiveRate"]["throttled"], false);
    assert_eq!(json["breakerHold"], Value::Null);
}

#[test]
fn client_config_declares_the_preset_sections() {
    for (preset, key) in [
        (resile_core::Preset::Aws21, "aws"),
        (resile_core::Preset::GrpcA6, "retryThrottling"),
    ] {
        check_section(preset, key);
    }
}

/// The section `key` that `preset` sets is declared in `ClientConfig`, field by field.
fn check_section(preset: resile_core::Preset, key: &str) {
    let core = camel_keys(serde_json::to_value(Config::preset(preset)).expect("serializes"));
    let declared = client_config_members();
    let (_, ty) = declared
        .get(key)
        .expect("ClientConfig declares the section");
    let ty = ty.strip_suffix(" | null").unwrap_or(ty);
    let mut problems = Vec::new();
    check_object(
        &format!("ClientConfig.{key}"),
        ty,
        &core[key],
        &mut problems,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
