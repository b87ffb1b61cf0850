import type { ErrorCategory, ErrorCode } from './schema.gen.js';

/** The daemon's error envelope (docs/API.md, "Errors"): `{"error": {...}}`. */
export interface ErrorBody {
  category: ErrorCategory;
  code: ErrorCode;
  message: string;
  required_action: string;
  retryable: boolean;
  retry_after: number | null;
  details: Record<string, unknown>;
}

/**
 * Every refusal, from the daemon or from this client, as one exception. `code` is the
 * daemon's stable code (`crates/mandate-core/src/error_code.rs`); a transport failure is
 * `PEER_UNAVAILABLE` (status 0) and an answer that is not the envelope is `INTERNAL`.
 */
export class MandateError extends Error {
  /** The stable machine code, e.g. `POLICY_DENIED`. */
  readonly code: ErrorCode;
  /** `validation`, `authentication`, `policy`, … */
  readonly category: ErrorCategory;
  /** Whether the same request may succeed later unchanged. */
  readonly retryable: boolean;
  /** Seconds to wait before retrying (`RATE_LIMITED`, `DATABASE_UNAVAILABLE`), else null. */
  readonly retryAfter: number | null;
  /** The HTTP status, or 0 when no answer arrived (or the client refused before sending). */
  readonly status: number;
  /** What to do, in a few words (fixed per code). */
  readonly requiredAction: string;
  /** Per code: the policy decision for a denial, `{field}` for bad input, … */
  readonly details: Record<string, unknown>;
  /** The `Idempotency-Key` the failed send carried: retry with the same one. */
  readonly idempotencyKey: string | undefined;

  constructor(status: number, body: ErrorBody, idempotencyKey?: string) {
    super(body.message);
    this.name = 'MandateError';
    this.status = status;
    this.code = body.code;
    this.category = body.category;
    this.retryable = body.retryable;
    this.retryAfter = body.retry_after;
    this.requiredAction = body.required_action;
    this.details = body.details ?? {};
    this.idempotencyKey = idempotencyKey;
  }

  /** The envelope as the daemon sends it (what a tool gives a model). */
  toEnvelope(): { error: ErrorBody } {
    return {
      error: {
        category: this.category,
        code: this.code,
        message: this.message,
        required_action: this.requiredAction,
        retryable: this.retryable,
        retry_after: this.retryAfter,
        details: this.details,
      },
    };
  }

  /** An error raised by this client before or instead of a daemon's answer. */
  static local(
    code: ErrorCode,
    category: ErrorCategory,
    message: string,
    options: { retryable?: boolean; requiredAction?: string; details?: Record<string, unknown>; status?: number; idempotencyKey?: string } = {},
  ): MandateError {
    return new MandateError(
      options.status ?? 0,
      {
        code,
        category,
        message,
        required_action: options.requiredAction ?? '',
        retryable: options.retryable ?? false,
        retry_after: null,
        details: options.details ?? {},
      },
      options.idempotencyKey,
    );
  }
}

/** Whether a parsed JSON body is the daemon's error envelope. */
export function isEnvelope(value: unknown): value is { error: ErrorBody } {
  if (typeof value !== 'object' || value === null) return false;
  const error = (value as { error?: unknown }).error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as ErrorBody).code === 'string' &&
    typeof (error as ErrorBody).category === 'string' &&
    typeof (error as ErrorBody).message === 'string'
  );
}
