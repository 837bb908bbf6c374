//! Command-line arguments (clap derive only; no behaviour here).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Run ML jobs on the cheapest GPU that fits, across clouds.
///
/// Start with `broker cost A100:8` to compare prices, then `broker launch task.yaml --dry-run`
/// to see which instance a task file would get.
#[derive(Debug, Parser)]
#[command(name = "broker", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v debug, -vv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Broker's commands.
// Parsed once per process; boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare prices across clouds.
    ///
    /// With an accelerator (`A100:8`, `H100`, `L4:1`), lists the cheapest offer of each cloud;
    /// without one, the cheapest price per GPU-hour of every accelerator on every cloud.
    /// Accelerator names are matched exactly, ignoring case: `A100` is not `A100-80GB`.
    #[command(
        after_help = "Examples:\n  broker cost A100:8\n  broker cost H100:8 --spot --all\n  broker cost L4 --cloud gcp --json"
    )]
    Cost(CostArgs),

    /// Plan and launch a task file.
    ///
    /// Reads a SkyPilot-compatible task YAML, picks the cheapest offer that satisfies it and
    /// prints the failover plan. Flags override the file's `resources`.
    #[command(
        after_help = "Examples:\n  broker launch train.yaml --dry-run\n  broker launch train.yaml --dry-run --gpus H100:8 --use-spot --json"
    )]
    Launch(LaunchArgs),

    /// List clusters broker knows, with their state.
    Status(StatusArgs),

    /// Tear clusters down (idempotent: a cluster already gone is fine).
    Down(DownArgs),

    /// Manage price catalogs.
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

/// `broker cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Accelerator and count per node, e.g. `A100:8`; a bare name means 1.
    #[arg(value_name = "ACCEL[:N]")]
    pub accelerator: Option<String>,

    /// List every region (and with `--json`, every zone) instead of the cheapest per cloud.
    #[arg(long)]
    pub all: bool,

    /// Rank by spot price (offers without a spot market are left out).
    #[arg(long)]
    pub spot: bool,

    /// Only this cloud.
    #[arg(long, value_name = "CLOUD")]
    pub cloud: Option<String>,

    /// Only this region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Print a JSON array of offers, cheapest first, instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `broker launch`.
// Command-line switches are independent yes/no choices; an enum would not model them better.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// The task file (SkyPilot-compatible YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Plan only: print the chosen offer and the failover plan, create nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Name of the cluster to create; default: the task's name plus a short random suffix.
    #[arg(short, long, value_name = "CLUSTER")]
    pub cluster: Option<String>,

    /// Tear the cluster down when the job ends, whatever its outcome (also on Ctrl-C).
    #[arg(long)]
    pub down: bool,

    /// Do not ask for confirmation before creating machines.
    #[arg(short, long)]
    pub yes: bool,

    /// Do not stream the job's output (the exit code still passes through).
    #[arg(short, long)]
    pub quiet: bool,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Refuse offers whose hourly price for the whole cluster is above this (USD).
    #[arg(long, value_name = "USD")]
    pub max_price: Option<f64>,

    /// How many candidates the plan table shows (JSON lists them all).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub show: usize,

    /// Overrides of the task file.
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

/// `broker status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Ask each cloud which nodes still exist and update the records (finds crashed launches).
    #[arg(long)]
    pub refresh: bool,
    /// Also list resources carrying broker's tag that no record knows about.
    #[arg(long)]
    pub orphans: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `broker down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Clusters to tear down.
    #[arg(value_name = "CLUSTER", required_unless_present = "all")]
    pub clusters: Vec<String>,
    /// Every cluster broker knows.
    #[arg(long, conflicts_with = "clusters")]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

/// Flags that override a task file's fields.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Overrides of the task file")]
pub struct OverrideArgs {
    /// Accelerators per node, e.g. `H100:8`.
    #[arg(long, value_name = "ACCEL[:N]")]
    pub gpus: Option<String>,
    /// Only this cloud.
    #[arg(long, value_name = "CLOUD")]
    pub cloud: Option<String>,
    /// Only this region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Only this zone.
    #[arg(long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// Use the spot market.
    #[arg(long, overrides_with = "no_use_spot")]
    pub use_spot: bool,
    /// Use on-demand instances even if the file asks for spot.
    #[arg(long, overrides_with = "use_spot")]
    pub no_use_spot: bool,
    /// Number of nodes.
    #[arg(long, value_name = "N")]
    pub num_nodes: Option<String>,
    /// vCPUs per node: `8` exactly or `8+` at least.
    #[arg(long, value_name = "N[+]")]
    pub cpus: Option<String>,
    /// Memory per node in GiB: `32` exactly or `32+` at least.
    #[arg(long, value_name = "GIB[+]")]
    pub memory: Option<String>,
    /// Exactly this instance type.
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// Set an environment variable for the job (`KEY=VALUE`, or `KEY` to pass the local value).
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    pub envs: Vec<String>,
}

/// `broker catalog`.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Convert SkyPilot v8 catalogs (`<DIR>/<cloud>/vms.csv`) into broker's schema.
    ///
    /// Writes `<OUT>/<cloud>/vms.csv` and `<OUT>/index.csv`. To use converted tables instead
    /// of the embedded ones, write them to `$BROKER_HOME/catalogs`.
    Import {
        /// A SkyPilot v8 catalog directory.
        #[arg(value_name = "DIR")]
        source: PathBuf,
        /// Where to write broker's tables.
        #[arg(value_name = "OUT")]
        dest: PathBuf,
        /// The day the source was fetched (`YYYY-MM-DD`); dates every table, so price tables
        /// show how old the data is. Defaults to the dates known for broker's shipped copy.
        #[arg(long, value_name = "DATE")]
        snapshot_date: Option<String>,
    },
    /// List the catalogs in use: where each comes from, its date and size.
    Show,
}
