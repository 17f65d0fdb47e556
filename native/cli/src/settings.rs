//! The client's settings: a config file (TOML or JSON, the same fields as
//! `resile::ClientConfig`), then the command line on top.

use std::path::Path;

use resile::ClientConfig;
use resile_core::config::LimitConfig;
use resile_core::Jitter;

use crate::call::CallArgs;
use crate::exit::Exit;
use crate::Failed;

/// Reads a config file: `.json` as JSON, anything else as TOML.
pub fn load_file(path: &Path) -> Result<ClientConfig, Failed> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| (Exit::Usage, format!("{shown}: {e}")))?;
    let config: ClientConfig = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| (Exit::Config, format!("{shown}: {e}")))?
    } else {
        toml::from_str(&text).map_err(|e| (Exit::Config, format!("{shown}: {}", e.message())))?
    };
    config
        .validate()
        .map_err(|e| (Exit::Config, format!("{shown}: {e}")))?;
    Ok(config)
}

fn jitter(name: &str) -> Result<Jitter, Failed> {
    match name {
        "none" => Ok(Jitter::None),
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        "decorrelated" => Ok(Jitter::Decorrelated),
        other => Err((
            Exit::Usage,
            format!("--jitter {other}: use none, full, equal or decorrelated"),
        )),
    }
}

/// The config file (if any) with the flags applied.
pub fn client_config(args: &CallArgs) -> Result<ClientConfig, Failed> {
    let mut c = match &args.config {
        Some(path) => load_file(path)?,
        None => ClientConfig::default(),
    };
    let e = &mut c.engine;
    if let Some(n) = args.retries {
        e.retry.max_attempts = n.saturating_add(1);
    }
    if let Some(j) = &args.jitter {
        e.backoff.jitter = jitter(j)?;
    }
    if let Some(d) = args.attempt_timeout {
        e.retry.attempt_timeout_ms = Some(d.as_millis() as u64);
    }
    if let Some(d) = args.deadline {
        e.retry.deadline_ms = Some(d.as_millis() as u64);
    }
    if let Some(rate) = args.rate {
        e.limit = Some(LimitConfig {
            per_second: rate,
            burst: args.burst.unwrap_or(1),
        });
    }
    if let Some(n) = args.concurrency {
        c.max_in_flight = n.max(1);
    }
    if let Some(seed) = args.seed {
        c.seed = Some(seed);
    }
    for (name, value) in &args.headers {
        c.default_headers.insert(name.clone(), value.clone());
    }
    c.validate().map_err(|e| (Exit::Config, e.to_string()))?;
    Ok(c)
}
