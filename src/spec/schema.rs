//! JSON Schemas of the config files, generated from the types in `file`.
