// Errors of API calls, and the readable messages the UI shows for them.

/** Why a call failed, for the UI's decisions (retry, ask for a key, degrade). */
export type ErrorKind =
  | 'network' // no answer at all
  | 'unauthorized' // 401
  | 'forbidden' // 403
  | 'rate_limited' // 429
  | 'context_length' // the prompt does not fit the model's context
  | 'not_found'
  | 'conflict' // 409
  | 'too_large' // 413
  | 'unsupported' // 415
  | 'invalid' // other 4xx
  | 'unavailable' // 503
  | 'server' // other 5xx
  | 'stream' // an error event inside a stream, or a stream cut short
  | 'aborted'; // the user stopped it

export class ApiError extends Error {
  readonly kind: ErrorKind;
  /** HTTP status; 0 when there was none (network, in-stream). */
  readonly status: number;
  /** OpenAI `error.code`, e.g. `context_length_exceeded`, `conversation_conflict`. */
  readonly code?: string;
  readonly type?: string;
  readonly param?: string;
  /** The server's own message. */
  readonly serverMessage?: string;
  /** Seconds from `Retry-After`. */
  readonly retryAfter?: number;

  constructor(
    kind: ErrorKind,
    message: string,
    extra: { status?: number; code?: string; type?: string; param?: string; serverMessage?: string; retryAfter?: number } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = extra.status ?? 0;
    this.code = extra.code;
    this.type = extra.type;
    this.param = extra.param;
    this.serverMessage = extra.serverMessage;
    this.retryAfter = extra.retryAfter;
  }
}

/** `Retry-After` as seconds (delta-seconds or an HTTP date), if it can be read. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, Math.ceil((t - now) / 1000));
}

function retryPhrase(seconds: number | undefined): string {
  if (seconds === undefined) return 'Try again in a moment.';
  if (seconds <= 1) return 'Try again in a second.';
  if (seconds < 90) return `Try again in ${seconds} seconds.`;
  return `Try again in ${Math.ceil(seconds / 60)} minutes.`;
}

interface ErrorDetail {
  message?: string;
  type?: string;
  param?: string | null;
  code?: string | null;
}

/** Reads `{"error": {...}}` from a body, whatever else it may be. */
export function errorDetail(body: unknown): ErrorDetail | undefined {
  if (!body || typeof body !== 'object' || !('error' in body)) return undefined;
  const e = (body as { error: unknown }).error;
  if (typeof e === 'string') return { message: e };
  if (e && typeof e === 'object') return e as ErrorDetail;
  return undefined;
}

function withPeriod(s: string): string {
  const t = s.trim();
  if (!t) return t;
  const cap = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(cap) ? cap : `${cap}.`;
}

/**
 * Maps an HTTP error (status, parsed body, `Retry-After`) or an in-stream error object
 * (status 0) to an [`ApiError`] with a message a person can act on.
 */
export function mapError(status: number, body: unknown, retryAfterHeader?: string | null): ApiError {
  const d = errorDetail(body) ?? {};
  const code = d.code ?? undefined;
  const serverMessage = d.message;
  const extra = { status, code, type: d.type, param: d.param ?? undefined, serverMessage };
  const said = serverMessage ? withPeriod(serverMessage) : '';
  if (code === 'context_length_exceeded') {
    return new ApiError(
      'context_length',
      "This conversation is too long for the model's context window. Start a new chat, or lower Max tokens in the settings." +
        (said ? ` (${said})` : ''),
      extra,
    );
  }
  const retryAfter = parseRetryAfter(retryAfterHeader);
  if (status === 401 || code === 'missing_api_key' || code === 'invalid_api_key') {
    const msg =
      code === 'invalid_api_key'
        ? 'The server did not accept this API key. Enter a valid key to continue.'
        : 'This server needs an API key. Enter it to continue.';
    return new ApiError('unauthorized', msg, extra);
  }
  if (status === 403) {
    return new ApiError('forbidden', said || 'This API key may not do that.', extra);
  }
  if (status === 429 || code === 'rate_limit_exceeded' || code === 'server_overloaded') {
    const what = code === 'rate_limit_exceeded' ? 'The rate limit of this API key is reached.' : 'The server is busy.';
    return new ApiError('rate_limited', `${what} ${retryPhrase(retryAfter)}`, { ...extra, retryAfter });
  }
  if (status === 502) return new ApiError('network', UNREACHABLE, extra);
  if (status === 409) return new ApiError('conflict', said || 'That conflicts with the current state.', extra);
  if (status === 404) return new ApiError('not_found', said || 'Not found.', extra);
  if (status === 413) return new ApiError('too_large', said || 'That is larger than the server accepts.', extra);
  if (status === 415) return new ApiError('unsupported', said || 'That type is not supported.', extra);
  if (status === 503) {
    return new ApiError('unavailable', `${said || 'The server is unavailable.'} ${retryPhrase(retryAfter)}`.trim(), {
      ...extra,
      retryAfter,
    });
  }
  if (status >= 500) return new ApiError('server', said || `The server failed (HTTP ${status}).`, extra);
  if (status >= 400) return new ApiError('invalid', said || `The request was refused (HTTP ${status}).`, extra);
  if (status === 0) return new ApiError('stream', said || 'The answer failed.', extra);
  return new ApiError('server', said || `Unexpected answer (HTTP ${status}).`, extra);
}

export const UNREACHABLE =
  'The server is unreachable. Check that Hearth is running and that this page can reach it, then retry.';

/** A readable message for anything thrown. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message || String(e);
  return String(e);
}
