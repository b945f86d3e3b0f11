import { describe, expect, it } from 'vitest';
import { ApiError, mapError, parseRetryAfter } from '../src/lib/errors';

const body = (message: string, code?: string) => ({ error: { message, type: 'invalid_request_error', param: null, code } });

describe('error messages', () => {
  it('explains a context overflow', () => {
    const e = mapError(400, body("This model's maximum context length is 2048 tokens...", 'context_length_exceeded'));
    expect(e.kind).toBe('context_length');
    expect(e.message).toMatch(/too long for the model's context/);
    expect(e.message).toMatch(/new chat/);
  });

  it('says when to retry after a 429', () => {
    const e = mapError(429, body('Rate limit reached', 'rate_limit_exceeded'), '12');
    expect(e.kind).toBe('rate_limited');
    expect(e.retryAfter).toBe(12);
    expect(e.message).toMatch(/12 seconds/);
    expect(mapError(429, body('busy', 'too_many_requests'), null).message).toMatch(/in a moment/);
    expect(mapError(429, undefined, '300').message).toMatch(/5 minutes/);
  });

  it('asks for a key on 401', () => {
    expect(mapError(401, body('missing', 'missing_api_key')).kind).toBe('unauthorized');
    expect(mapError(401, body('bad', 'invalid_api_key')).message).toMatch(/did not accept/);
  });

  it("uses the server's message otherwise", () => {
    const e = mapError(415, body('unsupported document type: x.exe', 'unsupported_document_type'));
    expect(e.kind).toBe('unsupported');
    expect(e.message).toBe('Unsupported document type: x.exe.');
    expect(mapError(500, 'not an object').message).toMatch(/HTTP 500/);
    expect(mapError(0, body('the server is shutting down', 'server_shutting_down')).kind).toBe('stream');
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('5')).toBe(5);
    expect(parseRetryAfter(new Date(10_000 + 30_000).toUTCString(), 10_000)).toBe(30);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it('says the server is unreachable behind a failing proxy', () => {
    expect(mapError(502, undefined).kind).toBe('network');
    expect(mapError(502, undefined).message).toMatch(/unreachable/);
  });

  it('is an Error', () => {
    expect(mapError(404, body('nope', 'conversation_not_found'))).toBeInstanceOf(ApiError);
  });
});
