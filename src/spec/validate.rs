//! Semantic rules over the parsed files; every problem is collected.
