// What needs no daemon: each method sends its own route, sends carry and keep an
// idempotency key, errors parse, and agent signatures are well formed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { AgentKey, MandateClient, MandateError, ROUTES, requestDigest, toHex } from '../dist/index.js';

function fakeFetch(answers) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url: new URL(url), init });
    const next = answers.length > 1 ? answers.shift() : answers[0];
    if (next instanceof Error) throw next;
    return new Response(next.body ?? '{}', { status: next.status ?? 200, headers: next.headers ?? {} });
  };
  return { fn, calls };
}

test('each client method sends its own route', async () => {
  for (const [name, [method, template]] of Object.entries(ROUTES)) {
    const fake = fakeFetch([{ body: name === 'metrics' ? 'm 1\n' : '{}' }]);
    const client = new MandateClient({ baseUrl: 'http://127.0.0.1:1', token: 'mnd_sess_x', fetch: fake.fn });
    const hasParam = template.includes('{');
    await client[name](...(hasParam ? ['p_1', {}, {}] : [{}, {}]));
    assert.equal(fake.calls.length, 1, name);
    assert.equal(fake.calls[0].init.method, method, name);
    assert.equal(fake.calls[0].url.pathname, template.replace(/\{\w+\}/, 'p_1'), name);
  }
});

test('path parameters cannot leave their segment', async () => {
  const client = new MandateClient({ baseUrl: 'http://127.0.0.1:1', fetch: fakeFetch([{}]).fn });
  for (const bad of ['..', '.', '']) {
    await assert.rejects(client.getTransaction(bad), (e) => e instanceof MandateError && e.code === 'INVALID_INPUT');
  }
  const fake = fakeFetch([{}]);
  await new MandateClient({ baseUrl: 'http://127.0.0.1:1', fetch: fake.fn }).getTransaction('a/../../admin?x=1');
  assert.equal(fake.calls[0].url.pathname, '/v1/transactions/a%2F..%2F..%2Fadmin%3Fx%3D1');
});

test('a send retries a lost answer with the same idempotency key, and not a denial', async () => {
  const tx = { id: 'tx_1' };
  const fake = fakeFetch([new TypeError('fetch failed'), { body: JSON.stringify(tx) }]);
  const client = new MandateClient({ baseUrl: 'http://127.0.0.1:1', token: 't', fetch: fake.fn });
  assert.deepEqual(await client.sendTransfer('wal_1', { to: '0x0', amount: '1' }), tx);
  assert.equal(fake.calls.length, 2);
  const [first, second] = fake.calls.map((c) => c.init.headers['Idempotency-Key']);
  assert.match(first, /^sdk-/);
  assert.equal(first, second);

  const envelope = { error: { category: 'policy', code: 'POLICY_DENIED', message: 'no', required_action: 'ask', retryable: false, retry_after: null, details: { rule_id: 'r' } } };
  const denied = fakeFetch([{ status: 403, body: JSON.stringify(envelope) }]);
  const err = await new MandateClient({ baseUrl: 'http://127.0.0.1:1', fetch: denied.fn })
    .sendTransfer('wal_1', { to: '0x0', amount: '1' }, { idempotencyKey: 'k-1' })
    .catch((e) => e);
  assert.equal(denied.calls.length, 1);
  assert.ok(err instanceof MandateError);
  assert.deepEqual([err.code, err.category, err.status, err.retryable, err.idempotencyKey, err.details.rule_id], ['POLICY_DENIED', 'policy', 403, false, 'k-1', 'r']);
  assert.deepEqual(err.toEnvelope(), envelope);

  const limited = fakeFetch([{ status: 429, body: JSON.stringify({ error: { ...envelope.error, category: 'unavailable', code: 'RATE_LIMITED', retryable: true, retry_after: 7 } }) }]);
  const rate = await new MandateClient({ baseUrl: 'http://127.0.0.1:1', fetch: limited.fn }).login('pw').catch((e) => e);
  assert.equal(rate.retryAfter, 7);
  assert.equal(limited.calls[0].init.headers.authorization, `Basic ${Buffer.from('operator:pw').toString('base64')}`);

  await assert.rejects(client.sendTransfer('wal_1', { to: '0x0' }, { idempotencyKey: 'has space' }), (e) => e.code === 'INVALID_INPUT');
  const html = fakeFetch([{ status: 502, body: '<html>bad gateway</html>' }]);
  const proxy = await new MandateClient({ baseUrl: 'http://127.0.0.1:1', fetch: html.fn }).health().catch((e) => e);
  assert.deepEqual([proxy.code, proxy.status], ['INTERNAL', 502]);
});

