//! A real `s4` daemon process, for tests of the binary itself (its configuration
//! from the environment, kill -9).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the daemon has to report its address.
const START_BOUND: Duration = Duration::from_secs(30);

/// A running `s4` child, killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts the built `s4` in `cwd` with `vars` as its whole environment (plus
    /// `PATH`, and an ephemeral port on 127.0.0.1 logging at `info` without
    /// colours), and waits for its "listening" line.
    ///
    /// # Panics
    /// When the daemon cannot be spawned or does not report its address in time.
    pub fn start(cwd: &Path, vars: &[(&str, &dyn AsRef<OsStr>)]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_s4"));
        command
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IP", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_LEVEL", "info")
            .env("NO_COLOR", "1");
        for (name, value) in vars {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn s4");
        // Both streams are drained for the daemon's whole life (a full pipe would
        // block its logging).
        let (tx, rx) = mpsc::channel::<String>();
        let streams = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + START_BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("s4 did not start listening");
            if !line.contains("s4 listening") {
                continue;
            }
            let at = line
                .find("127.0.0.1:")
                .expect("address in the listening line");
            let port: String = line[at + "127.0.0.1:".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let addr = format!("127.0.0.1:{port}").parse().expect("address");
            return Daemon { child, addr };
        }
    }

    /// The API's base URL (`http://<addr>/api`).
    pub fn api(&self) -> String {
        format!("http://{}/api", self.addr)
    }
}
