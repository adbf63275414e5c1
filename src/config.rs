//! Command-line flags and `KEYSTRATE_*` environment variables. Switches
//! read their variable with [`BoolishValueParser`], so `1/0`, `yes/no`,
//! `on/off` and `true/false` all work (clap's default takes only the last).

use crate::http::origins::{parse_allowed_origin, parse_public_url};
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "keystrate",
    version,
    about = "Realtime invite and permission server"
)]
pub struct Cli {
    /// Data directory (sled database, admin socket).
    #[arg(
        long,
        global = true,
        env = "KEYSTRATE_DATA",
        default_value = "./keystrate-data"
    )]
    pub data: PathBuf,

    /// Log lines as `text` or `json` (one object a line) on standard error.
    #[arg(long, global = true, env = "KEYSTRATE_LOG_FORMAT", value_enum,
          default_value_t = crate::observe::LogFormat::Text)]
    pub log_format: crate::observe::LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Manage local users (works with the server running or not).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the API keys of documents (works with the server running or not).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write every record as JSON Lines (works with the server running or not).
    Export {
        /// File to write (created 0600); standard output without it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read an export into an empty data directory (server stopped).
    Import {
        /// File to read; standard input without it.
        #[arg(long = "in")]
        input: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints `<id>/<secret>` and nothing else.
    Create {
        doc: String,
        name: String,
        /// The admin of the document who owns the key (`name` or `name:provider`).
        #[arg(long)]
        owner: String,
    },
    /// List a document's keys as `<id>\t<name>` lines.
    List { doc: String },
    /// Delete a key.
    Delete { doc: String, id: String },
}

/// User commands work with the server running (through its admin socket)
/// or stopped.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a local user; the password is read from standard input.
    Add { name: String },
    /// List the accounts as `<name>\t<created at>` lines.
    List,
    /// Set a new password, read from standard input; the user's sessions end.
    Passwd { name: String },
    /// Delete a user with its sessions, permission entries, API keys and
    /// invites (refused while it is the last admin of a document).
    Delete { name: String },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEYSTRATE_LISTEN", default_value = "127.0.0.1:7007")]
    pub listen: SocketAddr,
    /// Public URL of the server (default `http://<listen>`).
    #[arg(long, env = "KEYSTRATE_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Extra origin allowed to open WebSockets (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "KEYSTRATE_ALLOWED_ORIGIN",
        value_delimiter = ',',
        value_parser = parse_allowed_origin
    )]
    pub allowed_origins: Vec<String>,
    /// Only `keystrate user add` creates accounts.
    #[arg(long, env = "KEYSTRATE_NO_OPEN_REGISTRATION", value_parser = BoolishValueParser::new())]
    pub no_open_registration: bool,
    /// Visiting a missing document does not create it.
    #[arg(long, env = "KEYSTRATE_NO_CREATE_ON_VISIT", value_parser = BoolishValueParser::new())]
    pub no_create_on_visit: bool,
    /// Concurrent connections before new ones get 503.
    #[arg(long, env = "KEYSTRATE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open WebSockets per user (per client address for logged-out
    /// callers); the next upgrade gets 429.
    #[arg(long, env = "KEYSTRATE_MAX_SOCKETS_PER_USER", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sockets_per_user: u32,
    /// A reverse proxy (CIDR or address, repeatable) whose
    /// `X-Forwarded-For` / `Forwarded` header names the real client.
    #[arg(
        long = "trusted-proxy",
        env = "KEYSTRATE_TRUSTED_PROXY",
        value_delimiter = ',',
        value_parser = parse_proxy
    )]
    pub trusted_proxies: Vec<IpNet>,
    /// Seconds a client may take to send a request head (slow-loris guard;
    /// also closes idle keep-alive connections).
    #[arg(long, env = "KEYSTRATE_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,
    /// Seconds between WebSocket pings; a socket silent for two intervals
    /// is dropped (half-open connections).
    #[arg(long, env = "KEYSTRATE_WS_PING_INTERVAL", default_value_t = 30)]
    pub ws_ping_interval: u64,
    /// Requests a second each WebSocket may send (bursts of twice as many);
    /// more are answered `rate_limited`.
    #[arg(long, env = "KEYSTRATE_WS_RATE_LIMIT", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_rate_limit: u32,
    /// Key directory writes (`POST`/`DELETE` on `/identity` and `/invite`)
    /// each client address may make a minute; more are answered 429.
    #[arg(long, env = "KEYSTRATE_DIRECTORY_WRITES_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub directory_writes_per_minute: u32,
    /// MiB of storage page cache. sled's own default, 1 GiB, fills as
    /// requests read stored invites; this bounds it.
    #[arg(long, env = "KEYSTRATE_CACHE_MB", default_value_t = crate::store::DEFAULT_CACHE_MB,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub cache_mb: u64,
    /// Invites one document may hold (used-up ones included) before
    /// creating more answers `too_many_invites`.
    #[arg(long, env = "KEYSTRATE_MAX_INVITES_PER_DOCUMENT",
          default_value_t = crate::engine::quota::DEFAULT_MAX_INVITES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_invites_per_document: usize,
    /// Seconds a session lasts after login; its sockets close (1008) then.
    #[arg(long, env = "KEYSTRATE_SESSION_TTL", default_value_t = 30 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..=10 * 365 * 24 * 3600))]
    pub session_ttl: u64,
    /// Serve Prometheus metrics at `/metrics` on this address (a private
    /// one: never the public listener). Off by default.
    #[arg(long, env = "KEYSTRATE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            listen: "127.0.0.1:7007".parse().expect("valid default"),
            public_url: None,
            allowed_origins: Vec::new(),
            no_open_registration: false,
            no_create_on_visit: false,
            max_connections: 10_000,
            max_sockets_per_user: 64,
            trusted_proxies: Vec::new(),
            header_read_timeout: 10,
            ws_ping_interval: 30,
            ws_rate_limit: 100,
            directory_writes_per_minute: 30,
            cache_mb: crate::store::DEFAULT_CACHE_MB,
            max_invites_per_document: crate::engine::quota::DEFAULT_MAX_INVITES,
            session_ttl: crate::engine::accounts::SESSION_TTL.as_secs(),
            metrics_listen: None,
        }
    }
}

