// The one module that talks to the server: typed requests, the chat stream, errors mapped to
// readable messages, the API key on every call, and a retry after the user gives a key.

import { ApiError, mapError, UNREACHABLE } from './errors';
import { interpretData, SseParser } from './sse';
import type {
  ChatChunk,
  ChatMessage,
  ChatRequest,
  ChatSettings,
  CollectionInfo,
  Conversation,
  ConversationSummary,
  DocumentInfo,
  Job,
  LoadedModels,
  ModelObject,
  PullJob,
} from './types';

const KEY_STORAGE = 'hearth.apiKey';

function storage(): Storage | undefined {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined;
  }
}

export function getApiKey(): string {
  return storage()?.getItem(KEY_STORAGE) ?? '';
}

export function setApiKey(key: string): void {
  const s = storage();
  if (!s) return;
  if (key) s.setItem(KEY_STORAGE, key);
  else s.removeItem(KEY_STORAGE);
}

/**
 * Called on a 401 with the readable reason; resolves true when the user entered a key (the
 * call is then retried), false when they dismissed the dialog.
 */
type AuthHandler = (reason: string) => Promise<boolean>;
let authHandler: AuthHandler | undefined;
/** One dialog for all calls that hit a 401 at the same time. */
let authPending: Promise<boolean> | undefined;

export function setAuthHandler(h: AuthHandler | undefined): void {
  authHandler = h;
}

async function askForKey(reason: string): Promise<boolean> {
  if (!authHandler) return false;
  authPending ??= authHandler(reason).finally(() => {
    authPending = undefined;
  });
  return authPending;
}

interface Options {
  body?: unknown;
  form?: FormData;
  signal?: AbortSignal;
  accept?: string;
  /** A 401 is this call's own answer: no key dialog (e.g. `/metrics`). */
  noAuthPrompt?: boolean;
}

function headers(opts: Options): Headers {
  const h = new Headers();
  const key = getApiKey();
  if (key) h.set('Authorization', `Bearer ${key}`);
  if (opts.body !== undefined) h.set('Content-Type', 'application/json');
  h.set('Accept', opts.accept ?? 'application/json');
  return h;
}

async function errorFrom(res: Response): Promise<ApiError> {
  let body: unknown;
  const text = await res.text().catch(() => '');
  try {
    body = JSON.parse(text);
  } catch {
    body = text ? { error: { message: text.slice(0, 300) } } : undefined;
  }
  return mapError(res.status, body, res.headers.get('Retry-After'));
}

function isAbort(e: unknown): boolean {
  return e instanceof DOMException ? e.name === 'AbortError' : (e as { name?: string })?.name === 'AbortError';
}

/** Sends a request; a 401 asks for a key and retries; any failure is an [`ApiError`]. */
async function send(method: string, path: string, opts: Options = {}): Promise<Response> {
  for (;;) {
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers: headers(opts),
        body: opts.form ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
        signal: opts.signal,
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      if (isAbort(e)) throw new ApiError('aborted', 'Stopped.');
      throw new ApiError('network', UNREACHABLE);
    }
    if (res.ok) return res;
    const err = await errorFrom(res);
    if (err.kind === 'unauthorized' && !opts.noAuthPrompt && (await askForKey(err.message))) continue;
    throw err;
  }
}

async function json<T>(method: string, path: string, opts: Options = {}): Promise<T> {
  const res = await send(method, path, opts);
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiError('server', `The server sent an answer that is not JSON (${method} ${path}).`, {
      status: res.status,
    });
  }
}

const enc = encodeURIComponent;

// Models and the server ---------------------------------------------------------------------

export async function listModels(): Promise<ModelObject[]> {
  return (await json<{ data: ModelObject[] }>('GET', '/v1/models')).data ?? [];
}

export function loadedModels(signal?: AbortSignal): Promise<LoadedModels> {
  return json<LoadedModels>('GET', '/models/loaded', { signal });
}

/** Starts pulling `model` from the hub (or joins the pull of it that runs). */
export function startPull(model: string): Promise<PullJob> {
  return json<PullJob>('POST', '/models/pull', { body: { model } });
}

export async function pullJobs(signal?: AbortSignal): Promise<PullJob[]> {
  return (await json<{ data: PullJob[] }>('GET', '/models/pull', { signal, noAuthPrompt: true })).data ?? [];
}

/** Cancels a running pull, or forgets a finished one. */
export function cancelPull(id: string): Promise<PullJob> {
  return json<PullJob>('DELETE', `/models/pull/${enc(id)}`);
}

/** Prometheus text of `/metrics`. 401/403 are errors of their own (the view says so). */
export async function metricsText(signal?: AbortSignal): Promise<string> {
  const res = await send('GET', '/metrics', { signal, accept: 'text/plain', noAuthPrompt: true });
  return res.text();
}

