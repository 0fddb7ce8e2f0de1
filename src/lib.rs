//! teal: GitOps blue/green deploys on Docker hosts.
//!
//! The module names are the architecture (DESIGN.md section 4;
//! docs/architecture.md). The pure core is its own crate, `teal-core`
//! (crates/core), re-exported here under the same names:
//! - `spec`: desired state: types, loading, validation, schema
//! - `plan`: pure `plan(desired, observed) -> Plan` and its renderings
//! - `strategy`: the strategies as step functions, and analysis
//! - `commit`: commit ids shortened for people (`ShortCommit`)
//! - `outcome`: what came of each service in a pass, sorted in one place
//! - `policy`: what the host's owner lets the repo ask for
//! - `status`: the `/status` document as data
//! - `printable`: outside text made safe to print on a terminal
//!
//! This crate holds everything that touches the outside:
//! - `source`: git2: resolve a revision, read a tree without a checkout
//! - `health`: http, tcp and exec probes with thresholds and deadlines
//! - `drivers`: docker, nginx, haproxy: the only code touching the outside
//! - `observe`: what Docker and the proxy run, as plain data
//! - `engine`: runs a plan step by step through the drivers
//! - `records`: rollout progress in the state dir, written by the engine, read by `observe`
//! - `pins`: the digest each deployed tag resolved to, so a moved tag never changes what runs
//! - `events`: the append-only event log in the state dir
//! - `history`: the event log grouped into deploys, for `teal history`
//! - `reconcile`: one pass (read a commit, observe, plan, execute)
//! - `config`: the host config (not in git)
//! - `daemon`: the long-running loop (its `scheduler`: when passes run, backoff), its lock, HTTP API and dashboard
//! - `logs`: log lines as text or JSON
//! - `commands`: one thin module per subcommand
//! - `version`: the commit and tested versions `teal --version` names
//! - `app`: the bundled static demo app

pub mod app;
pub mod atomic;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod drivers;
pub mod engine;
pub mod events;
pub mod health;
pub mod history;
pub mod logs;
pub mod notify;
pub mod observe;
pub mod pins;
pub mod reconcile;
pub mod records;
pub mod secret;
pub mod source;
pub mod version;

pub use teal_core::{commit, compose, images, latest, outcome, plan, policy, printable, spec, status, strategy};
