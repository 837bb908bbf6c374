//! Speed of catalog loading and ranking, and of `broker cost A100:8` end to end.
//!
//! Run with `cargo bench --bench rank`. Prints a table; asserts nothing (speed goals are read by
//! people, not enforced by tests). Goals on a 2-core machine: `broker cost A100:8` under 30 ms
//! and 30 MiB peak; ranking no worse than linear in catalog rows.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use broker::catalog::Catalog;
use broker::optimizer;
use broker::request::{AcceleratorRequest, Amount, Request, Resources};
use broker_provider::Offer;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    median(samples)
}

fn requests() -> Vec<(&'static str, Request)> {
    let gpu = |name: &str, count: f64| Resources {
        accelerator: Some(AcceleratorRequest {
            name: name.into(),
            count,
        }),
        ..Resources::default()
    };
    vec![
        ("A100:8", Request::single(gpu("A100", 8.0))),
        ("T4:1", Request::single(gpu("T4", 1.0))),
        (
            "cpus: 8+",
            Request::single(Resources {
                cpus: Some(Amount::AtLeast(8.0)),
                ..Resources::default()
            }),
        ),
    ]
}

/// The catalog repeated `factor` times, each copy in regions of its own, so ranking sees
/// `factor` times as many distinct offers.
fn enlarged(offers: &[Offer], factor: usize) -> Vec<Offer> {
    let mut out = Vec::with_capacity(offers.len() * factor);
    for copy in 0..factor {
        out.extend(offers.iter().map(|o| {
            let mut o = o.clone();
            if copy > 0 {
                o.location.region = format!("{}-copy{copy}", o.location.region).into();
            }
            o
        }));
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The largest resident set of any child waited for so far, in KiB. `/proc` forgets a process
/// once it has exited, so the kernel's rusage accounting is the only reliable source.
#[allow(unsafe_code)]
fn peak_rss_of_children_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the zeroed struct we own, or fails and
    // leaves it zeroed, which is also a valid rusage.
    unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init().ru_maxrss
    }
}

fn main() {
    let runs = 15;
    println!("{:<44} {:>12}", "measurement (median)", "time");
    // The end-to-end runs go first: a child forked later would inherit this process's large
    // test catalogs until it execs, and its peak memory would count them.
    let exe = env!("CARGO_BIN_EXE_broker");
    let home = std::env::temp_dir().join(format!("broker-bench-{}", std::process::id()));
    let e2e = time(runs, || {
        let status = Command::new(exe)
            .args(["cost", "A100:8"])
            .env("BROKER_HOME", &home)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    });
    println!("{:<44} {:>12}", "`broker cost A100:8` process start to exit", ms(e2e));
    println!(
        "{:<44} {:>9} MiB",
        "`broker cost A100:8` peak memory (max RSS)",
        peak_rss_of_children_kib() / 1024
    );
    let only = time(runs, || Catalog::load_accelerator(None, &[], "A100").unwrap());
    println!("{:<44} {:>12}", "load embedded catalog, A100 rows only", ms(only));
    let load = time(runs, || Catalog::load(None, &[]).unwrap());
    let catalog = Catalog::load(None, &[]).unwrap();
    let rows = catalog.offers.len();
    println!(
        "{:<44} {:>12}",
        format!("load embedded catalog ({rows} offers)"),
        ms(load)
    );
    for factor in [1, 10] {
        let offers = enlarged(&catalog.offers, factor);
        for (name, request) in requests() {
            let t = time(runs, || optimizer::rank(&request, &offers).map_or(0, |c| c.len()));
            println!(
                "{:<44} {:>12}",
                format!("rank {name} over {} offers", offers.len()),
                ms(t)
            );
        }
    }
}