// Chat --------------------------------------------------------------------------------------

/** What a chat stream yields, in order. */
export type StreamEvent =
  | { type: 'chunk'; chunk: ChatChunk }
  | { type: 'done' };

/**
 * Streams a chat completion. Yields parsed chunks, then `done` on `data: [DONE]`. An
 * `{"error": ...}` event inside the stream, or a stream that ends without `[DONE]`, throws an
 * [`ApiError`]; aborting `signal` throws kind `aborted` (and closes the connection, so the
 * server frees the sequence).
 */
export async function* streamChat(req: ChatRequest, signal: AbortSignal): AsyncGenerator<StreamEvent> {
  const res = await send('POST', '/v1/chat/completions', { body: req, signal, accept: 'text/event-stream' });
  if (!res.body) throw new ApiError('stream', 'The server sent no stream.');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        if (isAbort(e) || signal.aborted) throw new ApiError('aborted', 'Stopped.');
        throw new ApiError('stream', 'The connection to the server was lost before the answer finished.');
      }
      const text = r.done ? decoder.decode() : decoder.decode(r.value, { stream: true });
      for (const ev of parser.push(text)) {
        const item = interpretData<ChatChunk>(ev.data);
        if (item.kind === 'done') {
          yield { type: 'done' };
          return;
        }
        if (item.kind === 'error') throw mapError(0, { error: item.error });
        if (item.kind === 'chunk') yield { type: 'chunk', chunk: item.chunk };
      }
      if (r.done) {
        parser.end();
        throw new ApiError('stream', 'The connection closed before the answer finished.');
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Conversations (the server's history) ---------------------------------------------------

export async function listConversations(q: string, limit = 100, signal?: AbortSignal): Promise<ConversationSummary[]> {
  const params = new URLSearchParams({ limit: String(limit) });
  if (q) params.set('q', q);
  return (await json<{ data: ConversationSummary[] }>('GET', `/api/v1/conversations?${params}`, { signal })).data ?? [];
}

export function getConversation(id: string): Promise<Conversation> {
  return json<Conversation>('GET', `/api/v1/conversations/${enc(id)}`);
}

export function createConversation(body: {
  title?: string;
  settings?: ChatSettings;
  messages?: ChatMessage[];
}): Promise<Conversation> {
  return json<Conversation>('POST', '/api/v1/conversations', { body });
}

export function patchConversation(
  id: string,
  body: { title?: string; settings?: ChatSettings; messages?: ChatMessage[]; version?: number },
): Promise<Conversation> {
  return json<Conversation>('PATCH', `/api/v1/conversations/${enc(id)}`, { body });
}

export async function deleteConversation(id: string): Promise<void> {
  await json('DELETE', `/api/v1/conversations/${enc(id)}`);
}

// Collections, documents, jobs --------------------------------------------------------------

export async function listCollections(): Promise<CollectionInfo[]> {
  return (await json<{ data: CollectionInfo[] }>('GET', '/collections')).data ?? [];
}

export function getCollection(name: string): Promise<CollectionInfo> {
  return json<CollectionInfo>('GET', `/collections/${enc(name)}`);
}

/** Creates a collection; one that exists already is fine (409). */
export async function ensureCollection(name: string): Promise<void> {
  try {
    await json('POST', '/collections', { body: { name } });
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) return;
    throw e;
  }
}

export async function createCollection(name: string): Promise<CollectionInfo> {
  return json<CollectionInfo>('POST', '/collections', { body: { name } });
}

export async function deleteCollection(name: string): Promise<void> {
  await json('DELETE', `/collections/${enc(name)}`);
}

export async function listDocuments(collection: string): Promise<DocumentInfo[]> {
  return (await json<{ data: DocumentInfo[] }>('GET', `/collections/${enc(collection)}/documents`)).data ?? [];
}

export async function deleteDocument(collection: string, id: number): Promise<void> {
  await json('DELETE', `/collections/${enc(collection)}/documents/${id}`);
}

/**
 * Uploads one file (a bad one is a 4xx naming it; one request per file keeps the others
 * going). Answers with the file's ingestion job.
 */
export async function uploadDocument(collection: string, file: File, metadata?: Record<string, unknown>): Promise<Job> {
  const form = new FormData();
  form.append('file', file, file.name);
  if (metadata) form.append('metadata', JSON.stringify(metadata));
  const res = await json<{ data: Job[] }>('POST', `/collections/${enc(collection)}/documents`, { form });
  const job = res.data?.[0];
  if (!job) throw new ApiError('server', `The server accepted ${file.name} but started no job for it.`);
  return job;
}

export function getJob(id: string, signal?: AbortSignal): Promise<Job> {
  return json<Job>('GET', `/jobs/${enc(id)}`, { signal });
}
