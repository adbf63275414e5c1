//! Command-line flags and `KEYSTRATE_*` environment variables.

use clap::{Args, Parser, Subcommand};
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

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Manage local users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the API keys of documents (works with the server running or not).
    #[command(subcommand)]
    Keys(KeysCommand),
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

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a local user; the password is read from standard input.
    Add { name: String },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEYSTRATE_LISTEN", default_value = "127.0.0.1:7007")]
    pub listen: SocketAddr,
    /// Public URL of the server (default `http://<listen>`).
    #[arg(long, env = "KEYSTRATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Extra origin allowed to open WebSockets (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "KEYSTRATE_ALLOWED_ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Only `keystrate user add` creates accounts.
    #[arg(long, env = "KEYSTRATE_NO_OPEN_REGISTRATION")]
    pub no_open_registration: bool,
    /// Visiting a missing document does not create it.
    #[arg(long, env = "KEYSTRATE_NO_CREATE_ON_VISIT")]
    pub no_create_on_visit: bool,
    /// Concurrent connections before new ones get 503.
    #[arg(long, env = "KEYSTRATE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
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
    /// MiB of storage page cache. sled's own default, 1 GiB, fills as
    /// requests read stored invites; this bounds it.
    #[arg(long, env = "KEYSTRATE_CACHE_MB", default_value_t = crate::store::DEFAULT_CACHE_MB,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub cache_mb: u64,
    /// Seconds a session lasts after login; its sockets close (1008) then.
    #[arg(long, env = "KEYSTRATE_SESSION_TTL", default_value_t = 30 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..=10 * 365 * 24 * 3600))]
    pub session_ttl: u64,
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
            header_read_timeout: 10,
            ws_ping_interval: 30,
            ws_rate_limit: 100,
            cache_mb: crate::store::DEFAULT_CACHE_MB,
            session_ttl: crate::engine::accounts::SESSION_TTL.as_secs(),
        }
    }
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
