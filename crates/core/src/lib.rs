//! teal's pure core: what a config repo asks for and what to do about it,
//! with no IO. Nothing here touches Docker, a proxy, git, the network or
//! a clock; callers hand in what the outside said (files, an observed
//! host, counter snapshots) and get data back. The crate depends on no IO
//! crate, so the compiler keeps it that way.
//!
//! - `spec`: desired state: types, loading from files in memory, validation, schema
//! - `plan`: `plan(desired, observed) -> Plan` and its renderings
//! - `strategy`: blue-green, canary and rolling as step functions, and analysis
//! - `compose`: docker compose files to service files (`teal import compose`)
//! - `commit`: `ShortCommit`, commit ids cut for people at two set lengths
//! - `events`: the event log's lines: steps and deploy outcomes as typed data
//! - `images`: which deployed images a cleanup removes
//! - `latest`: the newest of a repository's tags that a `--latest` pattern matches
//! - `outcome`: what came of each service in a pass, sorted in one place
//! - `policy`: what a host's owner lets the repo ask for
//! - `status`: the `/status` document every reader parses
//! - `printable`: outside text made safe to print on a terminal

pub mod commit;
pub mod compose;
pub mod events;
pub mod images;
pub mod latest;
pub mod outcome;
pub mod plan;
pub mod policy;
pub mod printable;
pub mod spec;
pub mod status;
pub mod strategy;
