//! # Greenlight host
//!
//! Greenlight approves orders. This crate is the small trusted host: it owns the approval state
//! machine, stores orders in SQLite with a hash-chained audit log, and runs everything that
//! varies between businesses as sandboxed extensions (Rhai scripts now; WASM components next).
//!
//! Layers, each depending only on those above it in this list:
//!
//! - [`domain`]: pure types and the state machine; no I/O.
//! - [`engine`]: runs a tenant's steps on an order context and merges them into a plan.
//! - [`store`]: SQLite: orders, audit chain, outbox; one transaction per change, group commit.
//! - [`runtime`]: the extension runtimes behind the engine's `Step` trait.
//! - [`approvals`]: the use cases, shared by the API and the CLI.
//! - [`api`]: the HTTP API v1 (axum).
//!
//! The `greenlight` binary adds the command line on top.

pub mod api;
pub mod approvals;
pub mod domain;
pub mod engine;
pub mod runtime;
pub mod store;
