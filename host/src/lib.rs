//! # Greenlight host
//!
//! Greenlight approves orders. This crate is the small trusted host: it owns the approval state
//! machine, stores orders in SQLite with a hash-chained audit log, and runs everything that
//! varies between businesses as extensions: Rhai scripts, WebAssembly components built against
//! the versioned plugin API (`plugin-api/wit`), and, off by default, native libraries.
//!
//! ## Layers
//!
//! Each depends only on the layers above it in this list.
//!
//! - [`domain`]: pure types and rules, no I/O: money, orders, plans, the state machine
//!   ([`domain::machine`], whose transition table [`domain::machine::TABLE`] is the code `apply`
//!   consults), the audit hash chain, the shapes extensions read and return.
//! - [`engine`]: the [`engine::Step`] trait; runs a tenant's steps on an order's context,
//!   validates every output and merges them into an assessment. It fails closed.
//! - [`store`]: SQLite: orders, audit chain, outbox, deliveries, extensions, plugins.
//! - [`runtime`]: the extension runtimes behind `Step` ([`runtime::rhai`], [`runtime::wasm`],
//!   [`runtime::native`]) and the catalog that turns a tenant's enabled extensions into steps.
//! - [`approvals`]: the use cases, one file per job, shared by the API and the command line;
//!   role checks live here. [`approvals::workers`] holds the background workers.
//! - [`api`]: the HTTP API v1 (axum): handlers, the one error type, the OpenAPI document.
//! - [`web`]: the dashboard (askama pages on the same listener), calling [`approvals`] directly.
//!
//! The `greenlight` binary (`src/main.rs`, `src/cli/`) adds the command line and wires the
//! layers together.
//!
//! ## A submit, end to end
//!
//! `POST /v1/orders/{id}/submit` ([`api`]) → [`approvals::Approvals::submit`]: read the order
//! and check who may submit it; build the context the steps see
//! ([`approvals::build_context`]: budgets used, cost center, connector data) and run the steps
//! on a blocking thread ([`engine::evaluate`]); then one change on the writer: reload the order,
//! refuse if its version moved, [`domain::machine::apply`] the submission, and write the order,
//! its audit entries, its outbox rows and the evaluation record together.
//!
//! ## One writer, group commit
//!
//! Every change is a closure sent to the store's single writer thread ([`store::Store::write`]),
//! run inside its own savepoint of the writer's current transaction. The writer commits every
//! change waiting with one fsync; a change that fails or panics is rolled back alone. Because
//! changes run one at a time, a read-check-write inside one is atomic: two approvers racing for
//! a stage resolve to exactly one winner. Reads use a pool of read-only connections beside it.
//!
//! ## Background workers
//!
//! `serve` runs [`approvals::workers::dispatcher`] (outbox events fanned out to the tenant's
//! channels, sent, retried, dead-lettered; approved orders released to the ERP) and
//! [`approvals::workers::escalation`] (overdue stages escalated, R6). Each round is a committed
//! change, so a crash loses nothing.

pub mod api;
pub mod approvals;
pub mod domain;
pub mod engine;
pub mod runtime;
pub mod store;
pub mod web;
