//! Numbered migrations, each applied in one transaction. SQLite's and PostgreSQL's
//! lists are the same in intent, number by number; their DDL differs where the two
//! differ: 64-bit `BIGINT` columns, `BIGSERIAL` for generated ids, and an explicit
//! `rowid` (SQLite's implicit insertion order) where queries order by it.

/// SQLite's migrations.
pub(crate) const SQLITE: &[&str] = &[
    // 1: the daemon's first schema.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE wallets (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, address TEXT NOT NULL,
        chain_id INTEGER NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE policies (
        wallet_id TEXT NOT NULL REFERENCES wallets(id), version INTEGER NOT NULL,
        document TEXT NOT NULL, hash TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (wallet_id, version));
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, wallet_id TEXT NOT NULL REFERENCES wallets(id),
        scopes TEXT NOT NULL, created_at INTEGER NOT NULL, ttl_secs INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, absolute_expires_at INTEGER NOT NULL,
        renewals INTEGER NOT NULL, max_renewals INTEGER NOT NULL, revoked_at INTEGER);
    CREATE TABLE transactions (
        id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL REFERENCES wallets(id),
        idempotency_key TEXT, to_address TEXT NOT NULL, value_wei TEXT NOT NULL,
        nonce INTEGER, status TEXT NOT NULL, tx_hash TEXT, error TEXT, decision TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        UNIQUE (wallet_id, idempotency_key));
    CREATE TABLE spends (
        tx_id TEXT PRIMARY KEY REFERENCES transactions(id), wallet_id TEXT NOT NULL,
        at INTEGER NOT NULL, value_wei TEXT NOT NULL, state TEXT NOT NULL);
    CREATE INDEX spends_by_wallet ON spends (wallet_id, at);
    CREATE TABLE nonces (wallet_id TEXT PRIMARY KEY, next_nonce INTEGER NOT NULL);
    CREATE TABLE free_nonces (wallet_id TEXT NOT NULL, nonce INTEGER NOT NULL, PRIMARY KEY (wallet_id, nonce));
    CREATE TABLE audit (seq INTEGER PRIMARY KEY, line TEXT NOT NULL, hash TEXT NOT NULL);
    "#,
    // 2: typed actions. A transaction records what it does (kind, calldata, the asset
    // and amount it moves, its recipient); a spend records its asset and USD value.
    r#"
    ALTER TABLE transactions ADD COLUMN kind TEXT NOT NULL DEFAULT 'native_transfer';
    ALTER TABLE transactions ADD COLUMN data TEXT NOT NULL DEFAULT '';
    ALTER TABLE transactions ADD COLUMN asset TEXT NOT NULL DEFAULT 'native';
    ALTER TABLE transactions ADD COLUMN amount TEXT NOT NULL DEFAULT '0';
    ALTER TABLE transactions ADD COLUMN recipient TEXT;
    UPDATE transactions SET amount = value_wei, recipient = to_address;
    CREATE INDEX transactions_by_recipient ON transactions (wallet_id, recipient);
    ALTER TABLE spends ADD COLUMN asset TEXT NOT NULL DEFAULT 'native';
    ALTER TABLE spends ADD COLUMN amount TEXT NOT NULL DEFAULT '0';
    ALTER TABLE spends ADD COLUMN usd_micro TEXT;
    UPDATE spends SET amount = value_wei;
    CREATE TABLE tokens (
        chain_id INTEGER NOT NULL, address TEXT NOT NULL, decimals INTEGER NOT NULL, symbol TEXT NOT NULL,
        PRIMARY KEY (chain_id, address));
    "#,
    // 3: emergency freeze. A frozen wallet signs nothing until it is unfrozen.
    r#"
    CREATE TABLE wallet_freezes (
        wallet_id TEXT PRIMARY KEY REFERENCES wallets(id), frozen_at INTEGER NOT NULL,
        frozen_by TEXT NOT NULL, reason TEXT NOT NULL);
    "#,
    // 4: humans in the loop. Held transactions (approval and delay tiers) wait in
    // `transactions` with their deadline and the gas and fee bounds an owner signs;
    // owners per wallet; webhooks and their delivery log.
    r#"
    ALTER TABLE transactions ADD COLUMN chain_id INTEGER;
    ALTER TABLE transactions ADD COLUMN expires_at INTEGER;
    ALTER TABLE transactions ADD COLUMN execute_after INTEGER;
    ALTER TABLE transactions ADD COLUMN gas_limit INTEGER;
    ALTER TABLE transactions ADD COLUMN max_fee_per_gas TEXT;
    ALTER TABLE transactions ADD COLUMN approval TEXT;
    CREATE INDEX transactions_by_status ON transactions (status);
    CREATE TABLE owners (
        wallet_id TEXT NOT NULL REFERENCES wallets(id), owner_key TEXT NOT NULL, label TEXT NOT NULL,
        created_at INTEGER NOT NULL, PRIMARY KEY (wallet_id, owner_key));
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,
        created_at INTEGER NOT NULL, removed_at INTEGER);
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, webhook_id TEXT NOT NULL REFERENCES webhooks(id),
        event_id TEXT NOT NULL, event TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, status TEXT NOT NULL,
        last_status INTEGER, last_error TEXT, delivered_at INTEGER);
    CREATE INDEX deliveries_due ON webhook_deliveries (status, next_attempt_at);
    "#,
    // 5: operator API keys (only their SHA-256 is kept), and who requested each
    // transaction (`agent:<session>`, `operator`, …) so that revoking a session
    // cancels what it left held.
    r#"
    CREATE TABLE operator_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
        created_at INTEGER NOT NULL, created_by TEXT NOT NULL, expires_at INTEGER,
        last_used_at INTEGER, revoked_at INTEGER);
    ALTER TABLE transactions ADD COLUMN requested_by TEXT;
    CREATE INDEX transactions_by_requester ON transactions (requested_by, status);
    "#,
    // 6: every signed version of a transaction handed to the node (the original and
    // its replacements at the same nonce: speed-up, cancel), each stored before it is
    // broadcast (write-ahead: a restart re-broadcasts it instead of signing the nonce
    // again); the chain each wallet was first used on, by its genesis block hash.
    r#"
    CREATE TABLE broadcasts (
        hash TEXT PRIMARY KEY, tx_id TEXT NOT NULL REFERENCES transactions(id), kind TEXT NOT NULL,
        raw TEXT NOT NULL, gas INTEGER NOT NULL, max_fee_per_gas TEXT NOT NULL,
        max_priority_fee_per_gas TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE INDEX broadcasts_by_tx ON broadcasts (tx_id);
    CREATE TABLE wallet_chains (
        wallet_id TEXT NOT NULL REFERENCES wallets(id), chain_id INTEGER NOT NULL, genesis_hash TEXT NOT NULL,
        bound_at INTEGER NOT NULL, PRIMARY KEY (wallet_id, chain_id));
    CREATE INDEX transactions_by_wallet_nonce ON transactions (wallet_id, nonce);
    "#,
    // 7: agent keys registered by an owner (the registration text and the owner's
    // signature kept as evidence) and each agent's highest request nonces.
    r#"
    CREATE TABLE agents (
        id TEXT PRIMARY KEY, address TEXT NOT NULL, wallet_id TEXT NOT NULL REFERENCES wallets(id),
        name TEXT NOT NULL, scopes TEXT NOT NULL, valid_until INTEGER NOT NULL, registration TEXT NOT NULL,
        owner_signature TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER, last_used_at INTEGER);
    CREATE INDEX agents_by_address ON agents (address, revoked_at);
    CREATE INDEX agents_by_wallet ON agents (wallet_id, revoked_at);
    CREATE TABLE agent_nonces (agent_id TEXT NOT NULL, nonce INTEGER NOT NULL, PRIMARY KEY (agent_id, nonce));
    "#,
    // 8: the first answer to a send that failed, by its idempotency key, so that a
    // replay of it answers the same status and body (and never runs again).
    r#"
    CREATE TABLE idempotent_answers (
        wallet_id TEXT NOT NULL REFERENCES wallets(id), idempotency_key TEXT NOT NULL,
        request TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (wallet_id, idempotency_key));
    "#, // 9: an agent's own policy (a document, from its signed registration), which
    // narrows the wallet's for that agent.
    "ALTER TABLE agents ADD COLUMN policy TEXT;",
    // 10: several chains per daemon: nonces per (wallet, chain); every transaction and
    // spend knows its chain (older rows: their wallet's).
    r#"
    UPDATE transactions SET chain_id = (SELECT w.chain_id FROM wallets w WHERE w.id = transactions.wallet_id)
        WHERE chain_id IS NULL;
    ALTER TABLE spends ADD COLUMN chain_id INTEGER;
    UPDATE spends SET chain_id = (SELECT t.chain_id FROM transactions t WHERE t.id = spends.tx_id);
    CREATE TABLE chain_nonces (
        wallet_id TEXT NOT NULL, chain_id INTEGER NOT NULL, next_nonce INTEGER NOT NULL,
        PRIMARY KEY (wallet_id, chain_id));
    INSERT INTO chain_nonces (wallet_id, chain_id, next_nonce)
        SELECT n.wallet_id, w.chain_id, n.next_nonce FROM nonces n JOIN wallets w ON w.id = n.wallet_id;
    CREATE TABLE free_chain_nonces (
        wallet_id TEXT NOT NULL, chain_id INTEGER NOT NULL, nonce INTEGER NOT NULL,
        PRIMARY KEY (wallet_id, chain_id, nonce));
    INSERT INTO free_chain_nonces (wallet_id, chain_id, nonce)
        SELECT f.wallet_id, w.chain_id, f.nonce FROM free_nonces f JOIN wallets w ON w.id = f.wallet_id;
    DROP TABLE nonces;
    DROP TABLE free_nonces;
    "#,
    // 11: subaccounts: wallets whose key is a child of a main wallet's key.
    r#"
    CREATE TABLE subaccounts (
        wallet_id TEXT PRIMARY KEY REFERENCES wallets(id), parent_id TEXT NOT NULL REFERENCES wallets(id),
        child_index INTEGER NOT NULL, UNIQUE (parent_id, child_index));
    "#,
    // 12: owner quorums (M of N owners approve and unfreeze), the owner signatures an
    // unfreeze has collected so far (an approval's collect in transactions.approval),
    // and each passkey owner's highest signature counter.
    r#"
    CREATE TABLE owner_quorums (
        wallet_id TEXT PRIMARY KEY REFERENCES wallets(id), threshold INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    ALTER TABLE wallet_freezes ADD COLUMN unfreeze TEXT;
    CREATE TABLE passkey_counters (owner_key TEXT PRIMARY KEY, sign_count INTEGER NOT NULL);
    "#,
    // 13: a version per wallet, bumped by triggers on every change to its spends (or
    // to the transaction columns a spend is read with), so that a window of spends
    // kept in memory is used only while it is current (`spend_window`).
    r#"
    CREATE TABLE spend_versions (wallet_id TEXT PRIMARY KEY, version INTEGER NOT NULL);
    CREATE TRIGGER spends_inserted AFTER INSERT ON spends BEGIN
        INSERT OR IGNORE INTO spend_versions (wallet_id, version) VALUES (NEW.wallet_id, 0);
        UPDATE spend_versions SET version = version + 1 WHERE wallet_id = NEW.wallet_id;
    END;
    CREATE TRIGGER spends_deleted AFTER DELETE ON spends BEGIN
        INSERT OR IGNORE INTO spend_versions (wallet_id, version) VALUES (OLD.wallet_id, 0);
        UPDATE spend_versions SET version = version + 1 WHERE wallet_id = OLD.wallet_id;
    END;
    CREATE TRIGGER spends_changed AFTER UPDATE OF tx_id, wallet_id, at, asset, amount, usd_micro, chain_id
        ON spends BEGIN
        INSERT OR IGNORE INTO spend_versions (wallet_id, version) VALUES (OLD.wallet_id, 0);
        UPDATE spend_versions SET version = version + 1 WHERE wallet_id IN (OLD.wallet_id, NEW.wallet_id);
        INSERT OR IGNORE INTO spend_versions (wallet_id, version) VALUES (NEW.wallet_id, 1);
    END;
    CREATE TRIGGER spend_transactions_changed AFTER UPDATE OF id, wallet_id, requested_by, kind
        ON transactions BEGIN
        INSERT OR IGNORE INTO spend_versions (wallet_id, version) VALUES (OLD.wallet_id, 0);
        UPDATE spend_versions SET version = version + 1 WHERE wallet_id IN (OLD.wallet_id, NEW.wallet_id);
        INSERT OR IGNORE INTO spend_versions (wallet_id, version) VALUES (NEW.wallet_id, 1);
    END;
    "#,
    // 14: who created a session (the operator, or `operator:key:<id>`), so that revoking
    // an operator key also revokes the sessions made with it.
    "ALTER TABLE sessions ADD COLUMN created_by TEXT;",
];

/// PostgreSQL's migrations: number N does what SQLite's number N does.
pub(crate) const POSTGRES: &[&str] = &[
    // 1: the daemon's first schema.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE wallets (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, address TEXT NOT NULL,
        chain_id BIGINT NOT NULL, created_at BIGINT NOT NULL);
    CREATE TABLE policies (
        wallet_id TEXT NOT NULL REFERENCES wallets(id), version BIGINT NOT NULL,
        document TEXT NOT NULL, hash TEXT NOT NULL, created_at BIGINT NOT NULL,
        PRIMARY KEY (wallet_id, version));
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, wallet_id TEXT NOT NULL REFERENCES wallets(id),
        scopes TEXT NOT NULL, created_at BIGINT NOT NULL, ttl_secs BIGINT NOT NULL,
        expires_at BIGINT NOT NULL, absolute_expires_at BIGINT NOT NULL,
        renewals BIGINT NOT NULL, max_renewals BIGINT NOT NULL, revoked_at BIGINT);
    CREATE TABLE transactions (
        rowid BIGSERIAL UNIQUE,
        id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL REFERENCES wallets(id),
        idempotency_key TEXT, to_address TEXT NOT NULL, value_wei TEXT NOT NULL,
        nonce BIGINT, status TEXT NOT NULL, tx_hash TEXT, error TEXT, decision TEXT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
        UNIQUE (wallet_id, idempotency_key));
    CREATE TABLE spends (
        tx_id TEXT PRIMARY KEY REFERENCES transactions(id), wallet_id TEXT NOT NULL,
        at BIGINT NOT NULL, value_wei TEXT NOT NULL, state TEXT NOT NULL);
    CREATE INDEX spends_by_wallet ON spends (wallet_id, at);
    CREATE TABLE nonces (wallet_id TEXT PRIMARY KEY, next_nonce BIGINT NOT NULL);
    CREATE TABLE free_nonces (wallet_id TEXT NOT NULL, nonce BIGINT NOT NULL, PRIMARY KEY (wallet_id, nonce));
    CREATE TABLE audit (seq BIGINT PRIMARY KEY, line TEXT NOT NULL, hash TEXT NOT NULL);
    "#,
    // 2: typed actions.
    r#"
    ALTER TABLE transactions ADD COLUMN kind TEXT NOT NULL DEFAULT 'native_transfer';
    ALTER TABLE transactions ADD COLUMN data TEXT NOT NULL DEFAULT '';
    ALTER TABLE transactions ADD COLUMN asset TEXT NOT NULL DEFAULT 'native';
    ALTER TABLE transactions ADD COLUMN amount TEXT NOT NULL DEFAULT '0';
    ALTER TABLE transactions ADD COLUMN recipient TEXT;
    UPDATE transactions SET amount = value_wei, recipient = to_address;
    CREATE INDEX transactions_by_recipient ON transactions (wallet_id, recipient);
    ALTER TABLE spends ADD COLUMN asset TEXT NOT NULL DEFAULT 'native';
    ALTER TABLE spends ADD COLUMN amount TEXT NOT NULL DEFAULT '0';
    ALTER TABLE spends ADD COLUMN usd_micro TEXT;
    UPDATE spends SET amount = value_wei;
    CREATE TABLE tokens (
        chain_id BIGINT NOT NULL, address TEXT NOT NULL, decimals BIGINT NOT NULL, symbol TEXT NOT NULL,
        PRIMARY KEY (chain_id, address));
    "#,
    // 3: emergency freeze.
    r#"
    CREATE TABLE wallet_freezes (
        wallet_id TEXT PRIMARY KEY REFERENCES wallets(id), frozen_at BIGINT NOT NULL,
        frozen_by TEXT NOT NULL, reason TEXT NOT NULL);
    "#,
    // 4: humans in the loop: held transactions, owners, webhooks and their deliveries.
    r#"
    ALTER TABLE transactions ADD COLUMN chain_id BIGINT;
    ALTER TABLE transactions ADD COLUMN expires_at BIGINT;
    ALTER TABLE transactions ADD COLUMN execute_after BIGINT;
    ALTER TABLE transactions ADD COLUMN gas_limit BIGINT;
    ALTER TABLE transactions ADD COLUMN max_fee_per_gas TEXT;
    ALTER TABLE transactions ADD COLUMN approval TEXT;
    CREATE INDEX transactions_by_status ON transactions (status);
    CREATE TABLE owners (
        wallet_id TEXT NOT NULL REFERENCES wallets(id), owner_key TEXT NOT NULL, label TEXT NOT NULL,
        created_at BIGINT NOT NULL, PRIMARY KEY (wallet_id, owner_key));
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,
        created_at BIGINT NOT NULL, removed_at BIGINT);
    CREATE TABLE webhook_deliveries (
        id BIGSERIAL PRIMARY KEY, webhook_id TEXT NOT NULL REFERENCES webhooks(id),
        event_id TEXT NOT NULL, event TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL, status TEXT NOT NULL,
        last_status BIGINT, last_error TEXT, delivered_at BIGINT);
    CREATE INDEX deliveries_due ON webhook_deliveries (status, next_attempt_at);
    "#,
    // 5: operator API keys; who requested each transaction.
    r#"
    CREATE TABLE operator_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
        created_at BIGINT NOT NULL, created_by TEXT NOT NULL, expires_at BIGINT,
        last_used_at BIGINT, revoked_at BIGINT);
    ALTER TABLE transactions ADD COLUMN requested_by TEXT;
    CREATE INDEX transactions_by_requester ON transactions (requested_by, status);
    "#,
    // 6: signed versions stored before broadcast; the chain (genesis) of each wallet.
    r#"
    CREATE TABLE broadcasts (
        rowid BIGSERIAL UNIQUE,
        hash TEXT PRIMARY KEY, tx_id TEXT NOT NULL REFERENCES transactions(id), kind TEXT NOT NULL,
        raw TEXT NOT NULL, gas BIGINT NOT NULL, max_fee_per_gas TEXT NOT NULL,
        max_priority_fee_per_gas TEXT NOT NULL, created_at BIGINT NOT NULL);
    CREATE INDEX broadcasts_by_tx ON broadcasts (tx_id);
    CREATE TABLE wallet_chains (
        wallet_id TEXT NOT NULL REFERENCES wallets(id), chain_id BIGINT NOT NULL, genesis_hash TEXT NOT NULL,
        bound_at BIGINT NOT NULL, PRIMARY KEY (wallet_id, chain_id));
    CREATE INDEX transactions_by_wallet_nonce ON transactions (wallet_id, nonce);
    "#,
    // 7: agent keys and their nonces.
    r#"
    CREATE TABLE agents (
        rowid BIGSERIAL UNIQUE,
        id TEXT PRIMARY KEY, address TEXT NOT NULL, wallet_id TEXT NOT NULL REFERENCES wallets(id),
        name TEXT NOT NULL, scopes TEXT NOT NULL, valid_until BIGINT NOT NULL, registration TEXT NOT NULL,
        owner_signature TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT, last_used_at BIGINT);
    CREATE INDEX agents_by_address ON agents (address, revoked_at);
    CREATE INDEX agents_by_wallet ON agents (wallet_id, revoked_at);
    CREATE TABLE agent_nonces (agent_id TEXT NOT NULL, nonce BIGINT NOT NULL, PRIMARY KEY (agent_id, nonce));
    "#,
    // 8: the first answer to a failed send, by its idempotency key.
    r#"
    CREATE TABLE idempotent_answers (
        wallet_id TEXT NOT NULL REFERENCES wallets(id), idempotency_key TEXT NOT NULL,
        request TEXT NOT NULL, status BIGINT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
        PRIMARY KEY (wallet_id, idempotency_key));
    "#, // 9: an agent's own policy.
    "ALTER TABLE agents ADD COLUMN policy TEXT;",
    // 10: several chains per daemon: nonces per (wallet, chain); every transaction and
    // spend knows its chain (older rows: their wallet's).
    r#"
    UPDATE transactions SET chain_id = (SELECT w.chain_id FROM wallets w WHERE w.id = transactions.wallet_id)
        WHERE chain_id IS NULL;
    ALTER TABLE spends ADD COLUMN chain_id BIGINT;
    UPDATE spends SET chain_id = (SELECT t.chain_id FROM transactions t WHERE t.id = spends.tx_id);
    CREATE TABLE chain_nonces (
        wallet_id TEXT NOT NULL, chain_id BIGINT NOT NULL, next_nonce BIGINT NOT NULL,
        PRIMARY KEY (wallet_id, chain_id));
    INSERT INTO chain_nonces (wallet_id, chain_id, next_nonce)
        SELECT n.wallet_id, w.chain_id, n.next_nonce FROM nonces n JOIN wallets w ON w.id = n.wallet_id;
    CREATE TABLE free_chain_nonces (
        wallet_id TEXT NOT NULL, chain_id BIGINT NOT NULL, nonce BIGINT NOT NULL,
        PRIMARY KEY (wallet_id, chain_id, nonce));
    INSERT INTO free_chain_nonces (wallet_id, chain_id, nonce)
        SELECT f.wallet_id, w.chain_id, f.nonce FROM free_nonces f JOIN wallets w ON w.id = f.wallet_id;
    DROP TABLE nonces;
    DROP TABLE free_nonces;
    "#,
    // 11: subaccounts: wallets whose key is a child of a main wallet's key.
    r#"
    CREATE TABLE subaccounts (
        wallet_id TEXT PRIMARY KEY REFERENCES wallets(id), parent_id TEXT NOT NULL REFERENCES wallets(id),
        child_index BIGINT NOT NULL, UNIQUE (parent_id, child_index));
    "#,
    // 12: owner quorums; an unfreeze's collected signatures; passkey counters.
    r#"
    CREATE TABLE owner_quorums (
        wallet_id TEXT PRIMARY KEY REFERENCES wallets(id), threshold BIGINT NOT NULL, updated_at BIGINT NOT NULL);
    ALTER TABLE wallet_freezes ADD COLUMN unfreeze TEXT;
    CREATE TABLE passkey_counters (owner_key TEXT PRIMARY KEY, sign_count BIGINT NOT NULL);
    "#,
    // 13: a version per wallet, bumped by triggers on every change to its spends.
    r#"
    CREATE TABLE spend_versions (wallet_id TEXT PRIMARY KEY, version BIGINT NOT NULL);
    CREATE FUNCTION bump_spend_version(wallet TEXT) RETURNS void AS $$
    BEGIN
        INSERT INTO spend_versions (wallet_id, version) VALUES (wallet, 1)
            ON CONFLICT (wallet_id) DO UPDATE SET version = spend_versions.version + 1;
    END $$ LANGUAGE plpgsql;
    CREATE FUNCTION spends_versioned() RETURNS trigger AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN PERFORM bump_spend_version(OLD.wallet_id); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM bump_spend_version(NEW.wallet_id); END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER spends_versioned AFTER INSERT OR DELETE OR UPDATE OF tx_id, wallet_id, at, asset, amount,
        usd_micro, chain_id ON spends FOR EACH ROW EXECUTE FUNCTION spends_versioned();
    CREATE TRIGGER spend_transactions_versioned AFTER UPDATE OF id, wallet_id, requested_by, kind
        ON transactions FOR EACH ROW EXECUTE FUNCTION spends_versioned();
    "#,
    // 14: who created a session.
    "ALTER TABLE sessions ADD COLUMN created_by TEXT;",
];

#[cfg(test)]
mod tests {
    #[test]
    fn both_lists_have_the_same_numbers() {
        assert_eq!(super::SQLITE.len(), super::POSTGRES.len());
    }
}
