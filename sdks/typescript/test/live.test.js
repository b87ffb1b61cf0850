// The SDK against a real daemon, cosigner and anvil (started here; see harness.js).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { AgentKey, MandateClient, MandateError, mandateTools } from '../dist/index.js';
import { aiTools } from '../dist/ai.js';
import { startStack, waitFinal } from './harness.js';

const ETH = 10n ** 18n;
const POLICY = {
  version: 1,
  rules: [
    { id: 'per-tx', type: 'max_per_tx', amount: '1' },
    { id: 'daily', type: 'rolling_cap', window_secs: 86400, amount: '10' },
  ],
};

function randomAddress() {
  return AgentKey.generate().address;
}

/** A fetch that records each request's headers and can rewrite them. */
function recordingFetch(rewrite = (headers) => headers) {
  const seen = [];
  const wrapped = async (url, init) => {
    const headers = rewrite({ ...init.headers });
    seen.push({ url: String(url), method: init.method, headers });
    return fetch(url, { ...init, headers });
  };
  return { fetch: wrapped, seen };
}

async function expectError(promise, code) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof MandateError, `not a MandateError: ${error}`);
    assert.equal(error.code, code, `${error.code}: ${error.message}`);
    return error;
  }
  assert.fail(`expected ${code}, got a success`);
}

