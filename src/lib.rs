//! keystrate: a realtime invite and permission server for collaborative
//! documents. See `docs/architecture.md` for the map of this crate.

pub mod admin;
pub mod cli;
pub mod config;
pub mod engine;
pub mod http;
pub mod server;
pub mod store;
pub mod ws;

pub use config::Config;
pub use server::{start, Running};

/// jemalloc, not glibc's malloc: sled allocates and frees a node per page it
/// touches from many threads, and glibc's per-thread arenas fragment under
/// that (twice the live heap in RSS after an expiry burst). Declared in the
/// library so that every process that runs the server (the binary, the
/// bench's server mode) uses the same one. See docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
