//! patrol: a policy decision point for fine-grained and legacy personal access tokens and
//! CI/CD job tokens. The catalog names what can be done, the engine decides, and the
//! rest of the crate feeds and exposes them.

pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod directory;
pub mod domain;
pub mod engine;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod service;
pub mod store;
pub mod token;
pub mod tokens;
