//! A moto server of this test process, behind the fault-injecting front of `moto_faults.py`.
//!
//! The venv comes from `setup-moto.sh`, run once per process under a file lock (so parallel
//! test binaries do not install twice). The server binds 127.0.0.1 on a port it picks, tells it
//! on stdout, and is ready when `GET /moto-api/` answers. It dies with the test process however
//! that ends: it exits when its stdin (a pipe whose write end only this process holds) closes or
//! its parent changes, and `Drop` kills the servers a test starts for itself.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The images every region of the emulator has (`MOTO_AMIS_PATH` replaces moto's defaults).
pub(crate) const DLAMI_OLD: &str = "ami-0d1a00000000000a1";
pub(crate) const DLAMI_NEW: &str = "ami-0d1a00000000000a2";
pub(crate) const DLAMI_ARM: &str = "ami-0d1a00000000000a3";
pub(crate) const CUSTOM_IMAGE: &str = "ami-0c0500000000000c1";

fn amis() -> Value {
    let image = |id: &str, name: &str, arch: &str, owner: &str, date: &str| {
        json!({
            "ami_id": id, "name": name, "description": name, "owner_id": owner, "public": true,
            "virtualization_type": "hvm", "architecture": arch, "state": "available",
            "platform": null, "image_type": "machine", "hypervisor": "xen",
            "root_device_name": "/dev/sda1", "root_device_type": "ebs", "sriov": "simple",
            "creation_date": date,
        })
    };
    json!([
        image(
            DLAMI_OLD,
            "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20260601",
            "x86_64",
            "898082745236",
            "2026-06-01T08:00:00.000Z"
        ),
        image(
            DLAMI_NEW,
            "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261015",
            "x86_64",
            "898082745236",
            "2026-10-15T08:00:00.000Z"
        ),
        image(
            DLAMI_ARM,
            "Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261015",
            "arm64",
            "898082745236",
            "2026-10-15T08:00:00.000Z"
        ),
        image(
            "ami-0a0000000000000b1",
            "amzn2-ami-hvm-2.0.20261001-x86_64-gp2",
            "x86_64",
            "137112412989",
            "2026-10-01T08:00:00.000Z"
        ),
        image(
            CUSTOM_IMAGE,
            "broker-test-custom-image",
            "x86_64",
            "123456789012",
            "2026-09-01T08:00:00.000Z"
        ),
    ])
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_dir() -> PathBuf {
    std::env::var_os("BROKER_MOTO_VENV").map_or_else(|| crate_dir().join("../../.cache/moto-venv"), PathBuf::from)
}

/// The venv with moto, installed by `setup-moto.sh` if needed.
fn venv() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let venv = venv_dir();
            let parent = venv.parent().expect("the venv has a parent directory");
            fs::create_dir_all(parent).unwrap();
            // Several test binaries may start at once; one installs, the others wait for it.
            let lock = File::create(venv.with_extension("lock")).unwrap();
            lock.lock().unwrap();
            let script = crate_dir().join("tests/setup-moto.sh");
            let out = Command::new("bash")
                .arg(&script)
                .env("BROKER_MOTO_VENV", &venv)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "cannot install moto into {} ({}):\n{}\nhint: run {} by hand; it needs python3 with venv and PyPI",
                venv.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                script.display()
            );
            venv
        })
        .clone()
}

/// One moto server.
pub(crate) struct Moto {
    port: u16,
    child: Mutex<Child>,
    /// Held open for the server's life: its end of file is the server's signal to exit.
    _stdin: ChildStdin,
    /// The server's stderr (one line per request), for a failing test to point at.
    log: PathBuf,
}

impl Moto {
    /// The server shared by this test process's tests (they never share cluster names).
    pub(crate) fn shared() -> &'static Self {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| Self::start(&[]))
    }

    /// A server of its own, with extra environment for moto (say, its IAM auth mode).
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let venv = venv();
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let id = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let amis_path = tmp.join(format!("moto-amis-{id}.json"));
        fs::write(&amis_path, amis().to_string()).unwrap();
        let log = tmp.join(format!("moto-{id}.log"));
        let mut child = Command::new(venv.join("bin/python"))
            .arg(crate_dir().join("tests/moto_faults.py"))
            .env("MOTO_AMIS_PATH", &amis_path)
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto from {}: {e}", venv.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_mins(1)).unwrap_or_default();
        let Some(port) = line.strip_prefix("PORT ").and_then(|p| p.trim().parse().ok()) else {
            let _ = child.kill();
            panic!(
                "moto did not start (said {line:?}); its log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let moto = Self {
            port,
            child: Mutex::new(child),
            _stdin: stdin,
            log,
        };
        moto.wait_ready();
        moto
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if matches!(self.http("GET", "/moto-api/", ""), Ok((200, _))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto on port {} never answered /moto-api/; its log: {}",
                self.port,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One plain HTTP/1.1 request to the server: `(status, body)`.
    fn http(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        Ok((status, body))
    }

    /// Adds a fault rule (see `moto_faults.py` for its fields).
    pub(crate) fn fault(&self, rule: &Value) {
        let (status, body) = self
            .http("POST", "/broker-faults", &json!({ "rules": [rule] }).to_string())
            .unwrap();
        assert_eq!(status, 200, "{body} (moto's log: {})", self.log.display());
    }

    /// The API requests seen so far of `action` with a parameter equal to `value` (tests pass
    /// their cluster name, which every request about their cluster carries).
    pub(crate) fn requests(&self, action: &str, value: &str) -> Vec<Value> {
        let (status, body) = self.http("GET", "/broker-faults/log", "").unwrap();
        assert_eq!(status, 200, "{body}");
        let log: Vec<Value> = serde_json::from_str(&body).unwrap();
        log.into_iter()
            .filter(|entry| entry["action"] == action)
            .filter(|entry| {
                entry["params"]
                    .as_object()
                    .is_some_and(|params| params.values().any(|v| v == value))
            })
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}
