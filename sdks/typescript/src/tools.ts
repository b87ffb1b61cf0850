/**
 * The wallet tools an agent framework hands a model, in the bands of the MCP server
 * (docs/MCP.md): `read` ⊂ `prepare` ⊂ `sign` ⊂ `broadcast`, plus `freeze_wallet` for a
 * session granted `freeze`. Framework-neutral: each tool is a description, a JSON schema
 * of its input and an `execute`; `mandate-sdk/ai` wraps them for the Vercel AI SDK.
 *
 * As in MCP, the tools hold no authority: each is one REST call with the client's own
 * credential, and the daemon enforces the session's scopes and the policy. A refusal is
 * returned as the error envelope `{"error": {...}}` (what the model should read), not
 * thrown; send, speed-up and cancel need `confirm: true`.
 */
import type { MandateClient } from './client.js';
import { MandateError } from './errors.js';

/** A tool band (docs/MCP.md §2). */
export type Band = 'read' | 'prepare' | 'sign' | 'broadcast';
const BAND_ORDER: Band[] = ['read', 'prepare', 'sign', 'broadcast'];

/** A JSON schema (the subset the tools use). */
export interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  pattern?: string;
  enum?: unknown[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  const?: unknown;
}

/** One tool: what a framework needs to offer it to a model. */
export interface MandateTool {
  description: string;
  /** The input's JSON schema (`additionalProperties: false`). */
  parameters: JsonSchema;
  /** Runs the tool: the daemon's JSON answer, or `{"error": {...}}` for a refusal. */
  execute(input: unknown): Promise<unknown>;
}

type Args = Record<string, unknown>;
interface Spec {
  band: Band | 'freeze';
  description: string;
  parameters: JsonSchema;
  run(client: MandateClient, wallet: string, args: Args): Promise<unknown>;
}

const ADDRESS: JsonSchema = { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$', description: 'an EVM address (EIP-55 or lower case)' };
const AMOUNT: JsonSchema = { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?$', description: 'whole units, e.g. "0.25" ether or token' };
const TOKEN: JsonSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9._-]{1,64}$',
  description: "a symbol the wallet's policy declares, or the token's contract address; omit for the native asset",
};
const TX_ID: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9_]{1,64}$', description: 'a transaction id (tx_…)' };
const CONFIRM: JsonSchema = { type: 'boolean', const: true, description: 'must be true: this signs and sends' };
const IDEMPOTENCY: JsonSchema = {
  type: 'string',
  pattern: '^[\\x21-\\x7e]{1,128}$',
  description: 'retry an unknown outcome with the same key: it never sends twice',
};
const CALL_FIELDS: Record<string, JsonSchema> = {
  to: ADDRESS,
  data: { type: 'string', pattern: '^0x([0-9a-fA-F]{2})+$', description: 'calldata (or give function and args)' },
  function: { type: 'string', description: 'a signature such as swap(address,uint256,uint256)' },
  args: { type: 'array', description: 'the arguments: strings or JSON values' },
  value: { ...AMOUNT, description: 'ether sent with the call, default 0' },
};