describe('the TypeScript SDK against a real daemon', () => {
  let stack;
  let admin;
  let wallet;

  before(async () => {
    stack = await startStack();
    admin = await MandateClient.login(stack.masterPassword, { baseUrl: stack.url });
    wallet = await stack.createWallet('ts-sdk');
    await admin.setPolicy(wallet.id, POLICY);
    const funded = await admin.devFund(wallet.id, { amount: '5' });
    assert.equal(funded.balance_wei, (5n * ETH).toString());
  });

  after(async () => {
    await stack?.stop();
  });

  test('public endpoints, login and the operator view', async () => {
    const anonymous = new MandateClient({ baseUrl: stack.url });
    assert.equal((await anonymous.health()).status, 'ok');
    assert.equal((await anonymous.ready()).ready, true);
    const wrong = await expectError(MandateClient.login('not the password', { baseUrl: stack.url }), 'INVALID_CREDENTIALS');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.category, 'authentication');
    await expectError(anonymous.listWallets(), 'UNAUTHENTICATED');
    const listed = await admin.listWallets();
    assert.ok(listed.wallets.some((w) => w.id === wallet.id && w.address === wallet.address));
    const shown = await admin.getWallet(wallet.id);
    assert.equal(shown.chain_id, 31337);
    assert.equal((await admin.getPolicy(wallet.id)).document.rules.length, 2);
    assert.match(await admin.metrics(), /mandate_http_requests_total/);
    const audit = await admin.auditVerify();
    assert.equal(audit.ok, true);
  });

  test('a session sends a transfer that confirms on anvil; an idempotent retry returns the same transaction', async () => {
    const created = await admin.createSession({ wallet_id: wallet.id, ttl_secs: 3600, scopes: ['broadcast'] });
    assert.match(created.token, /^mnd_sess_/);
    const recorder = recordingFetch();
    const agent = new MandateClient({ baseUrl: stack.url, token: created.token, fetch: recorder.fetch });
    assert.ok(!inspect(agent).includes(created.token) && !JSON.stringify(agent).includes(created.token), 'the token is never printed');
    const me = await agent.currentSession();
    assert.equal(me.band, 'broadcast');
    assert.equal(me.session.wallet_id, wallet.id);

    const to = randomAddress();
    const key = `ts-sdk-${Date.now()}`;
    const tx = await agent.sendTransfer(wallet.id, { to, amount: '0.5' }, { idempotencyKey: key });
    assert.equal(tx.to, to);
    assert.equal(tx.value_wei, (ETH / 2n).toString());
    const final = await waitFinal(agent, tx.id);
    assert.equal(final.status, 'confirmed', JSON.stringify(final));
    assert.equal(await stack.chainBalance(to), ETH / 2n, 'the recipient got exactly 0.5 ETH on chain');

    const again = await agent.sendTransfer(wallet.id, { to, amount: '0.5' }, { idempotencyKey: key });
    assert.equal(again.id, tx.id, 'the same key answers the same transaction');
    assert.equal(await stack.chainBalance(to), ETH / 2n, 'and nothing was sent twice');
    const reused = await expectError(agent.sendTransfer(wallet.id, { to, amount: '0.4' }, { idempotencyKey: key }), 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(reused.status, 409);
    assert.equal(reused.idempotencyKey, key);

    // Without a key the SDK sends a fresh one per call.
    const before = recorder.seen.length;
    await agent.sendTransfer(wallet.id, { to, amount: '0.01' });
    await agent.sendTransfer(wallet.id, { to, amount: '0.01' });
    const keys = recorder.seen.slice(before).map((r) => r.headers['Idempotency-Key']);
    assert.equal(keys.length, 2);
    assert.ok(keys.every((k) => /^sdk-[0-9a-f-]{36}$/.test(k)), `keys: ${keys}`);
    assert.notEqual(keys[0], keys[1]);

    const transactions = await agent.listTransactions(wallet.id, { limit: 10 });
    assert.ok(transactions.transactions.some((t) => t.id === tx.id));
  });

  test('a denial is a MandateError with POLICY_DENIED and the decision', async () => {
    const created = await admin.createSession({ wallet_id: wallet.id, ttl_secs: 600, scopes: ['broadcast'] });
    const agent = admin.withToken(created.token);
    const denied = await expectError(agent.sendTransfer(wallet.id, { to: randomAddress(), amount: '1.5' }), 'POLICY_DENIED');
    assert.equal(denied.status, 403);
    assert.equal(denied.category, 'policy');
    assert.equal(denied.retryable, false);
    assert.equal(denied.retryAfter, null);
    assert.equal(denied.details.rule_id, 'per-tx');
    assert.match(denied.idempotencyKey, /^sdk-/);
    const evaluation = await agent.evaluateAction(wallet.id, { type: 'transfer', to: randomAddress(), amount: '1.5' });
    assert.equal(evaluation.decision.verdict, 'deny');

    // A read-only session may not send, and a revoked one may do nothing.
    const reader = admin.withToken((await admin.createSession({ wallet_id: wallet.id, ttl_secs: 600 })).token);
    await expectError(reader.sendTransfer(wallet.id, { to: randomAddress(), amount: '0.1' }), 'SCOPE_MISSING');
    const revoked = await admin.revokeSession(created.session.id);
    assert.equal(revoked.revoked, true);
    await expectError(agent.getWallet(wallet.id), 'SESSION_REVOKED');
  });

  test('an agent key registered with the CLI signs requests through the SDK; a tampered signature is refused', async () => {
    const ownerFile = join(stack.dir, 'alice.owner');
    const keyFile = join(stack.dir, 'bot.agent');
    const owner = await stack.cli('owner', 'keygen', '--out', ownerFile);
    await stack.cli('owner', 'add', '--wallet', wallet.id, '--ed25519-pubkey', owner.owner_key.replace(/^ed25519:/, ''));
    const generated = await stack.cli('agent', 'keygen', '--out', keyFile);
    const registered = await stack.cli(
      'agent', 'register', '--wallet', wallet.id, '--key', keyFile, '--name', 'trader',
      '--scopes', 'read,broadcast', '--valid-for-secs', '3600', '--owner-key', ownerFile,
    );
    const key = AgentKey.fromFileText(await readFile(keyFile, 'utf8'));
    assert.equal(key.address, generated.address);
    assert.equal(registered.agent.address, key.address);
    const secret = JSON.parse(await readFile(keyFile, 'utf8')).secret;
    assert.ok(!inspect(key).includes(secret) && !JSON.stringify(key).includes(secret), 'the secret is never printed');

    const recorder = recordingFetch();
    const bot = new MandateClient({ baseUrl: stack.url, agent: { key, wallet: wallet.id }, fetch: recorder.fetch });
    const balance = await bot.getBalance(wallet.id);
    assert.equal(balance.wallet_id, wallet.id);
    const to = randomAddress();
    const tx = await bot.sendTransfer(wallet.id, { to, amount: '0.2' });
    assert.equal((await waitFinal(bot, tx.id)).status, 'confirmed');
    assert.equal(await stack.chainBalance(to), ETH / 5n);
    const nonces = recorder.seen.map((r) => Number(r.headers['Mandate-Agent-Nonce']));
    assert.ok(nonces.every((n, i) => i === 0 || n > nonces[i - 1]), `nonces strictly increase: ${nonces}`);
    assert.ok(recorder.seen.every((r) => !('authorization' in r.headers)), 'no token anywhere');
    const agents = await admin.listAgents(wallet.id);
    assert.ok(agents.agents.some((a) => a.address === key.address && a.last_used_at !== null));

    // The same request with one signature byte changed: refused before any handler runs.
    const tampered = new MandateClient({
      baseUrl: stack.url,
      agent: { key, wallet: wallet.id },
      fetch: recordingFetch((h) => {
        const sig = h['Mandate-Agent-Signature'];
        const flipped = (parseInt(sig.slice(10, 12), 16) ^ 0x01).toString(16).padStart(2, '0');
        return { ...h, 'Mandate-Agent-Signature': sig.slice(0, 10) + flipped + sig.slice(12) };
      }).fetch,
    });
    const refused = await expectError(tampered.sendTransfer(wallet.id, { to, amount: '0.2' }), 'AGENT_SIGNATURE_INVALID');
    assert.equal(refused.status, 401);
    // A captured request sent again as it was: the nonce was used.
    const last = recorder.seen.at(-1);
    const replay = await fetch(last.url, { method: last.method, headers: last.headers });
    assert.equal((await replay.json()).error.code, 'AGENT_NONCE_REPLAYED');
    // Signed for another wallet than the path's is not this agent's request.
    const other = new MandateClient({ baseUrl: stack.url, agent: { key: AgentKey.generate(), wallet: wallet.id } });
    await expectError(other.getBalance(wallet.id), 'AGENT_UNKNOWN');
    assert.equal(await stack.chainBalance(to), ETH / 5n, 'nothing more was sent');
  });

  test("agent signatures equal anvil's eth_signTypedData_v4 on fresh inputs", async () => {
    // anvil's dev account 0 (a published secret): anvil signs the same EIP-712 message with its own code.
    const key = AgentKey.fromSecretHex('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
    for (let i = 0; i < 5; i++) {
      const body = randomBytes(40 + i);
      const path = `/v1/wallets/wal_${randomBytes(6).toString('hex')}/transactions?limit=${i}`;
      const wallet = `wal_${randomBytes(12).toString('hex')}`;
      const nonce = Date.now() + i;
      const typed = {
        types: {
          EIP712Domain: [{ name: 'name', type: 'string' }, { name: 'version', type: 'string' }],
          AgentRequest: [
            { name: 'method', type: 'string' }, { name: 'path', type: 'string' }, { name: 'bodyHash', type: 'bytes32' },
            { name: 'wallet', type: 'string' }, { name: 'nonce', type: 'uint64' },
          ],
        },
        primaryType: 'AgentRequest',
        domain: { name: 'Mandate', version: '1' },
        message: { method: 'PUT', path, bodyHash: `0x${createHash('sha256').update(body).digest('hex')}`, wallet, nonce },
      };
      const theirs = await stack.rpc('eth_signTypedData_v4', [key.address, typed]);
      assert.equal(key.signRequest('PUT', path, new Uint8Array(body), wallet, nonce), theirs);
    }
  });

  test('the tools offer the bands of MCP and run through the daemon; the AI SDK adapter wraps them', async () => {
    const created = await admin.createSession({ wallet_id: wallet.id, ttl_secs: 600, scopes: ['broadcast'] });
    const session = admin.withToken(created.token);
    const prepare = mandateTools(session, { wallet: wallet.id, band: 'prepare' });
    assert.deepEqual(Object.keys(prepare).sort(), [
      'evaluate_action', 'get_balance', 'get_policy_summary', 'get_transaction', 'get_wallet', 'list_transactions',
      'prepare_contract_call', 'prepare_transfer',
    ]);
    const prepared = await prepare.prepare_transfer.execute({ to: randomAddress(), amount: '0.3' });
    assert.equal(prepared.decision.verdict, 'allow');
    assert.equal(prepared.simulation.success, true, JSON.stringify(prepared.simulation));
    const bad = await prepare.get_balance.execute({ wallet: 'wal_other' });
    assert.equal(bad.error.code, 'INVALID_INPUT');
    assert.equal(bad.error.details.field, 'wallet');

    const tools = aiTools(session, { wallet: wallet.id, band: 'broadcast' });
    assert.ok(!('freeze_wallet' in tools), 'freeze only when asked for');
    assert.ok('send_transfer' in tools && 'sign_message' in tools);
    const to = randomAddress();
    const unconfirmed = await tools.send_transfer.execute({ to, amount: '0.3' }, { toolCallId: 'c1', messages: [] });
    assert.equal(unconfirmed.error.code, 'CONFIRMATION_REQUIRED');
    const sent = await tools.send_transfer.execute({ to, amount: '0.3', confirm: true }, { toolCallId: 'c2', messages: [] });
    assert.equal((await waitFinal(session, sent.id)).status, 'confirmed');
    assert.equal(await stack.chainBalance(to), (3n * ETH) / 10n);
    const denied = await tools.send_transfer.execute({ to, amount: '2', confirm: true }, { toolCallId: 'c3', messages: [] });
    assert.equal(denied.error.code, 'POLICY_DENIED');
    const validation = await tools.send_transfer.inputSchema.validate({ to, amount: 'lots', confirm: true });
    assert.equal(validation.success, false);
  });

  test('examples/typescript/agent-loop.mjs runs its scripted model through the tools against the daemon', async () => {
    const created = await admin.createSession({ wallet_id: wallet.id, ttl_secs: 600, scopes: ['broadcast'] });
    const to = randomAddress();
    const script = fileURLToPath(new URL('../../../examples/typescript/agent-loop.mjs', import.meta.url));
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, [script, to], {
        env: { ...process.env, MANDATE_URL: stack.url, MANDATE_SESSION_TOKEN: created.token, MANDATE_WALLET: wallet.id },
        timeout: 120_000,
      }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)));
    });
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 6, out);
    assert.match(lines[3], /^\[3\] send_transfer/);
    assert.match(lines[4], /"status":"confirmed"/);
    assert.match(lines[5], /error POLICY_DENIED/);
    assert.ok(!out.includes(created.token), 'the token is not printed');
    assert.equal(await stack.chainBalance(to), ETH / 10n);
  });
});
