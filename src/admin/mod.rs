//! The admin API: one JSON request per line on a Unix socket, one JSON response per line.
//! `collabctl` is its client; `socat` works too (see docs/admin-protocol.md).

pub mod client;
pub mod display;
mod methods;
pub mod protocol;
mod server;
mod views;

pub use methods::{AdminContext, FileConfig};
pub use server::{AdminServer, ServerError};
