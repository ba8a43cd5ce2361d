//! The `s4` daemon as a child process: start-up time to the first answered
//! request, and its resident memory read from `/proc/<pid>/status`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Conn;
use crate::Result;

/// A running `s4` process; killed on drop.
pub struct Daemon {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Spawn → first `200` from `GET /api/`.
    pub startup: Duration,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound then released).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Daemon {
    /// Starts `bin` with `env` (on top of a cleaned environment), logging to `log`,
    /// and waits until it answers `GET /api/`.
    pub async fn start(bin: &Path, env: &[(String, String)], log: &Path) -> Result<Daemon> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // One log per daemon: at tens of thousands of requests a second the
        // per-request lines add up to gigabytes over a few runs.
        let log_file = std::fs::File::create(log)?;
        let mut command = Command::new(bin);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IP", "127.0.0.1")
            .env("PORT", port.to_string())
            .current_dir(log.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        for (k, v) in env {
            command.env(k, v);
        }
        let spawned = Instant::now();
        let child = command.spawn()?;
        let mut daemon = Daemon {
            child,
            addr,
            startup: Duration::ZERO,
        };
        let deadline = spawned + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(format!(
                    "s4 exited during start-up ({status}); see {}",
                    log.display()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err("s4 did not answer within 20 s".into());
            }
            if let Ok(mut conn) = Conn::open(addr).await {
                if let Ok((status, _)) = conn.get_discard("/api/").await {
                    if status.is_success() {
                        daemon.startup = spawned.elapsed();
                        return Ok(daemon);
                    }
                }
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `(VmRSS, VmHWM)` in MiB.
    pub fn memory(&self) -> Result<(f64, f64)> {
        memory_of(self.pid())
    }

    /// CPU time (user + system, all threads) used so far, in seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the parenthesised command: state is [0], utime [11], stime [12].
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> Result<f64> {
            Ok(fields
                .get(i)
                .ok_or("short /proc/<pid>/stat")?
                .parse::<f64>()?)
        };
        // The kernel reports clock ticks of USER_HZ, 100 on Linux.
        Ok((ticks(11)? + ticks(12)?) / 100.0)
    }

    /// Resets the peak (VmHWM) to the current RSS.
    pub fn reset_peak(&self) -> Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")?;
        Ok(())
    }
}

/// `(VmRSS, VmHWM)` of `pid` in MiB.
pub fn memory_of(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(rss), Some(hwm)) => Ok((rss, hwm)),
        _ => Err(format!("no VmRSS/VmHWM in /proc/{pid}/status").into()),
    }
}

/// The `s4` binary: next to this executable (both are in `target/release`).
pub fn default_s4_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("s4")))
        .unwrap_or_else(|| PathBuf::from("target/release/s4"))
}

/// `perf record` attached to a process for one phase; stopped with SIGINT so the
/// data file is complete.
pub struct Perf(Option<Child>);

impl Perf {
    /// Starts `perf record -g` on `pid` into `out` (no-op when `enabled` is false).
    pub fn start(enabled: bool, pid: u32, out: &Path) -> Perf {
        if !enabled {
            return Perf(None);
        }
        let child = Command::new("perf")
            .args(["record", "-F", "1999", "-g", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(c) => {
                // Let perf attach before the phase starts.
                std::thread::sleep(Duration::from_millis(300));
                Perf(Some(c))
            }
            Err(e) => {
                eprintln!("note: cannot run perf: {e}");
                Perf(None)
            }
        }
    }

    /// Stops recording and waits for perf to write its file.
    pub fn stop(mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}
