//! Every integration test in one binary: the crate is linked once instead of
//! once per file, and the helpers in `common/` are compiled once.
//!
//! Each module is one area (the file names say which); `cargo test --test it
//! AREA::` runs one. Tests run in parallel threads of this one process, so
//! nothing here may change process-wide state (environment variables, the
//! current directory, a metrics recorder or a tracing subscriber): a test
//! that needs such a setting starts the real binary (`common::process`).

mod common;
mod directory_support;

mod abuse;
mod authorization;
mod browser;
mod cli;
mod clients;
mod deploy;
mod directory;
mod docs;
mod durability;
mod export;
mod faults;
mod http;
mod invites;
mod keys;
mod login_flood;
mod logins;
mod memory;
mod openapi;
mod operations;
mod process;
mod properties;
mod rooms;
mod sessions;
mod websocket;
