//! `broker launch --cloud gcp` end to end against the Compute fake: the real broker binary
//! authenticates with a service-account key, inserts the instance (every body checked against
//! Google's discovery document), reaches "it" over SSH through the mapped node, runs the job and
//! deletes the instance.

use std::collections::BTreeMap;

use broker_gce_fake::{FakeGce, FakeOptions, Fault};

use crate::harness::{Run, World};
use crate::mapped::MappedNode;

struct Gcp {
    // Declared first so the fake stops before its runtime.
    fake: FakeGce,
    _runtime: tokio::runtime::Runtime,
    key_file: tempfile::NamedTempFile,
}

impl Gcp {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime
            .block_on(FakeGce::start(FakeOptions::default()))
            .expect("the GCE fake starts (it fetches Google's discovery document on first use)");
        let key = fake.service_account_key("broker-e2e@broker-test.iam.gserviceaccount.com");
        let key_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key_file.path(), key.to_string()).unwrap();
        Self {
            fake,
            _runtime: runtime,
            key_file,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BROKER_GCP_ENDPOINT", self.fake.compute_url()),
            ("BROKER_GCP_TOKEN_URL", self.fake.token_url()),
            ("BROKER_GCP_CREDENTIALS", self.key_file.path().display().to_string()),
            ("BROKER_GCP_PROJECT", self.fake.project().to_owned()),
            ("BROKER_GCP_METADATA", "0".to_owned()),
        ]
    }

    fn broker(&self, world: &World, args: &[&str]) -> Run {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        world.broker_env(args, &env)
    }

    /// The fake's instances of `cluster` that are not deleted, by zone.
    fn instances(&self, cluster: &str) -> BTreeMap<String, String> {
        self.fake
            .instances()
            .into_iter()
            .filter(|i| i.labels.get("broker-cluster").map(String::as_str) == Some(cluster))
            .map(|i| (i.name, format!("{} {}", i.zone, i.status)))
            .collect()
    }
}

fn task(dir: &std::path::Path, resources: &str, run: &str) -> String {
    let path = dir.join("task.yaml");
    std::fs::write(&path, format!("resources:\n{resources}run: |\n  {run}\n")).unwrap();
    path.display().to_string()
}

#[test]
fn launch_on_gcp_runs_the_job_and_down_deletes_the_instance() {
    let gcp = Gcp::start();
    let world = World::new("gcp");
    let node = MappedNode::start(&world);
    node.map(&world, "gcp");
    let dir = tempfile::tempdir().unwrap();
    let file = task(
        dir.path(),
        "  cloud: gcp\n  instance_type: n1-standard-2\n  zone: us-central1-a\n",
        "echo \"on $BROKER_CLUSTER_NAME rank $BROKER_NODE_RANK\"; exit 3",
    );

    let check = gcp.broker(&world, &["check", "gcp", "--json"]);
    assert_eq!(check.code, 0, "{}", check.show());
    assert!(
        check.stdout.contains("broker-e2e@broker-test.iam.gserviceaccount.com"),
        "{}",
        check.show()
    );

    let run = gcp.broker(
        &world,
        &["launch", &file, "-c", &world.cluster, "--yes", "--down", "--json"],
    );
    assert_eq!(run.code, 3, "the job's exit code: {}", run.show());
    assert!(
        run.stderr.contains(&format!("on {} rank 0", world.cluster)),
        "{}",
        run.show()
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["offer"]["cloud"], "gcp", "{report}");
    assert_eq!(report["offer"]["zone"], "us-central1-a", "{report}");
    assert!(report["offer"]["hourly_price"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        gcp.instances(&world.cluster).is_empty(),
        "--down deletes every instance: {:?}",
        gcp.instances(&world.cluster)
    );
    assert!(
        gcp.fake.schema_violations().is_empty(),
        "every request matched Google's schema: {:?}",
        gcp.fake.schema_violations()
    );
}

#[test]
fn a_stockout_moves_the_launch_to_the_next_zone() {
    let gcp = Gcp::start();
    gcp.fake.inject(Fault::Capacity {
        zone: "us-central1-a".into(),
        times: None,
    });
    let world = World::new("gcp-fo");
    let node = MappedNode::start(&world);
    node.map(&world, "gcp");
    let dir = tempfile::tempdir().unwrap();
    let file = task(
        dir.path(),
        "  cloud: gcp\n  instance_type: n1-standard-2\n  region: us-central1\n",
        "echo landed",
    );
    let run = gcp.broker(
        &world,
        &["launch", &file, "-c", &world.cluster, "--yes", "--down", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.show());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let tried: Vec<(&str, &str)> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["zone"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(tried[0], ("us-central1-a", "capacity"), "{report}");
    assert_eq!(tried.last().unwrap().1, "ok", "{report}");
    assert_eq!(report["offer"]["zone"], tried.last().unwrap().0, "{report}");
    assert!(run.stderr.contains("ZONE_RESOURCE_POOL_EXHAUSTED"), "{}", run.show());
    assert!(
        gcp.instances(&world.cluster).is_empty(),
        "{:?}",
        gcp.instances(&world.cluster)
    );
    assert!(
        gcp.fake.schema_violations().is_empty(),
        "{:?}",
        gcp.fake.schema_violations()
    );
}
