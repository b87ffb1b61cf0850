//! Which chain (by its genesis block) each wallet is bound to, read without binding.

use crate::db::{params, OptionalExtension};

use crate::store::{i, Result, Store};

impl Store {
    /// The genesis block hash `wallet` is bound to on `chain_id`, if it was used there.
    pub fn bound_genesis(&self, wallet: &str, chain_id: u64) -> Result<Option<String>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT genesis_hash FROM wallet_chains WHERE wallet_id = ?1 AND chain_id = ?2",
            params![wallet, i(chain_id)],
            |r| r.get(0),
        )
        .optional()
    }
}
