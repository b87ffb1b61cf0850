/**
 * Agent keys (docs/AGENTS.md): an agent signs each request with its own secp256k1 key
 * instead of sending a token. The digest is EIP-712 with the domain
 * `EIP712Domain(string name,string version)` = (`Mandate`, `1`) over
 * `AgentRequest(string method,string path,bytes32 bodyHash,string wallet,uint64 nonce)`,
 * exactly as `crates/mandate-core/src/agent.rs` computes it.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { MandateError } from './errors.js';

const utf8 = new TextEncoder();
const REQUEST_TYPE = 'AgentRequest(string method,string path,bytes32 bodyHash,string wallet,uint64 nonce)';
const DOMAIN_TYPE = 'EIP712Domain(string name,string version)';

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function keccakText(text: string): Uint8Array {
  return keccak_256(utf8.encode(text));
}

/** Lower-case hex without `0x`. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(text: string): Uint8Array {
  const hex = text.trim().replace(/^0x/, '');
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error('not hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function uint64Word(value: bigint): Uint8Array {
  if (value < 0n || value >= 1n << 64n) throw new Error('nonce out of uint64 range');
  const word = new Uint8Array(32);
  let v = value;
  for (let i = 31; i >= 24; i--) {
    word[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return word;
}

/** The EIP-712 domain separator of agent requests. */
export function domainSeparator(): Uint8Array {
  return keccak_256(concat(keccakText(DOMAIN_TYPE), keccakText('Mandate'), keccakText('1')));
}

/**
 * The digest an agent signs for one request: `method` as sent (`POST`), `path` with its
 * query string exactly as sent, the body bytes exactly as sent (empty for none), the
 * wallet id and the nonce (milliseconds since the epoch).
 */
export function requestDigest(method: string, path: string, body: Uint8Array, wallet: string, nonce: number | bigint): Uint8Array {
  const structHash = keccak_256(
    concat(
      keccakText(REQUEST_TYPE),
      keccakText(method),
      keccakText(path),
      sha256(body),
      keccakText(wallet),
      uint64Word(BigInt(nonce)),
    ),
  );
  return keccak_256(concat(new Uint8Array([0x19, 0x01]), domainSeparator(), structHash));
}

/** The EIP-55 checksummed form of a 20-byte address. */
export function checksumAddress(address: Uint8Array): string {
  const hex = toHex(address);
  const hash = toHex(keccakText(hex));
  let out = '0x';
  for (let i = 0; i < hex.length; i++) {
    out += parseInt(hash[i]!, 16) >= 8 ? hex[i]!.toUpperCase() : hex[i];
  }
  return out;
}

/**
 * An agent's key: the file `mandate agent keygen` writes
 * (`{"kind":"agent-secp256k1","secret":"<hex>"}`, mode 0600). The secret stays in a
 * private field: it is in no `inspect`, `JSON.stringify` or error output.
 */
export class AgentKey {
  readonly #secret: Uint8Array;
  #lastNonce = 0;
  /** The agent's address (EIP-55). */
  readonly address: string;

  private constructor(secret: Uint8Array) {
    if (!secp256k1.utils.isValidSecretKey(secret)) {
      throw MandateError.local('INVALID_INPUT', 'validation', 'not a valid secp256k1 secret');
    }
    this.#secret = secret;
    const publicKey = secp256k1.getPublicKey(secret, false);
    this.address = checksumAddress(keccak_256(publicKey.subarray(1)).subarray(12));
  }

  /** Parses the text of an agent key file. */
  static fromFileText(text: string): AgentKey {
    let file: unknown;
    try {
      file = JSON.parse(text);
    } catch {
      throw MandateError.local('INVALID_INPUT', 'validation', 'not an agent key file (JSON with kind and secret)');
    }
    const { kind, secret, ...rest } = (file ?? {}) as { kind?: unknown; secret?: unknown };
    if (kind !== 'agent-secp256k1' || typeof secret !== 'string' || Object.keys(rest).length > 0) {
      throw MandateError.local('INVALID_INPUT', 'validation', 'not an agent key file (kind agent-secp256k1 and secret)');
    }
    return AgentKey.fromSecretHex(secret);
  }

  /** A key from its 32-byte secret in hex. */
  static fromSecretHex(hex: string): AgentKey {
    let bytes: Uint8Array;
    try {
      bytes = fromHex(hex);
    } catch {
      throw MandateError.local('INVALID_INPUT', 'validation', 'the secret is not hex');
    }
    return new AgentKey(bytes);
  }

  /** A new random key. */
  static generate(): AgentKey {
    return new AgentKey(secp256k1.utils.randomSecretKey());
  }

  /** The key file's text (write it with mode 0600). */
  toFileText(): string {
    return `{"kind":"agent-secp256k1","secret":"${toHex(this.#secret)}"}\n`;
  }

  /**
   * The next nonce: the time in milliseconds, and always above the last one this key
   * handed out (two requests in one millisecond get consecutive nonces).
   */
  nextNonce(): number {
    const nonce = Math.max(Date.now(), this.#lastNonce + 1);
    this.#lastNonce = nonce;
    return nonce;
  }

  /** `0x` + r‖s‖v (65 bytes, low s, v = 27|28) over {@link requestDigest}. */
  signRequest(method: string, path: string, body: Uint8Array, wallet: string, nonce: number): string {
    const digest = requestDigest(method, path, body, wallet, nonce);
    // noble's "recovered" format is recovery‖r‖s, low s by default.
    const sig = secp256k1.sign(digest, this.#secret, { prehash: false, lowS: true, format: 'recovered' });
    return `0x${toHex(sig.subarray(1, 65))}${(27 + sig[0]!).toString(16)}`;
  }

  /** The three headers of one signed request. */
  headers(method: string, path: string, body: Uint8Array, wallet: string): Record<string, string> {
    const nonce = this.nextNonce();
    return {
      'Mandate-Agent': this.address,
      'Mandate-Agent-Nonce': String(nonce),
      'Mandate-Agent-Signature': this.signRequest(method, path, body, wallet, nonce),
    };
  }

  toJSON(): { address: string } {
    return { address: this.address };
  }

  toString(): string {
    return `AgentKey(${this.address})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
