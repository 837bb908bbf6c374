//! An emulated cloud's instance, made reachable: emulators invent addresses (moto's 54.x, the
//! GCE fake's 34.x/35.x) that must never be dialled, so the settings file's per-cloud
//! `ssh_proxy_command` sends every SSH connection to one real sshd node on this machine instead.

use std::path::Path;
use std::process::Command;

use crate::harness::World;

/// A node-image container with sshd on 127.0.0.1, accepting the world's broker key.
pub(crate) struct MappedNode {
    id: String,
    pub(crate) port: u16,
}

impl MappedNode {
    pub(crate) fn start(world: &World) -> Self {
        let public = user_key(world.home());
        let out = Command::new("docker")
            .args(["run", "-d", "--pull", "never", "-p", "127.0.0.1::22"])
            .arg("--label")
            .arg(format!("broker.test-mapped={}", world.cluster))
            .arg("-e")
            .arg(format!("BROKER_AUTHORIZED_KEY={public}"))
            .arg("broker-node:1")
            .output()
            .expect("docker run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let out = Command::new("docker").args(["port", &id, "22/tcp"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let port = text
            .lines()
            .find_map(|l| l.strip_prefix("127.0.0.1:"))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no published port: {text}"));
        Self { id, port }
    }

    /// Points `cloud`'s SSH at this node: login as root, through a proxy that ignores the
    /// invented address.
    pub(crate) fn map(&self, world: &World, cloud: &str) {
        std::fs::write(
            world.home().join("config.yaml"),
            format!(
                "{cloud}:\n  ssh_user: root\n  ssh_proxy_command: bash -c 'exec 3<>/dev/tcp/127.0.0.1/{}; cat <&3 & cat >&3; wait'\n",
                self.port
            ),
        )
        .unwrap();
    }
}

impl Drop for MappedNode {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

/// The broker key of `home`, made as broker makes it, as its public line.
fn user_key(home: &Path) -> String {
    broker::ssh::ensure_user_key(home).unwrap().public.trim().to_owned()
}
