//! API tests: each starts the real application on a random port, on a fresh database,
//! and talks HTTP to it. Tests that touch the store run on both backends, as
//! `<test>::sqlite` and `<test>::postgres`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a broken assumption should fail the test loudly"
)]

mod admin;
mod authorize;
mod callers;
mod catalog;
mod directory;
mod faults;
mod gateway;
#[path = "../gateway/gateways.rs"]
#[allow(
    dead_code,
    reason = "shared with tests/gateway, which starts every gateway"
)]
mod gateways;
mod gitlab;
mod graphql;
mod health;
mod jobs;
mod lifecycle;
mod limits;
mod notify;
mod proxies;
mod readme;
mod replicas;
mod secrets;
mod store;
mod support;
mod tokens;
mod usage;