function object(properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema {
  return { type: 'object', properties, required, additionalProperties: false };
}

function pick(args: Args, names: string[]): Args {
  const out: Args = {};
  for (const name of names) if (args[name] !== undefined) out[name] = args[name];
  return out;
}

function needConfirm(args: Args): void {
  if (args.confirm !== true) {
    throw MandateError.local('CONFIRMATION_REQUIRED', 'validation', 'this tool signs: call it again with confirm: true once the action is checked', {
      requiredAction: 'check the action (a prepare_* tool), then call again with confirm: true',
    });
  }
}

const SPECS: Record<string, Spec> = {
  get_wallet: {
    band: 'read',
    description: "The wallet: id, name, address, chain id, creation time and 'frozen' (null, or the freeze).",
    parameters: object({}),
    run: (c, w) => c.getWallet(w),
  },
  get_balance: {
    band: 'read',
    description: "The wallet's balance read from the chain, native or one ERC-20.",
    parameters: object({ token: TOKEN }),
    run: (c, w, a) => c.getBalance(w, { token: a.token as string | undefined }),
  },
  list_transactions: {
    band: 'read',
    description: "The wallet's transactions, newest first.",
    parameters: object({ limit: { type: 'integer', minimum: 1, maximum: 100, description: 'default 20' } }),
    run: (c, w, a) => c.listTransactions(w, { limit: (a.limit as number | undefined) ?? 20 }),
  },
  get_transaction: {
    band: 'read',
    description: 'One transaction by id. Poll it after a send.',
    parameters: object({ id: TX_ID }, ['id']),
    run: (c, _w, a) => c.getTransaction(a.id as string),
  },
  get_policy_summary: {
    band: 'read',
    description: "The policy's rules and, for every rolling window and velocity rule, the budget now.",
    parameters: object({}),
    run: (c, w) => c.getPolicySummary(w),
  },
  evaluate_action: {
    band: 'read',
    description: 'A dry run: the full policy decision for a transfer, a contract call or a signature. Nothing is signed, reserved or audited.',
    parameters: object(
      {
        type: { type: 'string', enum: ['transfer', 'contract_call', 'sign'] },
        ...CALL_FIELDS,
        amount: AMOUNT,
        token: TOKEN,
        typed_data: { type: 'object', description: 'EIP-712 typed data (type sign)' },
        message: { type: 'string', description: 'a personal message (type sign)' },
      },
      ['type'],
    ),
    run: (c, w, a) => c.evaluateAction(w, a as { type: 'transfer' }),
  },
  prepare_transfer: {
    band: 'prepare',
    description: 'Builds and simulates a native or ERC-20 transfer: the decoded action, gas and fees, the simulation and the policy decision. Nothing is signed.',
    parameters: object({ to: ADDRESS, amount: AMOUNT, token: TOKEN }, ['to', 'amount']),
    run: (c, w, a) => c.evaluateAction(w, { type: 'transfer', ...pick(a, ['to', 'amount', 'token']) }, { simulate: true }),
  },
  prepare_contract_call: {
    band: 'prepare',
    description: 'Builds and simulates a contract call (calldata, or function and args). Nothing is signed.',
    parameters: object(CALL_FIELDS, ['to']),
    run: (c, w, a) => c.evaluateAction(w, { type: 'contract_call', ...pick(a, Object.keys(CALL_FIELDS)) }, { simulate: true }),
  },
  sign_typed_data: {
    band: 'sign',
    description: 'Signs EIP-712 typed data (eth_signTypedData_v4 JSON) if the policy allows it.',
    parameters: object({ typed_data: { type: 'object', description: 'types, primaryType, domain, message' } }, ['typed_data']),
    run: (c, w, a) => c.signTypedData(w, { typed_data: a.typed_data as Record<string, unknown> } as never),
  },
  sign_message: {
    band: 'sign',
    description: 'Signs an EIP-191 personal message (text) if the policy allows it.',
    parameters: object({ message: { type: 'string' } }, ['message']),
    run: (c, w, a) => c.signMessage(w, { message: a.message as string }),
  },
  send_transfer: {
    band: 'broadcast',
    description: 'Sends a native or ERC-20 transfer if the policy allows it. Returns the transaction (submitted once broadcast); poll get_transaction.',
    parameters: object({ to: ADDRESS, amount: AMOUNT, token: TOKEN, confirm: CONFIRM, idempotency_key: IDEMPOTENCY }, ['to', 'amount', 'confirm']),
    run: (c, w, a) => {
      needConfirm(a);
      return c.sendTransfer(w, pick(a, ['to', 'amount', 'token']) as { to: string }, { idempotencyKey: a.idempotency_key as string | undefined });
    },
  },
  send_contract_call: {
    band: 'broadcast',
    description: 'Sends a contract call if the policy allows it.',
    parameters: object({ ...CALL_FIELDS, confirm: CONFIRM, idempotency_key: IDEMPOTENCY }, ['to', 'confirm']),
    run: (c, w, a) => {
      needConfirm(a);
      return c.sendContractCall(w, pick(a, Object.keys(CALL_FIELDS)) as { to: string }, { idempotencyKey: a.idempotency_key as string | undefined });
    },
  },
  pay_x402: {
    band: 'broadcast',
    description: 'Fetches a URL that may answer 402 Payment Required (x402) and pays its exact price if the policy allows the host and the amount; returns the resource and the settlement.',
    parameters: object(
      { url: { type: 'string', description: 'https:// (http:// on localhost)' }, confirm: CONFIRM, idempotency_key: IDEMPOTENCY },
      ['url', 'confirm'],
    ),
    run: (c, w, a) => {
      needConfirm(a);
      return c.payX402(w, { url: a.url as string }, { idempotencyKey: a.idempotency_key as string | undefined });
    },
  },
  speed_up_transaction: {
    band: 'broadcast',
    description: 'A submitted transaction not mined yet is sent again at its nonce with fees raised at least 12.5 %.',
    parameters: object({ id: TX_ID, confirm: CONFIRM }, ['id', 'confirm']),
    run: (c, _w, a) => {
      needConfirm(a);
      return c.speedUpTransaction(a.id as string);
    },
  },
  cancel_transaction: {
    band: 'broadcast',
    description: 'Cancels a held transaction before it runs, or replaces a submitted one by a zero-value self-send (the original may still be mined first).',
    parameters: object({ id: TX_ID, confirm: CONFIRM }, ['id', 'confirm']),
    run: (c, _w, a) => {
      needConfirm(a);
      return c.cancelTransaction(a.id as string);
    },
  },
  freeze_wallet: {
    band: 'freeze',
    description: 'Emergency stop: freezes the wallet at once; the daemon and the cosigner sign nothing more. Only an owner can lift it.',
    parameters: object({ reason: { type: 'string', description: 'why (at most 400 characters)' } }),
    run: (c, w, a) => {
      const reason = typeof a.reason === 'string' ? a.reason.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 400) : 'frozen by the agent';
      return c.freezeWallet(w, { reason });
    },
  },
};

