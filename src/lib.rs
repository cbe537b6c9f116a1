//! collabd: turns creators' email replies into collaborations.
//!
//! Data flows `imap` (fetch + sync state) → `mail` (parse, classify, strip quotes) →
//! `matching` → `ingest` (one transaction per batch) → `store` (all SQL). `collab` holds the
//! domain rules, `admin` and `smtp` (outreach mail) serve operators, `daemon` supervises it all.

pub mod admin;
pub mod cluster;
pub mod collab;
pub mod config;
pub mod confine;
pub mod daemon;
pub mod dates;
pub mod imap;
pub mod ingest;
pub mod mail;
pub mod matching;
pub mod oauth;
pub mod secrets;
pub mod smtp;
pub mod store;
pub mod telemetry;
