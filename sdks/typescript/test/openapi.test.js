// The SDK and the daemon's OpenAPI document agree: every (method, path) of the document
// is a client method and every client method a route of the document, and the generated
// types are those of the document. A route change that forgets the SDK fails here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { MandateClient, NOT_IN_OPENAPI, ROUTES } from '../dist/index.js';
import { generate } from '../scripts/gen-types.mjs';
import { startStack } from './harness.js';

let stack;
let doc;
before(async () => {
  stack = await startStack();
  doc = await new MandateClient({ baseUrl: stack.url }).openapi();
});
after(async () => {
  await stack?.stop();
});

function documentOperations() {
  const ops = new Set();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch']) if (item[method]) ops.add(`${method.toUpperCase()} ${path}`);
  }
  return ops;
}

test('every operation of /v1/openapi.json has an SDK method, and every SDK method is an operation', () => {
  const documented = documentOperations();
  const sdk = new Map(Object.entries(ROUTES).filter(([name]) => !NOT_IN_OPENAPI.includes(name)).map(([name, [m, p]]) => [`${m} ${p}`, name]));
  const missing = [...documented].filter((op) => !sdk.has(op));
  const extra = [...sdk.keys()].filter((op) => !documented.has(op));
  assert.deepEqual(missing, [], `operations without an SDK method (add them to src/routes.ts and src/client.ts): ${missing.join(', ')}`);
  assert.deepEqual(extra, [], `SDK methods whose route the document does not have: ${extra.map((op) => `${sdk.get(op)} (${op})`).join(', ')}`);
  for (const name of NOT_IN_OPENAPI) {
    const [m, p] = ROUTES[name];
    assert.ok(!documented.has(`${m} ${p}`), `${name} is in the document now: remove it from NOT_IN_OPENAPI`);
  }
  for (const name of Object.keys(ROUTES)) assert.equal(typeof MandateClient.prototype[name], 'function', `MandateClient.${name}`);
});

test('src/schema.gen.ts is what scripts/gen-types.mjs makes of the live document', async () => {
  const committed = await readFile(new URL('../src/schema.gen.ts', import.meta.url), 'utf8');
  assert.ok(committed === generate(doc), `src/schema.gen.ts is stale: run \`npm run gen -- ${stack.url}/v1/openapi.json\`, rebuild and commit`);
});
