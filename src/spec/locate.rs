//! Positions of YAML nodes by key path, so semantic errors found after
//! deserialising can still point at `path:line:col`.
