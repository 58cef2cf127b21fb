//! patrol: a policy decision point for fine-grained and legacy personal access tokens and
//! CI/CD job tokens. The catalog names what can be done (crates/catalog), the engine
//! decides (crates/engine), and this crate feeds and exposes them.

pub use patrol_catalog as catalog;
pub use patrol_catalog::domain;
pub use patrol_engine as engine;

pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod directory;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod secret;
pub mod service;
pub mod settings;
pub mod store;
pub mod tokens;
