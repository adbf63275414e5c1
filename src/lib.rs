//! keystrate: a realtime invite and permission server for collaborative
//! documents. See `docs/architecture.md` for the map of this crate.

pub mod admin;
pub mod cli;
pub mod config;
pub mod directory;
pub mod engine;
pub mod http;
pub mod model;
pub mod observe;
pub mod server;
pub mod store;
pub mod transfer;
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

/// jemalloc's options, which it reads once as it starts: C's `const char
/// *malloc_conf`, named with tikv-jemalloc-sys's `_rjem_` prefix.
///
/// One arena, not jemalloc's four per CPU: the pages sled pulls in while
/// invites expire are freed from other threads than allocated them, and
/// with several arenas each kept its own half-empty slabs. One arena took
/// the peak of an expiry burst from 125 to 97 MB at the same request rates
/// (docs/benchmarks.md).
///
/// A background thread returns freed memory to the system: by itself
/// jemalloc purges only while allocating, so after a burst (thousands of
/// sockets leaving) an idle server kept hundreds of MB. Unused dirty pages
/// go back after about 5 s, instead of the default 10 s, so that a burst
/// is returned well within the 30 s the docs promise.
///
/// `_RJEM_MALLOC_CONF` in the environment overrides these, e.g.
/// `narenas:8` on a many-core machine.
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &u8 =
    &b"narenas:1,background_thread:true,dirty_decay_ms:5000,muzzy_decay_ms:5000\0"[0];
