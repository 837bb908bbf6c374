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
    /// Reads a SkyPilot-compatible task YAML and picks the cheapest offer that satisfies it, with
    /// a failover plan (next zone, next region, next cloud). Without `--dry-run` it creates the
    /// cluster on the first candidate that has capacity, syncs the workdir, runs `setup` and
    /// `run` on every node, streams the output and exits with the job's exit code. Flags
    /// override the file's `resources`.
    #[command(
        after_help = "Examples:\n  broker launch train.yaml --dry-run\n  broker launch train.yaml --dry-run --gpus H100:8 --use-spot --json\n  broker launch train.yaml -c exp1 --yes --down\n  broker launch ci.yaml --yes --json --down --use-spot --max-price 1.5 --max-duration 45m\n  broker launch train.yaml -c exp1 --yes --detach -i 30 --down\n  broker launch --from-run 12 --yes"
    )]
    Launch(LaunchArgs),

    /// List clusters broker knows, with their state.
    Status(StatusArgs),

    /// Tear clusters down (idempotent: a cluster already gone is fine).
    Down(DownArgs),

    /// Stop clusters: compute stops billing, disks (and what is on them) are kept.
    ///
    /// `broker start` brings them back; `broker down` deletes them. Not every cloud can stop.
    #[command(after_help = "Examples:\n  broker stop exp1\n  broker start exp1 && broker exec exp1 -- nvidia-smi")]
    Stop(PowerArgs),

    /// Start stopped clusters again (nodes may get new addresses; broker follows them).
    Start(PowerArgs),

    /// Which clouds have working credentials, and who they say you are.
    ///
    /// A launch only considers enabled clouds. Exits 0 when at least one cloud is enabled.
    #[command(after_help = "Examples:\n  broker check\n  broker check aws gcp --json")]
    Check(CheckArgs),

    /// Stop (or with `--down`, tear down) a cluster once it has run no job for a while.
    ///
    /// The nodes' own watchdog acts on it, so it holds with broker, the laptop or the CI runner
    /// gone. On AWS an autostopped node is terminated: broker's AWS nodes stop billing entirely
    /// when they power off.
    #[command(
        after_help = "Examples:\n  broker autostop exp1 -i 30\n  broker autostop exp1 -i 2h --down\n  broker autostop exp1 --cancel"
    )]
    Autostop(AutostopArgs),

    /// Show a job's output: what it printed so far, or (`--follow`) until it ends.
    ///
    /// With `--follow`, exits with the job's exit code, like `launch`.
    #[command(
        after_help = "Examples:\n  broker logs exp1            # the latest job's output so far\n  broker logs exp1 2 --follow # stream job 2 until it ends"
    )]
    Logs(LogsArgs),

    /// Run a task file or a command on an existing cluster, as a new job.
    ///
    /// Queued behind the cluster's running job. A task file's `resources` are ignored (the
    /// cluster is what it is), but for `image_id: docker:IMAGE`, which runs the job in a
    /// container of IMAGE. Without `--detach`, streams the output and exits with the job's
    /// exit code.
    #[command(
        after_help = "Examples:\n  broker exec exp1 -- python eval.py --split test\n  broker exec exp1 eval.yaml --detach --env SPLIT=test"
    )]
    Exec(ExecArgs),

    /// List a cluster's jobs: id, name, state, exit code, submission time.
    #[command(after_help = "Examples:\n  broker queue exp1\n  broker queue exp1 --json")]
    Queue(QueueArgs),

    /// List recorded runs, newest first: what ran where, at what price, and how it ended.
    ///
    /// Every `broker launch` and `broker exec` records a run: the task file (its hash, and its
    /// text with `secrets` values blanked), the workdir's git commit, the offer and the
    /// candidates it beat, the price, times and exit code. Runs outlive their clusters.
    /// `broker launch --from-run ID` launches a recorded run again.
    #[command(
        after_help = "Examples:\n  broker runs\n  broker runs --cluster exp1 --limit 5\n  broker runs --json | jq '.[0].workdir_commit'"
    )]
    Runs(RunsArgs),

    /// Total the cost of recorded runs by cluster, task, commit or day.
    ///
    /// Each run costs the hourly price recorded when it started times how long it ran (so far,
    /// for a running one); catalog changes never alter past costs. Days are UTC, and a run that
    /// crosses midnight counts toward both days. Idle time between runs is not a run's cost.
    #[command(
        after_help = "Examples:\n  broker cost-report\n  broker cost-report --by day --since 2026-11-01\n  broker cost-report --by commit --json"
    )]
    CostReport(CostReportArgs),

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
    #[arg(value_name = "FILE", required_unless_present = "from_run")]
    pub file: Option<PathBuf>,

    /// Launch a recorded run again (`broker runs` lists them): the same task file content and
    /// resource flags; flags given now override them, and secrets come from the environment.
    #[arg(long, value_name = "ID", conflicts_with = "file")]
    pub from_run: Option<i64>,

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

    /// Machine-readable output on stdout: the plan with `--dry-run`; otherwise one JSON object
    /// when the run ends (offer, price, attempts, times, cost, exit code), with the job's output
    /// on stderr.
    #[arg(long)]
    pub json: bool,

    /// Return once the job started; `broker logs CLUSTER JOB --follow` streams it later.
    /// (With `-i`, `--down` then means: tear down once idle.)
    #[arg(short, long)]
    pub detach: bool,

    /// Refuse offers whose hourly price for the whole cluster is above this (USD).
    #[arg(long, value_name = "USD")]
    pub max_price: Option<f64>,

    /// When every candidate is out of capacity (or quota), try the whole plan again with
    /// backoff until this long has passed (default 1h when given without a value).
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "1h",
          value_parser = crate::duration::parse)]
    pub retry_until_up: Option<std::time::Duration>,

    /// Hard limit on the cluster's life (`45m`, `2h`): the nodes power themselves off when it
    /// passes, even if this process, the CI runner or the laptop is gone.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub max_duration: Option<std::time::Duration>,

    /// Stop the cluster after it has run no job for this long (minutes, or `30s`, `2h`);
    /// with `--down`, tear it down instead.
    #[arg(short = 'i', long = "idle-minutes", value_name = "MINUTES", value_parser = crate::duration::parse)]
    pub idle: Option<std::time::Duration>,

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