/** Every tool name with its band, in MCP's order. */
export const TOOL_BANDS: Readonly<Record<string, Band | 'freeze'>> = Object.fromEntries(Object.entries(SPECS).map(([name, spec]) => [name, spec.band]));

/**
 * Checks a value against one of the tools' schemas; returns the first problem as
 * `{field, message}`, or null. Covers what the schemas use: types, required, closed
 * objects, patterns, enums, const, integer bounds.
 */
export function checkInput(schema: JsonSchema, value: unknown, field = ''): { field: string; message: string } | null {
  const fail = (message: string) => ({ field: field || '(input)', message });
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('must be an object');
      const record = value as Args;
      for (const name of schema.required ?? []) if (record[name] === undefined) return { field: name, message: 'is required' };
      for (const [name, item] of Object.entries(record)) {
        const sub = schema.properties?.[name];
        if (!sub) {
          if (schema.additionalProperties === false && field === '') return { field: name, message: 'is not an argument of this tool' };
          continue;
        }
        if (item === undefined) continue;
        const problem = checkInput(sub, item, field ? `${field}.${name}` : name);
        if (problem) return problem;
      }
      return null;
    }
    case 'string':
      if (typeof value !== 'string') return fail('must be a string');
      if (schema.pattern && !new RegExp(schema.pattern).test(value)) return fail(`must match ${schema.pattern}`);
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return fail('must be an integer');
      if (schema.minimum !== undefined && value < schema.minimum) return fail(`must be at least ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) return fail(`must be at most ${schema.maximum}`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return fail('must be a boolean');
      break;
    case 'array':
      if (!Array.isArray(value)) return fail('must be an array');
      break;
  }
  if (schema.enum && !schema.enum.includes(value)) return fail(`must be one of ${schema.enum.join(', ')}`);
  if ('const' in schema && value !== schema.const) return fail(`must be ${JSON.stringify(schema.const)}`);
  return null;
}

/** Options of {@link mandateTools}. */
export interface ToolOptions {
  /** The highest band offered (default `read`): a tool above it is not returned. */
  band?: Band;
  /** Offer `freeze_wallet` too (the session needs the `freeze` scope). */
  freeze?: boolean;
  /** The wallet the tools act on; default: the agent key's wallet. */
  wallet?: string;
}

/**
 * The tools of a band for one wallet, keyed by tool name. A tool above the band is
 * absent (the model cannot call what it is not given); the daemon still enforces the
 * credential's own scopes whatever is offered.
 */
export function mandateTools(client: MandateClient, options: ToolOptions = {}): Record<string, MandateTool> {
  const band = options.band ?? 'read';
  if (!BAND_ORDER.includes(band)) throw MandateError.local('INVALID_INPUT', 'validation', `unknown band ${String(band)}`);
  const wallet = options.wallet ?? client.agentWallet;
  if (!wallet) throw MandateError.local('INVALID_INPUT', 'validation', 'the tools need a wallet (options.wallet, or an agent-key client)');
  const highest = BAND_ORDER.indexOf(band);
  const tools: Record<string, MandateTool> = {};
  for (const [name, spec] of Object.entries(SPECS)) {
    const offered = spec.band === 'freeze' ? options.freeze === true : BAND_ORDER.indexOf(spec.band) <= highest;
    if (!offered) continue;
    tools[name] = {
      description: spec.description,
      parameters: spec.parameters,
      async execute(input: unknown): Promise<unknown> {
        try {
          const args = (input ?? {}) as Args;
          // As in MCP: a missing or non-true confirm is CONFIRMATION_REQUIRED, whatever else is wrong.
          if (spec.parameters.properties?.confirm) needConfirm(args);
          const problem = checkInput(spec.parameters, args);
          if (problem) {
            const code = problem.field === 'token' ? 'UNKNOWN_TOKEN' : 'INVALID_INPUT';
            throw MandateError.local(code, 'validation', `${problem.field} ${problem.message}`, { details: { field: problem.field } });
          }
          return await spec.run(client, wallet, args);
        } catch (error) {
          if (error instanceof MandateError) return error.toEnvelope();
          throw error;
        }
      },
    };
  }
  return tools;
}
