// Starts the real parties for the tests: anvil (from the repository's npm test
// dependencies), `mandate init --dev` and `mandate serve --dev` (the daemon with its
// cosigner), as scripts/demo.sh and crates/mandate-e2e/tests/daemon/main.rs do.
// MANDATE_BIN names the mandate binary (default: <repo>/target/debug/mandate),
// MANDATE_ANVIL the anvil binary.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = process.env.MANDATE_BIN || join(repo, 'target', 'debug', 'mandate');
const ANVIL = process.env.MANDATE_ANVIL || join(repo, 'node_modules', '@foundry-rs', 'anvil-linux-amd64', 'bin', 'anvil');

/** A free TCP port on 127.0.0.1 below the ephemeral range (32768+), so that no outgoing connection takes it meanwhile. */
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise((res) => {
      const server = createServer();
      server.once('error', () => res(false));
      server.listen(port, '127.0.0.1', () => server.close(() => res(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port');
}

function run(args, env = {}) {
  return new Promise((res, rej) => {
    execFile(BIN, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) rej(new Error(`mandate ${args.join(' ')} failed: ${stderr || stdout || error.message}`));
      else res(stdout);
    });
  });
}

async function rpc(url, method, params = []) {
  const answer = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await answer.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** anvil + daemon + cosigner in a temporary directory; `stop()` ends them and removes it. */
export async function startStack() {
  for (const [what, path] of [['mandate (MANDATE_BIN)', BIN], ['anvil (MANDATE_ANVIL, or npm ci at the repository root)', ANVIL]]) {
    if (!existsSync(path)) throw new Error(`${what} not found at ${path}`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'mandate-sdk-ts-'));
  const children = [];
  const stack = { dir, children };
  try {
    const rpcPort = await freePort();
    const anvil = spawn(ANVIL, ['--host', '127.0.0.1', '--port', String(rpcPort), '--silent'], { stdio: 'ignore' });
    children.push(anvil);
    stack.rpcUrl = `http://127.0.0.1:${rpcPort}`;
    for (let i = 0; ; i++) {
      try {
        await rpc(stack.rpcUrl, 'eth_chainId');
        break;
      } catch (error) {
        if (i > 100) throw new Error(`anvil did not start: ${error.message}`);
        await sleep(100);
      }
    }
    const data = join(dir, 'data');
    const [cosigner, service, api] = [await freePort(), await freePort(), await freePort()];
    await run(['init', '--dev', '--auto-provision', '--data-dir', data, '--cosigner-addr', `127.0.0.1:${cosigner}`, '--service-addr', `127.0.0.1:${service}`]);
    stack.masterFile = join(data, 'master-password');
    const stderr = createWriteStream(join(dir, 'serve.stderr'));
    const serve = spawn(BIN, ['serve', '--dev', '--data-dir', data, '--listen', `127.0.0.1:${api}`, '--rpc-url', stack.rpcUrl], {
      env: { ...process.env, MANDATE_MASTER_PASSWORD_FILE: stack.masterFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(serve);
    serve.stderr.pipe(stderr);
    // The daemon's first stdout line is its JSON banner, printed once it listens.
    const banner = await new Promise((res, rej) => {
      const lines = createInterface({ input: serve.stdout });
      const timer = setTimeout(() => rej(new Error('mandate serve printed no banner in 60 s')), 60_000);
      lines.once('line', (line) => {
        clearTimeout(timer);
        res(JSON.parse(line));
      });
      serve.once('exit', (code) => rej(new Error(`mandate serve exited (${code}); see ${join(dir, 'serve.stderr')}`)));
    });
    serve.stdout.resume();
    stack.url = `http://${banner.listening}`;
    await writeFile(join(dir, 'recovery-passphrase'), 'sdk test recovery passphrase', { mode: 0o600 });
    stack.cliEnv = {
      MANDATE_URL: stack.url,
      MANDATE_MASTER_PASSWORD_FILE: stack.masterFile,
      MANDATE_RECOVERY_DIR: join(data, 'recovery'),
      MANDATE_RECOVERY_PASSPHRASE_FILE: join(dir, 'recovery-passphrase'),
    };
    stack.masterPassword = (await readFile(stack.masterFile, 'utf8')).trim();
    /** `mandate --json ARGS` as the operator; the parsed JSON answer. */
    stack.cli = async (...args) => JSON.parse(await run(['--json', ...args], stack.cliEnv));
    /** A new wallet (the DKG runs in the CLI as the recovery party). */
    stack.createWallet = (name) => stack.cli('wallet', 'create', '--name', name, '--recovery-out', join(dir, `${name}.recovery`));
    /** A JSON-RPC call to anvil. */
    stack.rpc = (method, params) => rpc(stack.rpcUrl, method, params);
    /** The balance of an address on anvil, in wei. */
    stack.chainBalance = async (address) => BigInt(await rpc(stack.rpcUrl, 'eth_getBalance', [address, 'latest']));
    stack.stop = async () => {
      for (const child of children.reverse()) child.kill('SIGTERM');
      await sleep(200);
      await rm(dir, { recursive: true, force: true });
    };
    return stack;
  } catch (error) {
    for (const child of children) child.kill('SIGKILL');
    throw error;
  }
}

/** Polls a transaction until it leaves `reserved`/`submitted`. */
export async function waitFinal(client, id, seconds = 60) {
  for (let i = 0; i < seconds * 5; i++) {
    const tx = await client.getTransaction(id);
    if (!['reserved', 'submitted', 'approved'].includes(tx.status)) return tx;
    await sleep(200);
  }
  throw new Error(`transaction ${id} did not settle in ${seconds} s`);
}