/// `broker check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Clouds to check; default: every cloud broker can launch on.
    #[arg(value_name = "CLOUD")]
    pub clouds: Vec<String>,
    /// Print JSON (one object per cloud).
    #[arg(long)]
    pub json: bool,
}

/// `broker autostop`.
#[derive(Debug, Args)]
pub struct AutostopArgs {
    /// The cluster.
    #[arg(value_name = "CLUSTER")]
    pub cluster: String,
    /// Idle time before acting (minutes, or `30s`, `2h`).
    #[arg(short = 'i', long = "idle-minutes", value_name = "MINUTES", value_parser = crate::duration::parse,
          required_unless_present = "cancel")]
    pub idle: Option<std::time::Duration>,
    /// Tear the cluster down instead of stopping it.
    #[arg(long, conflicts_with = "cancel")]
    pub down: bool,
    /// Turn autostop off.
    #[arg(long, conflicts_with = "idle")]
    pub cancel: bool,
}

/// `broker stop` and `broker start`.
#[derive(Debug, Args)]
pub struct PowerArgs {
    /// The clusters.
    #[arg(value_name = "CLUSTER", required = true)]
    pub clusters: Vec<String>,
}

/// `broker logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The cluster.
    #[arg(value_name = "CLUSTER")]
    pub cluster: String,
    /// The job id; default: the cluster's latest job.
    #[arg(value_name = "JOB")]
    pub job: Option<u64>,
    /// Stream until the job ends on every node, then exit with its exit code.
    #[arg(short, long)]
    pub follow: bool,
}

/// `broker exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The cluster.
    #[arg(value_name = "CLUSTER")]
    pub cluster: String,
    /// A task file, or a command (its words joined with spaces, run by bash). Put `--` before a
    /// command that has flags of its own; broker's flags go before it.
    #[arg(
        value_name = "FILE|COMMAND",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
    /// Return once the job is queued; `broker logs CLUSTER JOB --follow` streams it later.
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable for the job (`KEY=VALUE`, or `KEY` to pass the local value).
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    pub envs: Vec<String>,
}

/// `broker queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// The cluster.
    #[arg(value_name = "CLUSTER")]
    pub cluster: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `broker runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only runs on this cluster (torn-down clusters included).
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// Show at most this many of the newest runs; 0 shows all.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print a JSON array with every recorded field, newest first.
    #[arg(long)]
    pub json: bool,
}

/// `broker cost-report`.
#[derive(Debug, Args)]
pub struct CostReportArgs {
    /// What to total by.
    #[arg(long, value_enum, value_name = "KEY", default_value_t = ReportBy::Cluster)]
    pub by: ReportBy,
    /// Count only time from the start of this day (UTC, `YYYY-MM-DD`) on.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Print JSON: the groups and a total.
    #[arg(long)]
    pub json: bool,
}

/// What `broker cost-report` totals by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportBy {
    /// The cluster the run ran on.
    Cluster,
    /// The task's name (else its file's name).
    Task,
    /// The workdir's git commit (`+dirty` counted apart).
    Commit,
    /// The UTC day.
    Day,
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
