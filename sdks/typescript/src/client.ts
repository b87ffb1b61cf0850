/**
 * The Mandate REST client (docs/API.md). One method per route of {@link ROUTES}; the
 * request and answer types are those of the daemon's OpenAPI document
 * (`schema.gen.ts`). fetch-based: Node 20+, Deno, Bun and browsers.
 */
import { AgentKey } from './agent.js';
import { MandateError, isEnvelope } from './errors.js';
import { ROUTES, type HttpMethod, type RouteName } from './routes.js';
import type * as S from './schema.gen.js';

type OpKey<K extends RouteName> = K extends RouteName ? `${(typeof ROUTES)[K][0]} ${(typeof ROUTES)[K][1]}` : never;
type Typed = Exclude<RouteName, 'metrics'>;
/** The answer type of a route, from the OpenAPI document. */
export type ResponseOf<K extends Typed> = OpKey<K> extends keyof S.Operations ? S.Operations[OpKey<K>]['response'] : never;
/** The request body type of a route, from the OpenAPI document. */
export type BodyOf<K extends Typed> = OpKey<K> extends keyof S.Operations ? S.Operations[OpKey<K>]['body'] : never;

// Compile-time halves of the OpenAPI check: every typed route is an operation of the
// document, and every operation of the document is a route of the client.
type RoutesInDocument = [OpKey<Typed>] extends [keyof S.Operations] ? true : never;
type DocumentInRoutes = [keyof S.Operations] extends [OpKey<Typed>] ? true : never;
const routesInDocument: RoutesInDocument = true;
const documentInRoutes: DocumentInRoutes = true;
void routesInDocument;
void documentInRoutes;

/** How a client authenticates. */
export type Credential =
  | { kind: 'none' }
  | { kind: 'bearer'; token: string }
  | { kind: 'agent'; key: AgentKey; wallet: string };

/** Options of {@link MandateClient}. */
export interface ClientOptions {
  /** The daemon's origin, e.g. `http://127.0.0.1:3100` (`https://` unless loopback). */
  baseUrl?: string;
  /** A bearer token: `mnd_admin_…`, `mnd_op_…` or `mnd_sess_…`. */
  token?: string;
  /** Sign every request with an agent key for a wallet (docs/AGENTS.md) instead of a token. */
  agent?: { key: AgentKey; wallet: string };
  /** The fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** How often a send is retried, with the same idempotency key, when no answer arrived or the daemon said to retry (default 2). */
  sendRetries?: number;
  /** Per-request timeout in milliseconds (default 180 000: a send waits for signing). */
  timeoutMs?: number;
}

/** Options of a send (`sendTransfer`, `sendContractCall`). */
export interface SendOptions {
  /** The `Idempotency-Key` (≤ 128 printable ASCII). Default: a new random one per call. */
  idempotencyKey?: string;
}

/** The raw answer of {@link MandateClient.request}. */
export interface RawResponse {
  status: number;
  headers: Headers;
  data: unknown;
}

const DEFAULT_URL = 'http://127.0.0.1:3100';
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const RETRY_CODES = new Set(['PEER_UNAVAILABLE', 'DATABASE_UNAVAILABLE', 'CHAIN_UNAVAILABLE', 'RATE_LIMITED']);
const utf8 = new TextEncoder();

function checkBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw MandateError.local('INVALID_INPUT', 'validation', `not a URL: ${raw}`);
  }
  if (url.username || url.password) {
    throw MandateError.local('INSECURE_URL', 'validation', 'the daemon URL must not carry credentials');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw MandateError.local('INSECURE_URL', 'validation', 'the daemon URL must be https:// unless it is a loopback address');
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw MandateError.local('INVALID_INPUT', 'validation', "the daemon URL is an origin only (agent signatures cover the daemon's own path)");
  }
  return url.origin;
}

