//! `broker catalog`: importing SkyPilot data and using it instead of the embedded tables.

use crate::common::{Broker, fixtures};

#[test]
fn imported_tables_replace_the_embedded_ones_and_carry_their_date() {
    let broker = Broker::new();
    let out = broker.home().join("catalogs");
    let source = fixtures().join("skypilot-v8");
    let run = broker.run(&[
        "catalog",
        "import",
        source.to_str().unwrap(),
        out.to_str().unwrap(),
        "--snapshot-date",
        "2026-11-28",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(
        run.stdout.contains("gcp"),
        "the report lists each cloud: {}",
        run.stdout
    );

    // GCP's T4 is priced on top of the n1 host of the same zone: 0.19 + 0.35; the T4 row of
    // us-central1-b has no host there and is dropped, as is the TPU.
    let rows = broker.run(&["cost", "T4", "--cloud", "gcp", "--all", "--json"]).json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["instance_type"], "n1-standard-4");
    assert_eq!(rows[0]["zone"], "us-central1-a");
    assert!((rows[0]["price"].as_f64().unwrap() - 0.54).abs() < 1e-9);

    let table = broker.run(&["cost", "T4", "--cloud", "aws"]);
    assert!(
        table.stdout.contains("aws 2026-11-28 (1 day old, user copy)"),
        "{}",
        table.stdout
    );
}

#[test]
fn importing_from_a_directory_without_catalogs_fails_clearly() {
    let broker = Broker::new();
    let empty = broker.home().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = broker.run(&["catalog", "import", empty.to_str().unwrap(), "out"]);
    assert_eq!(run.code, 4, "{}", run.render());
    assert!(
        run.stderr.contains("expected a SkyPilot v8 catalog directory"),
        "{}",
        run.stderr
    );
    let run = broker.run(&[
        "catalog",
        "import",
        empty.to_str().unwrap(),
        "out",
        "--snapshot-date",
        "last week",
    ]);
    assert_eq!(run.code, 2, "{}", run.render());
}

#[test]
fn show_lists_every_embedded_table_with_its_age() {
    let run = Broker::new().run(&["catalog", "show"]);
    insta::assert_snapshot!(run.render());
}
