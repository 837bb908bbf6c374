//! `broker cost`.

use crate::common::Broker;

#[test]
fn a100_8_table_lists_the_cheapest_offer_per_cloud() {
    let run = Broker::new().run(&["cost", "A100:8"]);
    insta::assert_snapshot!(run.render());
}

#[test]
fn json_has_the_documented_keys_sorted_by_price() {
    let run = Broker::new().run(&["cost", "A100:8", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = run.json();
    let rows = rows.as_array().unwrap();
    assert!(rows.len() >= 3, "A100:8 is sold on several clouds");
    let keys = [
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
    ];
    for row in rows {
        for key in keys {
            assert!(row.get(key).is_some(), "missing `{key}` in {row}");
        }
        assert_eq!(row["accelerator"], "A100");
        assert_eq!(row["accelerator_count"], 8.0);
    }
    let prices: Vec<f64> = rows.iter().map(|r| r["price"].as_f64().unwrap()).collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
    let clouds: Vec<&str> = rows.iter().map(|r| r["cloud"].as_str().unwrap()).collect();
    let mut unique = clouds.clone();
    unique.dedup();
    assert_eq!(clouds.len(), unique.len(), "one row per cloud by default: {clouds:?}");
}

#[test]
fn json_all_lists_every_zone_and_spot_ranks_by_spot_price() {
    let broker = Broker::new();
    let all = broker
        .run(&["cost", "A100:8", "--all", "--json", "--cloud", "aws"])
        .json();
    let all = all.as_array().unwrap();
    let zones: std::collections::HashSet<&str> = all.iter().filter_map(|r| r["zone"].as_str()).collect();
    assert!(zones.len() > 3, "{zones:?}");
    let spot = broker.run(&["cost", "A100:8", "--spot", "--all", "--json"]).json();
    let spot: Vec<f64> = spot
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["spot_price"].as_f64().unwrap())
        .collect();
    assert!(spot.windows(2).all(|w| w[0] <= w[1]), "{spot:?}");
}

#[test]
fn zone_is_null_for_clouds_without_zones() {
    let rows = Broker::new()
        .run(&["cost", "A100:8", "--cloud", "azure", "--json"])
        .json();
    assert_eq!(rows[0]["zone"], serde_json::Value::Null);
    assert_eq!(rows[0]["cloud"], "azure");
}

#[test]
fn without_an_accelerator_one_row_per_accelerator() {
    let run = Broker::new().run(&["cost", "--cloud", "gcp"]);
    insta::assert_snapshot!(run.render());
}

#[test]
fn unknown_names_suggest_the_closest() {
    let broker = Broker::new();
    for (name, args) in [
        ("accelerator", &["cost", "H10:8"][..]),
        ("count", &["cost", "A100:eight"]),
        ("cloud", &["cost", "A100", "--cloud", "awss"]),
        ("region", &["cost", "A100", "--region", "us-east-9"]),
    ] {
        let run = broker.run(args);
        assert_eq!(run.code, 2, "{}", run.render());
        insta::assert_snapshot!(format!("cost_unknown_{name}"), run.render());
    }
}

#[test]
fn a_user_catalog_overrides_the_embedded_one() {
    let broker = Broker::new();
    let dir = broker.home().join("catalogs/lambda");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("vms.csv"),
        "instance_type,accelerator,accelerator_count,vcpus,memory_gib,price,spot_price,region,zone,arch\n\
         gpu_8x_cheap,A100,8,124,1800,0.5,,us-test-1,,x86_64\n",
    )
    .unwrap();
    let rows = broker.run(&["cost", "A100:8", "--json"]).json();
    assert_eq!(rows[0]["instance_type"], "gpu_8x_cheap");
    assert_eq!(rows[0]["price"], 0.5);
}

#[test]
fn help_teaches_with_examples() {
    let run = Broker::new().run(&["cost", "--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("broker cost A100:8"), "{}", run.stdout);
    assert!(run.stdout.contains("`A100` is not `A100-80GB`"), "{}", run.stdout);
}
