//! `mandate webhook add|list|remove|deliveries` (operator; docs/WEBHOOKS.md).

use clap::Subcommand;
use serde_json::json;

use crate::api::{path_id, Daemon};
use crate::output::{CliResult, Report};

#[derive(Subcommand)]
pub(crate) enum WebhookCommand {
    /// Add a webhook; prints its HMAC secret once.
    Add {
        /// Where to POST events (https://, or http:// only to localhost).
        #[arg(long)]
        url: String,
        /// Comma-separated event names, e.g. approval.requested,wallet.frozen.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
    },
    /// List webhooks (without secrets).
    List,
    /// Remove a webhook; its pending deliveries stop.
    Remove {
        /// The webhook id (`whk_…`).
        id: String,
    },
    /// A webhook's delivery log, newest first.
    Deliveries {
        /// The webhook id (`whk_…`).
        id: String,
    },
}

pub(crate) fn webhook(daemon_url: &str, command: WebhookCommand) -> CliResult<Report> {
    let daemon = Daemon::login(daemon_url)?;
    Ok(match command {
        WebhookCommand::Add { url, events } => {
            daemon.post(&["v1", "webhooks"], Some(&json!({"url": url, "events": events})))?.into()
        }
        WebhookCommand::List => daemon.get(&["v1", "webhooks"], &[])?.into(),
        WebhookCommand::Remove { id } => daemon
            .send_raw(mandate_client::Method::DELETE, &["v1", "webhooks", path_id("webhook", &id)?], Vec::new())?
            .into(),
        WebhookCommand::Deliveries { id } => {
            daemon.get(&["v1", "webhooks", path_id("webhook", &id)?, "deliveries"], &[])?.into()
        }
    })
}