/** A path parameter: percent-encoded, and never a dot segment (which a URL parser would resolve). */
function segment(value: string): string {
  if (typeof value !== 'string' || value === '' || value === '.' || value === '..') {
    throw MandateError.local('INVALID_INPUT', 'validation', `not a path parameter: ${JSON.stringify(value)}`, { details: { field: 'id' } });
  }
  return encodeURIComponent(value);
}

function fillPath(template: string, params: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw MandateError.local('INVALID_INPUT', 'validation', `missing path parameter ${name}`);
    return segment(value);
  });
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function checkIdempotencyKey(key: string): void {
  if (typeof key !== 'string' || key.length < 1 || key.length > 128 || !/^[\x21-\x7e]+$/.test(key)) {
    throw MandateError.local('INVALID_INPUT', 'validation', 'an idempotency key is 1 to 128 printable ASCII characters', {
      details: { field: 'idempotency_key' },
    });
  }
}

function newIdempotencyKey(): string {
  return `sdk-${globalThis.crypto.randomUUID()}`;
}

function base64(text: string): string {
  const bytes = utf8.encode(text);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A client of one daemon with one credential. Tokens and agent keys are kept in private
 * fields and never printed.
 */
export class MandateClient {
  readonly baseUrl: string;
  readonly #credential: Credential;
  readonly #fetch: typeof fetch;
  readonly #sendRetries: number;
  readonly #timeoutMs: number;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = checkBaseUrl(options.baseUrl ?? DEFAULT_URL);
    if (options.token !== undefined && options.agent !== undefined) {
      throw MandateError.local('INVALID_INPUT', 'validation', 'a token or an agent key, not both');
    }
    this.#credential = options.agent
      ? { kind: 'agent', key: options.agent.key, wallet: options.agent.wallet }
      : options.token !== undefined
        ? { kind: 'bearer', token: options.token }
        : { kind: 'none' };
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#sendRetries = options.sendRetries ?? 2;
    this.#timeoutMs = options.timeoutMs ?? 180_000;
  }

  #options(): ClientOptions {
    return { baseUrl: this.baseUrl, fetch: this.#fetch, sendRetries: this.#sendRetries, timeoutMs: this.#timeoutMs };
  }

  /** The same daemon with a bearer token (e.g. a session's `mnd_sess_…`). */
  withToken(token: string): MandateClient {
    return new MandateClient({ ...this.#options(), token });
  }

  /** The same daemon, every request signed with an agent key for `wallet`. */
  asAgent(key: AgentKey, wallet: string): MandateClient {
    return new MandateClient({ ...this.#options(), agent: { key, wallet } });
  }

  /**
   * Logs in as the operator with the master password (HTTP Basic, user `operator`) and
   * returns a client holding the admin token (15 minutes).
   */
  static async login(password: string, options: Omit<ClientOptions, 'token' | 'agent'> = {}): Promise<MandateClient> {
    const anonymous = new MandateClient(options);
    const login = await anonymous.login(password);
    return anonymous.withToken(login.token);
  }

  /** The wallet an agent-key client is bound to, else undefined. */
  get agentWallet(): string | undefined {
    return this.#credential.kind === 'agent' ? this.#credential.wallet : undefined;
  }

  toJSON(): { baseUrl: string; credential: string } {
    return { baseUrl: this.baseUrl, credential: this.#credential.kind === 'agent' ? `agent ${this.#credential.key.address}` : this.#credential.kind };
  }

  toString(): string {
    return `MandateClient(${this.baseUrl}, ${this.toJSON().credential})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /**
   * One request: `path` with its query string, `body` serialised once (the bytes sent
   * are the bytes signed). Throws {@link MandateError} for every error answer.
   */
  async request(
    method: HttpMethod,
    path: string,
    options: {
      body?: unknown;
      headers?: Record<string, string>;
      basicPassword?: string;
      anonymous?: boolean;
      okStatuses?: number[];
      text?: boolean;
      idempotencyKey?: string;
    } = {},
  ): Promise<RawResponse> {
    const url = new URL(path, this.baseUrl);
    const sentPath = url.pathname + url.search;
    const body = options.body === undefined ? new Uint8Array() : utf8.encode(JSON.stringify(options.body));
    const headers: Record<string, string> = { accept: options.text ? 'text/plain' : 'application/json', ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.idempotencyKey !== undefined) headers['Idempotency-Key'] = options.idempotencyKey;
    if (options.basicPassword !== undefined) {
      headers.authorization = `Basic ${base64(`operator:${options.basicPassword}`)}`;
    } else if (!options.anonymous) {
      const credential = this.#credential;
      if (credential.kind === 'bearer') headers.authorization = `Bearer ${credential.token}`;
      if (credential.kind === 'agent') Object.assign(headers, credential.key.headers(method, sentPath, body, credential.wallet));
    }
    let answer: Response;
    try {
      answer = await this.#fetch(url.href, {
        method,
        headers,
        body: options.body === undefined ? undefined : body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      const reason = error instanceof Error ? error.name : 'error';
      throw MandateError.local('PEER_UNAVAILABLE', 'unavailable', `no answer from the daemon at ${this.baseUrl} (${reason}); the outcome is unknown`, {
        retryable: true,
        requiredAction: 'retry; for a send, with the same idempotency key',
        idempotencyKey: options.idempotencyKey,
      });
    }
    const text = await answer.text();
    const ok = (answer.status >= 200 && answer.status < 300) || (options.okStatuses ?? []).includes(answer.status);
    let data: unknown = text;
    if (!options.text || !ok) {
      try {
        data = text === '' ? null : JSON.parse(text);
      } catch {
        data = undefined;
      }
    }
    if (!ok) {
      if (isEnvelope(data)) throw new MandateError(answer.status, data.error, options.idempotencyKey);
      throw MandateError.local('INTERNAL', 'internal', `unexpected HTTP ${answer.status} from the daemon (not the error envelope)`, {
        status: answer.status,
        idempotencyKey: options.idempotencyKey,
      });
    }
    if (data === undefined) {
      throw MandateError.local('INTERNAL', 'internal', `the daemon's answer (HTTP ${answer.status}) is not JSON`, { status: answer.status });
    }
    return { status: answer.status, headers: answer.headers, data };
  }

  async #call<K extends Typed>(
    name: K,
    params: Record<string, string> = {},
    options: { body?: unknown; query?: Record<string, string | number | boolean | undefined>; anonymous?: boolean; okStatuses?: number[]; basicPassword?: string } = {},
  ): Promise<ResponseOf<K>> {
    const [method, template] = ROUTES[name];
    const path = fillPath(template, params) + query(options.query ?? {});
    const answer = await this.request(method, path, options);
    return answer.data as ResponseOf<K>;
  }

  /** A send with an idempotency key (given, or new), retried with the same key when no answer arrived or the daemon said to retry. */
  async #send<K extends 'sendTransfer' | 'sendContractCall' | 'payX402'>(name: K, wallet: string, body: BodyOf<K>, options: SendOptions): Promise<ResponseOf<K>> {
    const idempotencyKey = options.idempotencyKey ?? newIdempotencyKey();
    checkIdempotencyKey(idempotencyKey);
    const [method, template] = ROUTES[name];
    const path = fillPath(template, { id: wallet });
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.request(method, path, { body, idempotencyKey })).data as ResponseOf<K>;
      } catch (error) {
        if (!(error instanceof MandateError) || !RETRY_CODES.has(error.code) || attempt >= this.#sendRetries) throw error;
        await sleep(Math.min(error.retryAfter ?? 0.25 * 2 ** attempt, 10) * 1000);
      }
    }
  }

  // ---- Public ----
  /** `GET /v1/health`: liveness. */
  health(): Promise<ResponseOf<'health'>> {
    return this.#call('health', {}, { anonymous: true });
  }
  /** `GET /v1/ready`: readiness (a 503 answer is returned, not thrown: its body names what is not ready). */
  ready(): Promise<ResponseOf<'ready'>> {
    return this.#call('ready', {}, { anonymous: true, okStatuses: [503] });
  }
  /** `GET /v1/openapi.json`: the OpenAPI 3.1 document. */
  openapi(): Promise<ResponseOf<'openapi'>> {
    return this.#call('openapi', {}, { anonymous: true });
  }
  /** `GET /metrics`: Prometheus text (an operator credential, `read` scope suffices). */
  async metrics(): Promise<string> {
    const [method, path] = ROUTES.metrics;
    return (await this.request(method, path, { text: true })).data as string;
  }

  // ---- Operator credentials ----
  /** `POST /v1/admin/login` with the master password (HTTP Basic `operator:password`). Returns the admin token. */
  login(password: string): Promise<ResponseOf<'login'>> {
    return this.#call('login', {}, { basicPassword: password });
  }
  /** `POST /v1/operator-keys`: `{key, operator_key}`; the key is shown once. */
  createOperatorKey(body: BodyOf<'createOperatorKey'>): Promise<ResponseOf<'createOperatorKey'>> {
    return this.#call('createOperatorKey', {}, { body });
  }
  /** `GET /v1/operator-keys`. */
  listOperatorKeys(): Promise<ResponseOf<'listOperatorKeys'>> {
    return this.#call('listOperatorKeys');
  }
  /** `POST /v1/operator-keys/{id}/revoke`. */
  revokeOperatorKey(id: string): Promise<ResponseOf<'revokeOperatorKey'>> {
    return this.#call('revokeOperatorKey', { id });
  }

  // ---- Wallets and policies ----
  /** `POST /v1/wallets`: registers a wallet whose key `mandate wallet create` generated (DKG). */
  registerWallet(body: BodyOf<'registerWallet'>): Promise<ResponseOf<'registerWallet'>> {
    return this.#call('registerWallet', {}, { body });
  }
  /** `GET /v1/wallets` (an agent sees only its own). */
  listWallets(): Promise<ResponseOf<'listWallets'>> {
    return this.#call('listWallets');
  }
  /** `GET /v1/wallets/{id}`. */
  getWallet(wallet: string): Promise<ResponseOf<'getWallet'>> {
    return this.#call('getWallet', { id: wallet });
  }
  /** `GET /v1/wallets/{id}/balance[?token=][&chain=]`: native, or an ERC-20 by declared symbol or address. */
  getBalance(wallet: string, options: { token?: string; chain?: string } = {}): Promise<ResponseOf<'getBalance'>> {
    return this.#call('getBalance', { id: wallet }, { query: { token: options.token, chain: options.chain } });
  }
  /** `PUT /v1/wallets/{id}/policy` with the policy document (docs/POLICY.md). */
  setPolicy(wallet: string, document: BodyOf<'setPolicy'>): Promise<ResponseOf<'setPolicy'>> {
    return this.#call('setPolicy', { id: wallet }, { body: document });
  }
  /** `GET /v1/wallets/{id}/policy`. */
  getPolicy(wallet: string): Promise<ResponseOf<'getPolicy'>> {
    return this.#call('getPolicy', { id: wallet });
  }
  /** `GET /v1/wallets/{id}/policy/summary`: rules and budgets now. */
  getPolicySummary(wallet: string): Promise<ResponseOf<'getPolicySummary'>> {
    return this.#call('getPolicySummary', { id: wallet });
  }
  /** `POST /v1/wallets/{id}/policy/evaluate[?simulate=true]`: the decision; nothing is signed. */
  evaluateAction(wallet: string, body: BodyOf<'evaluateAction'> & Record<string, unknown>, options: { simulate?: boolean } = {}): Promise<ResponseOf<'evaluateAction'>> {
    return this.#call('evaluateAction', { id: wallet }, { body, query: { simulate: options.simulate ? 'true' : undefined } });
  }
  /** `POST /v1/wallets/{id}/dev/fund`: test ether on a dev chain (anvil, hardhat). */
  devFund(wallet: string, body: BodyOf<'devFund'>): Promise<ResponseOf<'devFund'>> {
    return this.#call('devFund', { id: wallet }, { body });
  }

  // ---- Sessions ----
  /** `POST /v1/sessions`: `{token, session}`; the token is shown once (use it with {@link withToken}). */
  createSession(body: BodyOf<'createSession'>): Promise<ResponseOf<'createSession'>> {
    return this.#call('createSession', {}, { body });
  }
  /** `GET /v1/sessions[?wallet_id=]`. */
  listSessions(options: { walletId?: string } = {}): Promise<ResponseOf<'listSessions'>> {
    return this.#call('listSessions', {}, { query: { wallet_id: options.walletId } });
  }
  /** `POST /v1/sessions/{id}/revoke`: held transactions of the session are cancelled. */
  revokeSession(id: string): Promise<ResponseOf<'revokeSession'>> {
    return this.#call('revokeSession', { id });
  }
  /** `POST /v1/sessions/renew` (the session's own token). */
  renewSession(): Promise<ResponseOf<'renewSession'>> {
    return this.#call('renewSession');
  }
  /** `GET /v1/session`: the calling session and its band. */
  currentSession(): Promise<ResponseOf<'currentSession'>> {
    return this.#call('currentSession');
  }

  // ---- Sends and signatures ----
  /**
   * `POST /v1/wallets/{id}/transactions`: a native or ERC-20 transfer, with an
   * `Idempotency-Key` (a new one per call unless given). The same key again returns
   * what the first request got. Answers the transaction (`200`) or the held item (`202`).
   */
  sendTransfer(wallet: string, body: BodyOf<'sendTransfer'>, options: SendOptions = {}): Promise<ResponseOf<'sendTransfer'>> {
    return this.#send('sendTransfer', wallet, body, options);
  }
  /** `POST /v1/wallets/{id}/transactions/dry-run`: the decision for a transfer; nothing is signed. */
  dryRun(wallet: string, body: BodyOf<'dryRun'>): Promise<ResponseOf<'dryRun'>> {
    return this.#call('dryRun', { id: wallet }, { body });
  }
  /** `POST /v1/wallets/{id}/contract-calls`, with an `Idempotency-Key` as {@link sendTransfer}. */
  sendContractCall(wallet: string, body: BodyOf<'sendContractCall'>, options: SendOptions = {}): Promise<ResponseOf<'sendContractCall'>> {
    return this.#send('sendContractCall', wallet, body, options);
  }
  /**
   * `POST /v1/wallets/{id}/x402/pay`: fetches `url` and, when it answers 402 with an x402
   * `exact` requirement the policy allows, pays it and returns the resource and the
   * settlement; with an `Idempotency-Key` as {@link sendTransfer}.
   */
  payX402(wallet: string, body: BodyOf<'payX402'>, options: SendOptions = {}): Promise<ResponseOf<'payX402'>> {
    return this.#send('payX402', wallet, body, options);
  }
  /** `fetch` for an agent: the resource at `url`, paid through the wallet's mandate when it asks for x402. */
  fetchWithPayment(wallet: string, url: string, options: SendOptions & { chain?: string } = {}): Promise<ResponseOf<'payX402'>> {
    const body = options.chain === undefined ? { url } : { url, chain: options.chain };
    return this.payX402(wallet, body as BodyOf<'payX402'>, options);
  }
  /** `POST /v1/wallets/{id}/sign-typed-data` (EIP-712, `eth_signTypedData_v4` JSON). */
  signTypedData(wallet: string, body: BodyOf<'signTypedData'>): Promise<ResponseOf<'signTypedData'>> {
    return this.#call('signTypedData', { id: wallet }, { body });
  }
  /** `POST /v1/wallets/{id}/sign-message` (EIP-191). */
  signMessage(wallet: string, body: BodyOf<'signMessage'>): Promise<ResponseOf<'signMessage'>> {
    return this.#call('signMessage', { id: wallet }, { body });
  }
  /** `POST /v1/wallets/{id}/sign-hash` (32 bytes; needs a `raw_hash` rule). */
  signHash(wallet: string, body: BodyOf<'signHash'>): Promise<ResponseOf<'signHash'>> {
    return this.#call('signHash', { id: wallet }, { body });
  }
  /** `GET /v1/wallets/{id}/transactions[?limit=]`, newest first. */
  listTransactions(wallet: string, options: { limit?: number } = {}): Promise<ResponseOf<'listTransactions'>> {
    return this.#call('listTransactions', { id: wallet }, { query: { limit: options.limit } });
  }
  /** `GET /v1/transactions/{id}`. */
  getTransaction(id: string): Promise<ResponseOf<'getTransaction'>> {
    return this.#call('getTransaction', { id });
  }
  /** `POST /v1/transactions/{id}/cancel`: a held one before it runs, a submitted one by a replacement. */
  cancelTransaction(id: string): Promise<ResponseOf<'cancelTransaction'>> {
    return this.#call('cancelTransaction', { id });
  }
  /** `POST /v1/transactions/{id}/speed-up`: the same nonce, higher fees. */
  speedUpTransaction(id: string): Promise<ResponseOf<'speedUpTransaction'>> {
    return this.#call('speedUpTransaction', { id });
  }

  // ---- Held transactions, owners, freeze ----
  /** `GET /v1/approvals[?wallet=]`. */
  listApprovals(options: { wallet?: string } = {}): Promise<ResponseOf<'listApprovals'>> {
    return this.#call('listApprovals', {}, { query: { wallet: options.wallet } });
  }
  /** `GET /v1/approvals/{id}`: the held item with the texts an owner signs. */
  getApproval(id: string): Promise<ResponseOf<'getApproval'>> {
    return this.#call('getApproval', { id });
  }
  /** `POST /v1/approvals/{id}/approve`: the owner's signature is the credential (no token sent). */
  approve(id: string, body: BodyOf<'approve'>): Promise<ResponseOf<'approve'>> {
    return this.#call('approve', { id }, { body, anonymous: true });
  }
  /** `POST /v1/approvals/{id}/deny`: as {@link approve}. */
  deny(id: string, body: BodyOf<'deny'>): Promise<ResponseOf<'deny'>> {
    return this.#call('deny', { id }, { body, anonymous: true });
  }
  /** `GET /v1/owner/approvals/{id}` (no credential): what an owner's tool needs for one held item. */
  ownerApproval(id: string): Promise<ResponseOf<'ownerApproval'>> {
    return this.#call('ownerApproval', { id }, { anonymous: true });
  }
  /** `GET /v1/wallets/{id}/owners`. */
  listOwners(wallet: string): Promise<ResponseOf<'listOwners'>> {
    return this.#call('listOwners', { id: wallet });
  }
  /** `POST /v1/wallets/{id}/owners` (operator): `{owner_key: "ed25519:<hex>" | "evm:0x…", label}`. */
  addOwner(wallet: string, body: BodyOf<'addOwner'>): Promise<ResponseOf<'addOwner'>> {
    return this.#call('addOwner', { id: wallet }, { body });
  }

  /** Approvals and unfreezes of the wallet need `threshold` distinct owners' signatures. */
  setOwnerQuorum(wallet: string, threshold: number): Promise<ResponseOf<'setOwnerQuorum'>> {
    return this.#call('setOwnerQuorum', { id: wallet }, { body: { threshold } });
  }
  /** `POST /v1/wallets/{id}/freeze`: the daemon and the cosigner sign nothing more for it. */
  freezeWallet(wallet: string, body: BodyOf<'freezeWallet'> = {}): Promise<ResponseOf<'freezeWallet'>> {
    return this.#call('freezeWallet', { id: wallet }, { body });
  }
  /** `POST /v1/freeze` (operator): every wallet. */
  freezeAll(body: BodyOf<'freezeAll'> = {}): Promise<ResponseOf<'freezeAll'>> {
    return this.#call('freezeAll', {}, { body });
  }
  /** `GET /v1/wallets/{id}/unfreeze`: the text an owner signs and the cool-down. */
  unfreezeText(wallet: string): Promise<ResponseOf<'unfreezeText'>> {
    return this.#call('unfreezeText', { id: wallet });
  }
  /** `POST /v1/wallets/{id}/unfreeze`: the owner's signature is the credential (no token sent). */
  unfreeze(wallet: string, body: BodyOf<'unfreeze'>): Promise<ResponseOf<'unfreeze'>> {
    return this.#call('unfreeze', { id: wallet }, { body, anonymous: true });
  }
  /** `GET /v1/owner/wallets/{id}/unfreeze` (no credential). */
  ownerUnfreezeText(wallet: string): Promise<ResponseOf<'ownerUnfreezeText'>> {
    return this.#call('ownerUnfreezeText', { id: wallet }, { anonymous: true });
  }

  // ---- Agent keys ----
  /** `GET /v1/wallets/{id}/agents`. */
  listAgents(wallet: string): Promise<ResponseOf<'listAgents'>> {
    return this.#call('listAgents', { id: wallet });
  }
  /** `POST /v1/wallets/{id}/agents`: the owner's signature is the credential (no token sent). */
  registerAgent(wallet: string, body: BodyOf<'registerAgent'>): Promise<ResponseOf<'registerAgent'>> {
    return this.#call('registerAgent', { id: wallet }, { body, anonymous: true });
  }
  /** `POST /v1/agents/{address}/revoke` (operator). */
  revokeAgent(address: string): Promise<ResponseOf<'revokeAgent'>> {
    return this.#call('revokeAgent', { address });
  }

  // ---- Subaccounts ----
  /** `GET /v1/wallets/{id}/subaccounts`: the main wallet's subaccounts. */
  listSubaccounts(wallet: string): Promise<ResponseOf<'listSubaccounts'>> {
    return this.#call('listSubaccounts', { id: wallet });
  }
  /** `POST /v1/wallets/{id}/subaccounts` (operator): a subaccount at the next child key. */
  createSubaccount(wallet: string, body: BodyOf<'createSubaccount'>): Promise<ResponseOf<'createSubaccount'>> {
    return this.#call('createSubaccount', { id: wallet }, { body });
  }

  // ---- Audit ----
  /** `GET /v1/audit/verify[?anchor_seq=&anchor_hash=]`. */
  auditVerify(options: { anchorSeq?: number; anchorHash?: string } = {}): Promise<ResponseOf<'auditVerify'>> {
    return this.#call('auditVerify', {}, { query: { anchor_seq: options.anchorSeq, anchor_hash: options.anchorHash } });
  }
  /** `GET /v1/audit/tail[?n=]`. */
  auditTail(options: { n?: number } = {}): Promise<ResponseOf<'auditTail'>> {
    return this.#call('auditTail', {}, { query: { n: options.n } });
  }

  // ---- Webhooks ----
  /** `POST /v1/webhooks`: the signing secret is in this answer only. */
  createWebhook(body: BodyOf<'createWebhook'>): Promise<ResponseOf<'createWebhook'>> {
    return this.#call('createWebhook', {}, { body });
  }
  /** `GET /v1/webhooks`. */
  listWebhooks(): Promise<ResponseOf<'listWebhooks'>> {
    return this.#call('listWebhooks');
  }
  /** `DELETE /v1/webhooks/{id}`. */
  deleteWebhook(id: string): Promise<ResponseOf<'deleteWebhook'>> {
    return this.#call('deleteWebhook', { id });
  }
  /** `GET /v1/webhooks/{id}/deliveries`. */
  listDeliveries(id: string): Promise<ResponseOf<'listDeliveries'>> {
    return this.#call('listDeliveries', { id });
  }
}
