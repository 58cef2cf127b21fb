//! API tests: each starts the real application on a random port and talks HTTP to it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a broken assumption should fail the test loudly"
)]

mod catalog;
mod health;

use std::sync::Arc;

use patrol::config::Settings;
use patrol::http::Application;

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }
}

/// Starts patrol with the embedded catalog on 127.0.0.1:0.
pub async fn spawn_app() -> TestApp {
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    };
    let catalog = Arc::new(patrol::catalog::load_embedded().unwrap());
    let app = Application::build(&settings, catalog).await.unwrap();
    let address = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
    }
}
