//! The integration tests: one crate, one binary, one shared harness (`harness/`: a fresh
//! Postgres database per test, private Dovecot and SMTP servers on free ports, the real
//! `collabd` and `collabctl` binaries as child processes). Each module is one concern;
//! run one with `cargo test --test it cluster::`.

mod harness;

mod admin;
mod cluster;
mod config;
mod faults;
mod fixtures;
mod hostile_output;
mod imports;
mod ingest;
mod mailboxes;
mod notify;
mod oauth;
mod oauth_harness;
mod parse_props;
mod parse_shapes;
mod protocol_doc;
mod secrets;
mod store;
mod systemd_unit;
