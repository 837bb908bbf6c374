//! Tests of the ledger helpers that touch neither the database nor the report.

use std::borrow::Cow;
use std::process::Command;

use broker_provider::{Arch, Cloud, Location, Offer};

use super::*;

#[test]
fn task_hash_is_sha256_hex() {
    assert_eq!(
        task_hash(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        task_hash(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(status.status.success(), "git {args:?}: {status:?}");
}

#[test]
fn git_state_reads_commit_and_dirty_and_is_none_outside_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(git_state(dir.path()), None, "not a repository");
    assert_eq!(git_state(&dir.path().join("missing")), None, "not even a directory");

    git(dir.path(), &["init", "-q"]);
    assert_eq!(git_state(dir.path()), None, "a repository without a commit");
    std::fs::write(dir.path().join("train.py"), "print(1)\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "first"]);
    let (commit, dirty) = git_state(dir.path()).unwrap();
    assert_eq!(commit.len(), 40, "{commit}");
    assert!(!dirty);

    std::fs::write(dir.path().join("train.py"), "print(2)\n").unwrap();
    assert_eq!(git_state(dir.path()), Some((commit.clone(), true)));

    // Changes outside the workdir are not synced, so they do not make it dirty.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("x"), "x").unwrap();
    git(dir.path(), &["add", "sub"]);
    git(dir.path(), &["commit", "-q", "-m", "sub", "--", "sub"]);
    let (sub_commit, sub_dirty) = git_state(&sub).unwrap();
    assert_ne!(sub_commit, commit);
    assert!(!sub_dirty, "train.py changed, but outside `sub`");
}

#[test]
fn short_commits() {
    assert_eq!(short_commit(Some("0123456789"), Some(false)), "0123456");
    assert_eq!(short_commit(Some("0123456789"), Some(true)), "0123456+dirty");
    assert_eq!(short_commit(None, None), "-");
}

fn candidate(rank: usize, price: f64) -> Candidate {
    Candidate {
        offer: Offer {
            cloud: Cloud::Gcp,
            instance_type: format!("type-{rank}").into(),
            accelerator: None,
            vcpus: None,
            memory_gib: None,
            price: Some(price),
            spot_price: None,
            location: Location {
                region: Cow::Borrowed("us-central1"),
                zone: Some(Cow::Borrowed("us-central1-a")),
            },
            arch: Arch::X86_64,
        },
        rank,
        spot: false,
        nodes: 1,
        hourly_total: price,
        option: 0,
    }
}

#[test]
fn beaten_candidates_are_the_next_few_after_the_chosen_one() {
    let plan: Vec<Candidate> = (0..7).map(|r| candidate(r, 1.0 + r as f64)).collect();
    let beaten = beaten_candidates(&plan, &plan[1]);
    let types: Vec<&str> = beaten.iter().map(|c| c.instance_type.as_str()).collect();
    assert_eq!(types, ["type-2", "type-3", "type-4"]);
    assert_eq!(beaten[0].zone.as_deref(), Some("us-central1-a"));
    assert!((beaten[0].hourly_total - 3.0).abs() < 1e-9);
    assert!(beaten_candidates(&plan, &plan[6]).is_empty());
}

#[test]
fn env_override_values_are_kept_only_for_declared_plain_envs() {
    let given = Overrides {
        gpus: Some("H100:8".into()),
        use_spot: Some(true),
        envs: vec![
            "LR=0.1".into(),
            "HF_TOKEN=hf_SECRET".into(),
            "UNDECLARED=maybe-SECRET".into(),
            "PASSTHROUGH".into(),
        ],
        ..Overrides::default()
    };
    let text = "envs:\n  LR: 0.01\nsecrets:\n  HF_TOKEN: null\n";
    let recorded = run_overrides(&given, Some(text), Some(9.5));
    assert_eq!(recorded.envs, ["LR=0.1", "HF_TOKEN", "UNDECLARED", "PASSTHROUGH"]);
    assert_eq!(recorded.gpus.as_deref(), Some("H100:8"));
    assert_eq!(recorded.use_spot, Some(true));
    assert_eq!(recorded.max_price, Some(9.5));
    // A bare command declares nothing, so no value is kept.
    assert_eq!(
        run_overrides(&given, None, None).envs,
        ["LR", "HF_TOKEN", "UNDECLARED", "PASSTHROUGH"]
    );
}

#[test]
fn merged_overrides_replace_places_and_shapes_as_units() {
    let recorded = Overrides {
        cloud: Some("aws".into()),
        region: Some("us-east-1".into()),
        zone: Some("us-east-1a".into()),
        instance_type: Some("p4d.24xlarge".into()),
        num_nodes: Some("2".into()),
        envs: vec!["A=1".into()],
        ..Overrides::default()
    };
    let given = Overrides {
        region: Some("us-west-2".into()),
        envs: vec!["A=2".into()],
        ..Overrides::default()
    };
    let merged = merge_overrides(recorded.clone(), &given);
    assert_eq!(merged.cloud, None);
    assert_eq!(merged.region.as_deref(), Some("us-west-2"));
    assert_eq!(merged.zone, None, "the recorded zone belonged to the recorded region");
    assert_eq!(merged.instance_type.as_deref(), Some("p4d.24xlarge"));
    assert_eq!(merged.num_nodes.as_deref(), Some("2"));
    assert_eq!(merged.envs, ["A=1", "A=2"]);

    let gpus = Overrides {
        gpus: Some("H100:8".into()),
        ..Overrides::default()
    };
    let merged = merge_overrides(recorded.clone(), &gpus);
    assert_eq!(merged.instance_type, None, "a new shape drops the pinned instance type");
    assert_eq!(merged.zone.as_deref(), Some("us-east-1a"));
    assert_eq!(merge_overrides(recorded.clone(), &Overrides::default()), recorded);
}