test('the daemon URL must be https unless loopback, and carries no credentials', () => {
  assert.throws(() => new MandateClient({ baseUrl: 'http://example.com' }), (e) => e.code === 'INSECURE_URL');
  assert.throws(() => new MandateClient({ baseUrl: 'https://u:p@example.com' }), (e) => e.code === 'INSECURE_URL');
  assert.throws(() => new MandateClient({ baseUrl: 'https://example.com/prefix' }), (e) => e.code === 'INVALID_INPUT');
  assert.equal(new MandateClient({ baseUrl: 'https://example.com/' }).baseUrl, 'https://example.com');
});

test('an agent key derives the published address of a known secret', () => {
  // anvil's (and hardhat's) first dev account: a published secret and address.
  const key = AgentKey.fromSecretHex('ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
  assert.equal(key.address, '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
  assert.equal(toHex(keccak_256(new Uint8Array())), 'c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
  assert.throws(() => AgentKey.fromFileText('{"kind":"secp256k1","secret":"00"}'), (e) => e.code === 'INVALID_INPUT');
  assert.equal(AgentKey.fromFileText(key.toFileText()).address, key.address);
});

// A fixed vector from an independent implementation: `signature` is what anvil 1.7.1
// answered to `eth_signTypedData_v4` for its dev account 0 (the secret below) with the
// EIP-712 domain {name: Mandate, version: 1} and the AgentRequest message of these fields
// (bodyHash = SHA-256 of `body`). ECDSA here is deterministic (RFC 6979), so equal
// signatures mean equal digests. The Python SDK asserts the same vector
// (sdks/python/tests/test_offline.py); the live tests compare with anvil again on
// fresh inputs and have the daemon accept both SDKs' signatures.
const VECTOR = {
  secret: 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  method: 'POST',
  path: '/v1/wallets/wal_a/transactions?x=1',
  body: '{"to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","amount":"0.5"}',
  wallet: 'wal_a',
  nonce: 1800000000000,
  digest: '68ef31ab429e1ea029bcef8db03ad6421afd22b1b75289595c26959f3c265ba9',
  signature:
    '0xd47087f727523e5d02c55ad36ed9dce244af7419aaa8c44982772c94884a79596fd43baa5f1b2e894bf143bdbc219bc169a08f1d544f8071acee2161238c94ed1c',
};

test('request signatures: low s, v 27|28, recover the agent, bind every field', () => {
  const key = AgentKey.generate();
  const body = new TextEncoder().encode(VECTOR.body);
  const halfN = secp256k1.Point.CURVE().n / 2n;
  for (let nonce = 1; nonce <= 30; nonce++) {
    const sig = key.signRequest('POST', VECTOR.path, body, 'wal_a', nonce);
    assert.match(sig, /^0x[0-9a-f]{130}$/);
    const bytes = Buffer.from(sig.slice(2), 'hex');
    assert.ok(BigInt(`0x${bytes.subarray(32, 64).toString('hex')}`) <= halfN, 'low s');
    assert.ok(bytes[64] === 27 || bytes[64] === 28);
    const recovered = secp256k1.Signature.fromBytes(bytes.subarray(0, 64), 'compact').addRecoveryBit(bytes[64] - 27).recoverPublicKey(requestDigest('POST', VECTOR.path, body, 'wal_a', nonce));
    const address = toHex(keccak_256(recovered.toBytes(false).subarray(1)).subarray(12));
    assert.equal(`0x${address}`, key.address.toLowerCase());
  }
  const base = toHex(requestDigest('POST', '/p', body, 'w', 7));
  for (const other of [
    requestDigest('GET', '/p', body, 'w', 7),
    requestDigest('POST', '/p?', body, 'w', 7),
    requestDigest('POST', '/p', new Uint8Array(), 'w', 7),
    requestDigest('POST', '/p', body, 'w2', 7),
    requestDigest('POST', '/p', body, 'w', 8),
  ]) assert.notEqual(toHex(other), base);
  let last = 0;
  for (let i = 0; i < 2000; i++) {
    const nonce = key.nextNonce();
    assert.ok(nonce > last);
    last = nonce;
  }
  assert.ok(last >= Date.now() - 1000);
});

test('the vector anvil signed', () => {
  const key = AgentKey.fromSecretHex(VECTOR.secret);
  const body = new TextEncoder().encode(VECTOR.body);
  const digest = toHex(requestDigest(VECTOR.method, VECTOR.path, body, VECTOR.wallet, VECTOR.nonce));
  const signature = key.signRequest(VECTOR.method, VECTOR.path, body, VECTOR.wallet, VECTOR.nonce);
  assert.equal(digest, VECTOR.digest);
  assert.equal(signature, VECTOR.signature);
});
