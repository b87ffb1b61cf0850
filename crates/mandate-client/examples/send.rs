//! Sends ether from a wallet with an agent session, through `mandate-client`.
//!
//! ```sh
//! MANDATE_URL=http://127.0.0.1:3100 MANDATE_SESSION_TOKEN_FILE=agent.token \
//!   cargo run -p mandate-client --example send -- wal_… 0x4242…4242 0.01
//! ```
//!
//! Arguments: wallet id, recipient, amount in ether (or `MANDATE_WALLET`,
//! `MANDATE_TO`, `MANDATE_AMOUNT`). The token file must be readable by its owner only.
//! A refusal prints the daemon's stable code and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;

use mandate_client::{Client, Credential, Error, Secret, SendResult, Transfer};

fn arg(args: &[String], index: usize, var: &str) -> Result<String, String> {
    args.get(index)
        .cloned()
        .or_else(|| std::env::var(var).ok())
        .ok_or_else(|| format!("usage: send WALLET_ID RECIPIENT AMOUNT_ETH (or set {var})"))
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wallet = arg(&args, 0, "MANDATE_WALLET")?;
    let to = arg(&args, 1, "MANDATE_TO")?;
    let amount = arg(&args, 2, "MANDATE_AMOUNT")?;
    let url = std::env::var("MANDATE_URL").unwrap_or_else(|_| "http://127.0.0.1:3100".into());
    let token_file = std::env::var("MANDATE_SESSION_TOKEN_FILE").map_err(|_| "set MANDATE_SESSION_TOKEN_FILE")?;
    let token = Secret::from_file(&PathBuf::from(token_file)).map_err(|e| e.to_string())?;

    let client = Client::new(&url).map_err(|e| e.to_string())?.with_credential(Credential::Session(token));
    match client.send_transfer(&wallet, &Transfer::native(to, amount)).await {
        Ok(sent) => {
            match &sent.result {
                SendResult::Sent(tx) => {
                    println!("{} {:?} {}", tx.id, tx.status, tx.tx_hash.as_deref().unwrap_or("-"));
                }
                SendResult::Held(held) => {
                    println!("{} held ({:?}): {}", held.id, held.status, held.reason.as_deref().unwrap_or(""))
                }
            }
            println!("idempotency key: {} (send it again to retry without paying twice)", sent.idempotency_key);
            Ok(())
        }
        Err(Error::Api(api)) => Err(format!("{}: {} ({})", api.code, api.message, api.details)),
        Err(other) => Err(format!("{}: {other}", other.code())),
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
