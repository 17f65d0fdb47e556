//! A real `redis-server` for a test or the demo's fleet phase: on a free loopback port,
//! persistence off, killed on drop. Needs `redis-server` on PATH (Debian: `apt-get install -y
//! redis-server`); [`RedisServer::available`] says whether it is.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`; dropping it kills it.
pub struct RedisServer {
    child: Option<Child>,
    /// Its loopback port.
    pub port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// What to do when there is no `redis-server`.
pub const HOW_TO_GET_REDIS: &str =
    "install redis-server (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis)";

impl RedisServer {
    /// Whether `redis-server` can be run.
    pub fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts one on a free port; panics with what to install when there is no `redis-server`.
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    /// Starts one on a free port, or says why it could not.
    pub fn try_start() -> Result<RedisServer, String> {
        RedisServer::try_start_on(free_port())
    }

    /// Starts one on `port` (again, after [`RedisServer::kill`]); panics if it cannot.
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::try_start_on(port).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts one on `port`, or says why it could not.
    pub fn try_start_on(port: u16) -> Result<RedisServer, String> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server could not start ({e}): {HOW_TO_GET_REDIS}"))?;
        let server = RedisServer {
            child: Some(child),
            port,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() >= until {
                return Err(format!("redis-server did not listen on 127.0.0.1:{port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