/// A network in CIDR notation, or a single address.
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or a CIDR network (10.0.0.0/8)"))
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub serve: ServeArgs,
}

impl Config {
    /// The public URL without a trailing slash.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.serve.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn trusted_proxies_and_the_socket_cap_parse() {
        let cli = Cli::try_parse_from([
            "keystrate",
            "--trusted-proxy",
            "10.0.0.0/8,192.168.1.7",
            "--trusted-proxy",
            "fd00::/8",
            "--max-sockets-per-user",
            "5",
        ])
        .unwrap();
        let nets: Vec<String> = cli
            .serve
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]);
        assert_eq!(cli.serve.max_sockets_per_user, 5);
        assert_eq!(ServeArgs::default().max_sockets_per_user, 64);
        for bad in [
            ["--trusted-proxy", "10.0.0.0/33"],
            ["--trusted-proxy", "proxy.example"],
            ["--max-sockets-per-user", "0"],
        ] {
            let args = ["keystrate", bad[0], bad[1]];
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    /// Every switch that reads an environment variable takes the spellings
    /// people write there (clap's default parser refuses `1` and `yes`, and
    /// the server then does not start), and reads them the right way round.
    #[test]
    fn every_switch_reads_one_zero_yes_no_from_the_environment() {
        let cli = Cli::command();
        let mut commands = vec![&cli];
        commands.extend(cli.get_subcommands());
        let mut checked = 0;
        for command in commands {
            for arg in command.get_arguments() {
                let is_switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
                if !is_switch || arg.get_env().is_none() {
                    continue;
                }
                // The same parser, fed the text as an option value.
                let probe = arg.clone().action(clap::ArgAction::Set).num_args(1);
                let id = probe.get_id().to_string();
                let long = format!("--{}", probe.get_long().expect("switches are long flags"));
                for (text, expected) in [
                    ("1", true),
                    ("yes", true),
                    ("true", true),
                    ("0", false),
                    ("no", false),
                    ("false", false),
                ] {
                    let matches = clap::Command::new("probe")
                        .arg(probe.clone())
                        .try_get_matches_from(["probe", long.as_str(), text])
                        .unwrap_or_else(|e| panic!("{:?} refuses {text:?}: {e}", arg.get_env()));
                    assert_eq!(
                        matches.get_one::<bool>(&id),
                        Some(&expected),
                        "{:?}={text}",
                        arg.get_env()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 2, "the switches were not found");
    }
}
