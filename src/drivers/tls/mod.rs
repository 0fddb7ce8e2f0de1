//! Certificate material for HTTPS routes: read certificate and key files,
//! check them (the key matches, the dates, the route's hosts), make the
//! fallback self-signed certificate, and keep teal's own copies in a
//! directory it owns. No proxy or ACME logic: those call this.
//!
//! `pem` splits PEM text, `x509` reads what is shown of a certificate,
//! `check` checks, `generate` makes, `store` keeps; `material` and `error`
//! hold the types they share.

mod check;
mod error;
mod generate;
mod material;
mod pem;
mod store;
mod x509;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_files;

pub use check::{check, read_files, MAX_FILE_BYTES};
pub use error::TlsError;
pub use generate::self_signed;
pub use material::{CertInfo, Material};
pub use store::Store;
