// A server-sent events parser (the WHATWG "event stream" grammar), fed with text as it
// arrives. Chunks may split anywhere: inside a field, between CR and LF, inside a UTF-8
// sequence (the caller decodes with a streaming TextDecoder, so this sees whole characters).

/** One dispatched event. */
export interface SseEvent {
  /** `event:` field, `message` when absent. */
  event: string;
  /** The `data:` lines joined by `\n`. */
  data: string;
  /** `id:` field, if any. */
  id?: string;
  /** `retry:` field, if any. */
  retry?: number;
}

export class SseParser {
  /** Text of the line not yet ended. */
  private line = '';
  /** The previous chunk ended with CR: an LF at the start of the next one is the same break. */
  private pendingCr = false;
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private retry: number | undefined;
  private sawData = false;

  /** Feeds text; returns the events completed by it. */
  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    let start = 0;
    let i = 0;
    if (this.pendingCr && chunk.startsWith('\n')) {
      start = i = 1;
    }
    this.pendingCr = false;
    for (; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line += chunk.slice(start, i);
      this.endLine(out);
      if (c === 13) {
        if (i + 1 < chunk.length) {
          if (chunk.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
    }
    this.line += chunk.slice(start);
    return out;
  }

  /**
   * The stream ended. An event without its terminating blank line is not dispatched (as the
   * spec says), so a cut-off `data:` line is never mistaken for a whole one.
   */
  end(): SseEvent[] {
    this.line = '';
    this.reset();
    return [];
  }

  private endLine(out: SseEvent[]): void {
    const line = this.line;
    this.line = '';
    if (line === '') {
      if (this.sawData) {
        out.push({
          event: this.event || 'message',
          data: this.data.join('\n'),
          ...(this.id !== undefined ? { id: this.id } : {}),
          ...(this.retry !== undefined ? { retry: this.retry } : {}),
        });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return; // a comment or keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.sawData = true;
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  private reset(): void {
    this.data = [];
    this.event = '';
    this.id = undefined;
    this.retry = undefined;
    this.sawData = false;
  }
}

/** What one `data:` payload of a chat completion stream means. */
export type StreamItem<T> =
  | { kind: 'done' }
  | { kind: 'chunk'; chunk: T }
  | { kind: 'error'; error: { message: string; type?: string; param?: string | null; code?: string | null } }
  | { kind: 'invalid'; data: string };

/** Interprets one event's data: `[DONE]`, a JSON chunk, or an `{"error": ...}` object. */
export function interpretData<T>(data: string): StreamItem<T> {
  const text = data.trim();
  if (text === '[DONE]') return { kind: 'done' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', data };
  }
  if (value && typeof value === 'object' && 'error' in value) {
    const e = (value as { error: unknown }).error;
    if (e && typeof e === 'object') {
      const err = e as { message?: unknown; type?: string; param?: string | null; code?: string | null };
      return {
        kind: 'error',
        error: { ...err, message: typeof err.message === 'string' ? err.message : 'the stream failed' },
      };
    }
    if (typeof e === 'string') return { kind: 'error', error: { message: e } };
  }
  if (!value || typeof value !== 'object') return { kind: 'invalid', data };
  return { kind: 'chunk', chunk: value as T };
}
