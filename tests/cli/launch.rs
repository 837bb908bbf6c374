//! `broker launch --dry-run`: planning a task file without creating anything.

use crate::common::Broker;

#[test]
fn dry_run_prints_the_plan() {
    let run = Broker::new().run(&["launch", "tasks/good/gpu-any-of.yaml", "--dry-run", "--show", "5"]);
    insta::assert_snapshot!(run.render());
}

#[test]
fn dry_run_json_has_chosen_and_candidates_with_enabled() {
    let run = Broker::new().run(&["launch", "tasks/good/gpu-any-of.yaml", "--dry-run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.render());
    let plan = run.json();
    let chosen = &plan["chosen"];
    let candidates = plan["candidates"].as_array().unwrap();
    assert_eq!(&candidates[0], chosen);
    for key in [
        "cloud",
        "region",
        "zone",
        "instance_type",
        "accelerator",
        "accelerator_count",
        "vcpus",
        "memory_gib",
        "price",
        "spot_price",
        "enabled",
    ] {
        assert!(chosen.get(key).is_some(), "missing `{key}` in {chosen}");
    }
    // No provider is compiled in yet, so nothing may claim to be launchable.
    assert!(candidates.iter().all(|c| c["enabled"] == false));
    // any_of: the cheapest offer of either alternative goes first, and both are in the plan.
    let totals: Vec<f64> = candidates.iter().map(|c| c["hourly_total"].as_f64().unwrap()).collect();
    assert!(totals.iter().all(|t| totals[0] <= *t));
    let clouds: std::collections::HashSet<&str> = candidates.iter().map(|c| c["cloud"].as_str().unwrap()).collect();
    assert_eq!(clouds, ["aws", "gcp"].into_iter().collect());
}

#[test]
fn flags_override_the_file() {
    let broker = Broker::new();
    let plan = broker
        .run(&[
            "launch",
            "tasks/good/gpu-any-of.yaml",
            "--dry-run",
            "--json",
            "--gpus",
            "H100:8",
            "--cloud",
            "aws",
            "--num-nodes",
            "2",
        ])
        .json();
    let chosen = &plan["chosen"];
    assert_eq!(chosen["accelerator"], "H100");
    assert_eq!(chosen["accelerator_count"], 8.0);
    assert_eq!(chosen["cloud"], "aws");
    assert_eq!(chosen["nodes"], 2);
    // The file asks for spot, so the plan prices the spot market.
    assert_eq!(chosen["spot"], true);
    let per_node = chosen["spot_price"].as_f64().unwrap();
    assert!((chosen["hourly_total"].as_f64().unwrap() - 2.0 * per_node).abs() < 1e-9);
}

#[test]
fn no_offer_exits_3_and_says_why() {
    let run = Broker::new().run(&[
        "launch",
        "tasks/good/gpu-any-of.yaml",
        "--dry-run",
        "--gpus",
        "A100:8",
        "--region",
        "us-west-1",
        "--cloud",
        "aws",
    ]);
    insta::assert_snapshot!(run.render());
}

#[test]
fn max_price_below_every_offer_names_the_cheapest() {
    let run = Broker::new().run(&[
        "launch",
        "tasks/good/gpu-any-of.yaml",
        "--dry-run",
        "--gpus",
        "H100:8",
        "--max-price",
        "1",
    ]);
    assert_eq!(run.code, 3, "{}", run.render());
    assert!(
        run.stderr
            .contains("costs more than the cap of $1.000/h; the cheapest that fits otherwise is"),
        "{}",
        run.stderr
    );
}

#[test]
fn real_launch_of_a_gpu_task_without_an_enabled_gpu_cloud_is_refused() {
    let run = Broker::new().run(&["launch", "tasks/good/gpu-any-of.yaml", "--yes"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("no enabled cloud can serve this task"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--dry-run"), "{}", run.stderr);
}

#[test]
fn infra_pin_without_the_accelerator_reports_why() {
    let run = Broker::new().run(&["launch", "tasks/no-offer/a100-in-us-west-1.yaml", "--dry-run"]);
    assert_eq!(run.code, 3, "{}", run.render());
    assert!(
        run.stderr
            .contains("nothing offers region `us-west-1` among offers for `A100:8`, cloud `aws`"),
        "{}",
        run.stderr
    );
    // Cheapest first, so the region to switch to leads the list.
    assert!(
        run.stderr.contains("available regions: aws/us-east-2, aws/us-west-2"),
        "{}",
        run.stderr
    );
}
