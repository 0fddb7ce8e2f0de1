//! The bundled demo app (see `app/main.rs`): a static binary for
//! `FROM scratch` images, used by `teal demo` and the tests.

/// The statically linked demo app, ready to copy into an image as `/app`.
pub static DEMO_APP: &[u8] = include_bytes!(env!("TEAL_DEMO_APP"));
