//! `broker launch --cloud aws` end to end against moto (behind broker-aws's fault-injecting
//! front): real EC2 API calls on 127.0.0.1, the invented instance addresses mapped to a real
//! sshd node, failover at the wire, teardown, and a crash right after `RunInstances`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use crate::harness::{Run, World};
use crate::mapped::MappedNode;

const DLAMI: &str = "ami-0d1a00000000000b2";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pinned moto venv (made once, under a lock, by broker-aws's script).
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let venv =
            std::env::var_os("BROKER_MOTO_VENV").map_or_else(|| workspace().join(".cache/moto-venv"), PathBuf::from);
        std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
        let lock = std::fs::File::create(venv.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        let script = workspace().join("providers/broker-aws/tests/setup-moto.sh");
        let out = Command::new("bash")
            .arg(&script)
            .env("BROKER_MOTO_VENV", &venv)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot install moto (needs python3 with venv and PyPI; run {} by hand):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        venv
    })
}

/// A moto server for one test; it exits when its stdin closes (on drop, or if this process dies).
struct Moto {
    port: u16,
    child: Child,
    _stdin: ChildStdin,
    _dir: tempfile::TempDir,
}

impl Moto {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // One Deep Learning AMI, so broker's default image lookup has something to find.
        let amis = dir.path().join("amis.json");
        std::fs::write(
            &amis,
            serde_json::json!([{
                "ami_id": DLAMI, "name": "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261101",
                "description": "dlami", "owner_id": "898082745236", "public": true,
                "virtualization_type": "hvm", "architecture": "x86_64", "state": "available",
                "platform": null, "image_type": "machine", "hypervisor": "xen",
                "root_device_name": "/dev/sda1", "root_device_type": "ebs", "sriov": "simple",
                "creation_date": "2026-11-01T08:00:00.000Z"
            }])
            .to_string(),
        )
        .unwrap();
        let mut child = Command::new(venv().join("bin/python"))
            .arg(workspace().join("providers/broker-aws/tests/moto_faults.py"))
            .env("MOTO_AMIS_PATH", &amis)
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("moto.log")).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("moto did not start: {line:?}"));
        Self {
            port,
            child,
            _stdin: stdin,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BROKER_AWS_ENDPOINT", self.url()),
            ("BROKER_AWS_REGIONS", "us-east-1,us-west-2".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }

    fn broker(&self, world: &World, args: &[&str]) -> Run {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        world.broker_env(args, &env)
    }

    /// POSTs fault rules to the front (see `moto_faults.py`).
    fn inject(&self, rules: &serde_json::Value) {
        let body = serde_json::json!({ "rules": rules }).to_string();
        let out = Command::new(venv().join("bin/python"))
            .args([
                "-c",
                "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method='POST', headers={'Content-Type': 'application/json'}))",
            ])
            .arg(format!("{}/broker-faults", self.url()))
            .arg(body)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// States of the instances tagged with `cluster`, as moto reports them (via boto3 from the
    /// venv, independent of the code under test).
    fn instance_states(&self, cluster: &str) -> Vec<String> {
        let script = "import boto3, sys\n\
            states = []\n\
            for region in ('us-east-1', 'us-west-2'):\n\
            \x20   ec2 = boto3.client('ec2', region_name=region, endpoint_url=sys.argv[1], aws_access_key_id='testing', aws_secret_access_key='testing')\n\
            \x20   for r in ec2.describe_instances(Filters=[{'Name': 'tag:broker-cluster', 'Values': [sys.argv[2]]}])['Reservations']:\n\
            \x20       states += [i['State']['Name'] for i in r['Instances']]\n\
            print(' '.join(sorted(states)))\n";
        let out = Command::new(venv().join("bin/python"))
            .args(["-c", script, &self.url(), cluster])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn task(dir: &Path, resources: &str) -> String {
    let path = dir.join("task.yaml");
    std::fs::write(
        &path,
        format!("resources:\n  cloud: aws\n{resources}run: |\n  echo \"ran on $BROKER_CLUSTER_NAME\"\n"),
    )
    .unwrap();
    path.display().to_string()
}

fn all_terminated(states: &[String]) -> bool {
    !states.is_empty() && states.iter().all(|s| s == "terminated")
}

#[test]
fn launch_on_aws_runs_the_job_and_down_terminates_every_instance() {
    let moto = Moto::start();
    let world = World::new("aws");
    let node = MappedNode::start(&world);
    node.map(&world, "aws");
    let dir = tempfile::tempdir().unwrap();
    let file = task(dir.path(), "  instance_type: m6i.large\n  zone: use1-az1\n");

    let check = moto.broker(&world, &["check", "aws", "--json"]);
    assert_eq!(check.code, 0, "{}", check.show());
    assert!(check.stdout.contains("arn:aws:"), "{}", check.show());

    let run = moto.broker(
        &world,
        &["launch", &file, "-c", &world.cluster, "--yes", "--down", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(
        run.stderr.contains(&format!("ran on {}", world.cluster)),
        "{}",
        run.show()
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["offer"]["instance_type"], "m6i.large", "{report}");
    assert!(
        (report["offer"]["hourly_price"].as_f64().unwrap() - 0.096).abs() < 1e-9,
        "{report}"
    );
    let states = moto.instance_states(&world.cluster);
    assert!(all_terminated(&states), "--down terminates every instance: {states:?}");
}

#[test]
fn stockouts_and_quotas_move_the_launch_along_the_plan() {
    let moto = Moto::start();
    let world = World::new("aws-fo");
    let node = MappedNode::start(&world);
    node.map(&world, "aws");
    // m6i.large costs the same in us-east-1, us-east-2 and us-west-2, so the plan walks them in
    // that order. Every us-east-1 zone is out of stock and us-east-2's vCPU quota is used up:
    // each us-east-1 zone is tried once, us-east-2 once (a quota rules out its other zones),
    // and the node lands in us-west-2.
    moto.inject(&serde_json::json!([
        {"action": "RunInstances", "region": "us-east-1", "status": 500,
         "code": "InsufficientInstanceCapacity", "message": "We currently do not have sufficient m6i.large capacity"},
        {"action": "RunInstances", "region": "us-east-2", "status": 400,
         "code": "VcpuLimitExceeded", "message": "You have requested more vCPU capacity than your current vCPU limit"},
    ]));
    let dir = tempfile::tempdir().unwrap();
    let file = task(dir.path(), "  instance_type: m6i.large\n");
    let run = moto.broker(
        &world,
        &["launch", &file, "-c", &world.cluster, "--yes", "--down", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.show());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let tried: Vec<(String, String, String)> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let text = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            (text("region"), text("zone"), text("outcome"))
        })
        .collect();
    let east1: Vec<&(String, String, String)> = tried.iter().filter(|t| t.0 == "us-east-1").collect();
    assert!(east1.len() >= 5, "every us-east-1 zone is tried: {tried:?}");
    assert!(east1.iter().all(|t| t.2 == "capacity"), "{tried:?}");
    let zones: std::collections::BTreeSet<&str> = east1.iter().map(|t| t.1.as_str()).collect();
    assert_eq!(zones.len(), east1.len(), "each zone once, no SDK retries: {tried:?}");
    let east2: Vec<&(String, String, String)> = tried.iter().filter(|t| t.0 == "us-east-2").collect();
    assert_eq!(east2.len(), 1, "one quota error rules out the region: {tried:?}");
    assert_eq!(east2[0].2, "quota", "{tried:?}");
    let last = tried.last().unwrap();
    assert_eq!((last.0.as_str(), last.2.as_str()), ("us-west-2", "ok"), "{tried:?}");
    assert_eq!(report["offer"]["region"], "us-west-2", "{report}");
    assert!(
        run.stderr.contains("InsufficientInstanceCapacity"),
        "the user sees why: {}",
        run.show()
    );
    let states = moto.instance_states(&world.cluster);
    assert!(all_terminated(&states), "{states:?}");
}

#[cfg(feature = "failpoints")]
#[test]
fn a_crash_right_after_run_instances_leaves_nothing_running_after_refresh_and_down() {
    let moto = Moto::start();
    let world = World::new("aws-crash");
    let node = MappedNode::start(&world);
    node.map(&world, "aws");
    let dir = tempfile::tempdir().unwrap();
    let file = task(dir.path(), "  instance_type: m6i.large\n  zone: use1-az1\n");
    let mut env = moto.env();
    env.push(("BROKER_FAILPOINT", "after-create".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let crashed = world.broker_env(&["launch", &file, "-c", &world.cluster, "--yes", "--down"], &env);
    assert_ne!(crashed.code, 0, "the failpoint kills broker: {}", crashed.show());
    let states = moto.instance_states(&world.cluster);
    assert_eq!(
        states,
        ["running"],
        "the instance exists and nobody tore it down: {states:?}"
    );

    let refreshed = moto.broker(&world, &["status", "--refresh", "--json"]);
    assert_eq!(refreshed.code, 0, "{}", refreshed.show());
    assert!(
        refreshed.stdout.contains(&world.cluster),
        "the crashed launch is known: {}",
        refreshed.show()
    );
    let down = moto.broker(&world, &["down", &world.cluster]);
    assert_eq!(down.code, 0, "{}", down.show());
    let states = moto.instance_states(&world.cluster);
    assert!(all_terminated(&states), "nothing left running: {states:?}");
}
