//! The domain: pure types and the approval state machine. No I/O, no clock, no SQL, no HTTP.
//!
//! - [`money`]: integer minor units and ISO 4217 currencies.
//! - [`actor`]: users, roles and the tenant policy (segregation of duties).
//! - [`directory`]: tenants, users, cost centers, and who a token belongs to.
//! - [`contact`]: e-mail addresses and phone numbers, checked before they are stored.
//! - [`order`]: orders, lines, statuses, subscriptions, input validation.
//! - [`adjustment`], [`flag`]: what steps add to an order: price adjustments and risk flags.
//! - [`attachment`]: documents attached to an order, known by their SHA-256 (R9).
//! - [`plan`]: stages, approvers, quorums, decisions.
//! - [`step`]: the shapes extensions read and return.
//! - [`authorization`]: the customer authorization certificate (R4).
//! - [`credit`]: the customer's credit line, updated in the ERP on approval (R4).
//! - [`delivery`]: notification deliveries, retries with backoff, dead letters.
//! - [`extension`]: extension kinds, plugin worlds and plugin-API versions.
//! - [`delegation`]: lending an approver's authority for a time window (R6).
//! - [`decision_link`]: signed, single-use approve and reject links for notification e-mails.
//! - [`drift`]: how a pending order's plan differs from what the current rules would make.
//! - [`machine`]: `apply(order, command) -> (order', events)` and its transition table.
//! - [`audit`]: the hash chain and its verifier.
//! - [`report`]: what the summary report counts, over which period, grouped how (R10).
//! - [`session`]: browser sessions' lifetimes, password rules, sign-in backoff.
//! - [`second_factor`]: one-time passwords (RFC 6238), their QR address, recovery codes.
//! - [`access_attempt`]: sign-ins and refused API calls on record; when an account locks.
//! - [`access_review`]: who holds which role and lends authority to whom; who is dormant.

pub mod access_attempt;
pub mod access_review;
pub mod actor;
pub mod adjustment;
pub mod attachment;
pub mod audit;
pub mod authorization;
pub mod contact;
pub mod credit;
pub mod decision_link;
pub mod delegation;
pub mod delivery;
pub mod directory;
pub mod drift;
pub mod extension;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod flag;
pub mod machine;
pub mod money;
pub mod order;
pub mod plan;
pub mod report;
pub mod second_factor;
pub mod session;
pub mod step;
