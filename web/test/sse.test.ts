import { describe, expect, it } from 'vitest';
import { interpretData, SseParser } from '../src/lib/sse';

function feed(pieces: string[]) {
  const p = new SseParser();
  const out = pieces.flatMap((x) => p.push(x));
  p.end();
  return out;
}

const STREAM =
  'data: {"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n' +
  ': keep-alive\n\n' +
  'data: {"id":"a","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n' +
  'data: {"id":"a","choices":[{"index":0,"delta":{"content":"lo ✓"},"finish_reason":null}]}\n\n' +
  'data: {"id":"a","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5},"timings":{"prompt_n":3,"prompt_ms":1.5,"predicted_n":2,"predicted_ms":20,"predicted_per_second":100,"cached_n":0}}\n\n' +
  'data: [DONE]\n\n';

describe('SSE parser', () => {
  it('parses whole events', () => {
    const evs = feed([STREAM]);
    expect(evs.map((e) => e.data.slice(0, 9))).toEqual(['{"id":"a"', '{"id":"a"', '{"id":"a"', '{"id":"a"', '[DONE]']);
    expect(evs[0].event).toBe('message');
  });

  it('gives the same events however the chunks are split', () => {
    const whole = feed([STREAM]);
    for (let size = 1; size < 40; size += 3) {
      const pieces: string[] = [];
      for (let i = 0; i < STREAM.length; i += size) pieces.push(STREAM.slice(i, i + size));
      expect(feed(pieces)).toEqual(whole);
    }
  });

  it('reads CRLF and CR line ends, also split between chunks', () => {
    const crlf = STREAM.replace(/\n/g, '\r\n');
    expect(feed([crlf])).toEqual(feed([STREAM]));
    const pieces = crlf.split('\n').flatMap((s, i, a) => (i < a.length - 1 ? [s, '\n'] : [s]));
    expect(feed(pieces)).toEqual(feed([STREAM]));
    expect(feed(['data: a\r\rdata: b\r\r'])).toEqual([
      { event: 'message', data: 'a' },
      { event: 'message', data: 'b' },
    ]);
  });

  it('gives several events of one chunk', () => {
    expect(feed(['data: 1\n\ndata: 2\n\ndata: 3\n\n']).map((e) => e.data)).toEqual(['1', '2', '3']);
  });

  it('joins multi-line data and reads event, id and retry', () => {
    expect(feed(['event: x\nid: 7\nretry: 100\ndata: a\ndata: b\n\n'])).toEqual([
      { event: 'x', data: 'a\nb', id: '7', retry: 100 },
    ]);
    expect(feed(['data:no-space\n\n'])[0].data).toBe('no-space');
  });

  it('skips comments and keep-alives, and events without data', () => {
    expect(feed([': ping\n\n:\n\nevent: only\n\n'])).toEqual([]);
  });

  it('does not dispatch an event cut off by the end of the stream', () => {
    expect(feed(['data: {"partial": tr'])).toEqual([]);
  });
});

describe('stream data', () => {
  it('knows [DONE], chunks, errors and junk', () => {
    expect(interpretData('[DONE]')).toEqual({ kind: 'done' });
    expect(interpretData('{"id":"x","choices":[]}')).toEqual({ kind: 'chunk', chunk: { id: 'x', choices: [] } });
    expect(interpretData('{"error":{"message":"shutting down","type":"server_error","code":"server_shutting_down"}}')).toEqual({
      kind: 'error',
      error: { message: 'shutting down', type: 'server_error', code: 'server_shutting_down' },
    });
    expect(interpretData('{"error":"plain"}')).toEqual({ kind: 'error', error: { message: 'plain' } });
    expect(interpretData('not json').kind).toBe('invalid');
    expect(interpretData('42').kind).toBe('invalid');
  });
});
