//! `broker-gce-fake`: serves the fake on 127.0.0.1 for manual use and for `.ci/run`.
//!
//! ```text
//! broker-gce-fake [--port N] [--project P] [--operation-delay-ms N] [--token-lifetime-secs N]
//!                 [--service-account EMAIL=PUBLIC_KEY.pem]... [--refresh-token ID:SECRET:TOKEN]...
//! ```
//! Prints one JSON line (`compute_url`, `token_url`, `metadata_url`, and a ready bearer `token`)
//! on stdout once it listens, then serves until killed.

use std::process::ExitCode;
use std::time::Duration;

use broker_gce_fake::{FakeGce, FakeOptions};

/// The options that take a value; anything else is refused up front.
const FLAGS: &[&str] = &[
    "--port",
    "--project",
    "--operation-delay-ms",
    "--token-lifetime-secs",
    "--service-account",
    "--refresh-token",
];

struct Args {
    options: FakeOptions,
    service_accounts: Vec<(String, String)>,
    refresh_tokens: Vec<(String, String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        options: FakeOptions::default(),
        service_accounts: Vec::new(),
        refresh_tokens: Vec::new(),
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        if !FLAGS.contains(&flag.as_str()) {
            return Err(format!("unknown option `{flag}`"));
        }
        let value = words.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("`{flag}` needs a number, not `{v}`"))
        };
        match flag.as_str() {
            "--port" => {
                args.options.port = u16::try_from(number(&value)?).map_err(|_| format!("no port `{value}`"))?;
            }
            "--project" => args.options.project = value,
            "--operation-delay-ms" => args.options.operation_delay = Duration::from_millis(number(&value)?),
            "--token-lifetime-secs" => args.options.token_lifetime = Duration::from_secs(number(&value)?),
            "--service-account" => {
                let (email, path) = value
                    .split_once('=')
                    .ok_or_else(|| format!("`{value}` is not EMAIL=PUBLIC_KEY.pem"))?;
                let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
                args.service_accounts.push((email.to_owned(), pem));
            }
            "--refresh-token" => {
                let parts: Vec<&str> = value.splitn(3, ':').collect();
                let [id, secret, token] = parts.as_slice() else {
                    return Err(format!("`{value}` is not CLIENT_ID:SECRET:REFRESH_TOKEN"));
                };
                args.refresh_tokens
                    .push(((*id).to_owned(), (*secret).to_owned(), (*token).to_owned()));
            }
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    Ok(args)
}

// The binary's whole interface is one line on stdout and errors on stderr.
#[allow(clippy::print_stdout, clippy::print_stderr)]
#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!(
                "usage: broker-gce-fake [--port N] [--project P] [--operation-delay-ms N] [--token-lifetime-secs N] \
                 [--service-account EMAIL=PUBLIC_KEY.pem]... [--refresh-token ID:SECRET:TOKEN]..."
            );
            return ExitCode::from(2);
        }
    };
    let fake = match FakeGce::start(args.options).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (email, pem) in &args.service_accounts {
        fake.add_service_account(email, pem);
    }
    for (id, secret, token) in &args.refresh_tokens {
        fake.add_refresh_token(id, secret, token);
    }
    println!(
        "{}",
        serde_json::json!({
            "compute_url": fake.compute_url(),
            "token_url": fake.token_url(),
            "metadata_url": fake.metadata_url(),
            "token": fake.issue_token(),
            "project": fake.project(),
        })
    );
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
