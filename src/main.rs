//! The `smppgw` command line. For now it reports its version and what the gateway will do;
//! the runtime arrives with the server issue.

use std::process::ExitCode;

fn usage() -> String {
    format!(
        "smppgw {v}: SMPP gateway (SMPP 3.4 / 5.0)

usage:
  smppgw                 run on the embedded default configuration
  smppgw --version       print the version
  smppgw --help          this text

This build contains the SMPP protocol core (codec, framing, receipts, session state
machine). The server, upstream links, routing and failover are being built; running smppgw
now prints the plan below and exits.
",
        v = smppgw::VERSION
    )
}

fn plan() -> &'static str {
    "plan for the default configuration:
  - SMPP server on 127.0.0.1:2775 (plain) and 127.0.0.1:3550 (TLS, self-signed certificate)
  - account demo / demo
  - one data shard per core, plus a control shard
  - messages routed by regexroute rules to upstream SMSC links, with backup gateway failover
(not started: the runtime is not in this build yet)"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            println!("smppgw {}", smppgw::VERSION);
            println!("{}", plan());
            ExitCode::SUCCESS
        }
        Some("--version" | "-V" | "version") => {
            println!("smppgw {}", smppgw::VERSION);
            ExitCode::SUCCESS
        }
        Some("--help" | "-h" | "help") => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("smppgw: unknown argument '{other}'\n");
            eprint!("{}", usage());
            ExitCode::from(2)
        }
    }
}
