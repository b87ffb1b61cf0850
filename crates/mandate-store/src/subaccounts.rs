//! Subaccounts: wallets whose key is a non-hardened child of a main wallet's key
//! (no DKG of their own). Each is a wallet row of its own (own address, policy,
//! spends, sessions, agents) plus its parent and child index here.

use crate::audit::AuditEntry;
use crate::db::{params, OptionalExtension, TransactionBehavior};
use crate::store::{i, u, Result, Store, StoreError, WalletRecord};

/// A subaccount: its wallet row, its parent and the child index of its key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubaccountRecord {
    /// The subaccount's own wallet.
    #[serde(flatten)]
    pub wallet: WalletRecord,
    /// The main wallet whose key it derives from.
    pub parent_id: String,
    /// The child index of its key (BIP-32, non-hardened).
    pub index: u32,
}

impl Store {
    /// The next free child index of `parent` (0 for the first subaccount).
    pub fn next_child_index(&self, parent: &str) -> Result<u32> {
        let highest: Option<i64> = self
            .conn()?
            .query_row("SELECT MAX(child_index) FROM subaccounts WHERE parent_id = ?1", [parent], |r| r.get(0))
            .optional()?
            .flatten();
        match highest {
            None => Ok(0),
            Some(n) => u32::try_from(n + 1).map_err(|_| StoreError::Corrupt("child index out of range".into())),
        }
    }

    /// Inserts `sub` (its wallet row and its parent link) and audits it, in one
    /// transaction. The name must be free, the index unused under the parent, and the
    /// parent a main wallet (a subaccount has no subaccounts).
    pub fn insert_subaccount(&self, sub: &SubaccountRecord, entry: AuditEntry) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken: bool =
            tx.query_row("SELECT COUNT(*) > 0 FROM wallets WHERE name = ?1", [&sub.wallet.name], |r| r.get(0))?;
        if taken {
            return Err(StoreError::Conflict(format!("a wallet named {:?} exists", sub.wallet.name)));
        }
        let nested: bool =
            tx.query_row("SELECT COUNT(*) > 0 FROM subaccounts WHERE wallet_id = ?1", [&sub.parent_id], |r| r.get(0))?;
        if nested {
            return Err(StoreError::Conflict(format!(
                "{} is a subaccount: only a main wallet has subaccounts",
                sub.parent_id
            )));
        }
        let wallet = &sub.wallet;
        tx.execute(
            "INSERT INTO wallets (id, name, address, chain_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![wallet.id, wallet.name, wallet.address, i(wallet.chain_id), i(wallet.created_at)],
        )?;
        tx.execute(
            "INSERT INTO subaccounts (wallet_id, parent_id, child_index) VALUES (?1, ?2, ?3)",
            params![wallet.id, sub.parent_id, i(u64::from(sub.index))],
        )?;
        Self::append_audit(&tx, self.audit_path(), entry, wallet.created_at)?;
        tx.commit()?;
        Ok(())
    }

    /// The parent and child index of `wallet`, when it is a subaccount.
    pub fn subaccount_of(&self, wallet: &str) -> Result<Option<(String, u32)>> {
        let row: Option<(String, i64)> = self
            .conn()?
            .query_row("SELECT parent_id, child_index FROM subaccounts WHERE wallet_id = ?1", [wallet], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(parent, index)| {
            u32::try_from(u(index)).map(|index| (parent, index)).map_err(|_| StoreError::Corrupt("child index".into()))
        })
        .transpose()
    }

    /// The subaccounts of `parent`, by child index.
    pub fn subaccounts(&self, parent: &str) -> Result<Vec<SubaccountRecord>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT w.id, w.name, w.address, w.chain_id, w.created_at, s.child_index FROM subaccounts s
             JOIN wallets w ON w.id = s.wallet_id WHERE s.parent_id = ?1 ORDER BY s.child_index",
        )?;
        let rows = stmt.query_map(params![parent], |r| {
            Ok((
                WalletRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    address: r.get(2)?,
                    chain_id: u(r.get(3)?),
                    created_at: u(r.get(4)?),
                },
                u(r.get(5)?),
            ))
        })?;
        rows.map(|row| {
            let (wallet, index) = row?;
            let index = u32::try_from(index).map_err(|_| StoreError::Corrupt("child index".into()))?;
            Ok(SubaccountRecord { wallet, parent_id: parent.to_string(), index })
        })
        .collect()
    }
}
