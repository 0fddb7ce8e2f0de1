//! git2: fetch, resolve a revision, read a tree without a checkout.

pub mod fetch;
