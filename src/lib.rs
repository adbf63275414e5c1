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
