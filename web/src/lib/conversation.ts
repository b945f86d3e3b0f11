// Pure updates of a conversation: each takes a conversation and returns a new one (the
// input is never changed), so the store can swap them in and Svelte redraws what changed.

import type { ChatMessage, ChatRequest, ChatSettings, Citation, Conversation, Role, Timings, Usage } from './types';

export const MAX_TITLE = 200;
export const MAX_MESSAGES = 10_000;

/** Seconds since the epoch. */
export function nowSecs(): number {
  return Math.floor(Date.now() / 1000);
}

function hex(bytes: number): string {
  const a = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(a);
  return [...a].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** A conversation id as the server makes them (`conv-` and 16 hex digits). */
export function newConversationId(): string {
  return `conv-${hex(8)}`;
}

export function newMessageId(): string {
  return `msg-${hex(8)}`;
}

export function newConversation(settings: ChatSettings, now = nowSecs(), id = newConversationId()): Conversation {
  return { id, object: 'conversation', title: '', created_at: now, updated_at: now, version: 0, settings: { ...settings }, messages: [] };
}

/** A title from the first user message: its first line, shortened. */
export function titleFrom(text: string, max = 60): string {
  const line = text.trim().split('\n')[0].replace(/\s+/g, ' ').trim();
  if (line.length <= max) return line || 'New chat';
  const cut = line.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

function touch(c: Conversation, messages: ChatMessage[], now: number): Conversation {
  return { ...c, messages, updated_at: now };
}

function mapMessage(c: Conversation, id: string, f: (m: ChatMessage) => ChatMessage, now = nowSecs()): Conversation {
  let found = false;
  const messages = c.messages.map((m) => {
    if (m.id !== id) return m;
    found = true;
    return f(m);
  });
  return found ? touch(c, messages, now) : c;
}

/** Adds a message; the first user message also names an untitled conversation. */
export function appendMessage(
  c: Conversation,
  role: Role,
  content: string,
  extra: Partial<ChatMessage> = {},
  now = nowSecs(),
): Conversation {
  const m: ChatMessage = { id: extra.id ?? newMessageId(), role, content, created_at: now, ...extra };
  const next = touch(c, [...c.messages, m], now);
  if (!c.title && role === 'user') next.title = titleFrom(content);
  return next;
}

/** Appends streamed text to a message. */
export function appendDelta(c: Conversation, id: string, delta: string): Conversation {
  if (!delta) return c;
  return mapMessage(c, id, (m) => ({ ...m, content: m.content + delta }));
}

export function setCitations(c: Conversation, id: string, citations: Citation[]): Conversation {
  return mapMessage(c, id, (m) => ({ ...m, citations }));
}

/** What a finished stream reports. */
export interface Finish {
  model?: string;
  timings?: Timings;
  usage?: Usage;
  ttft_ms?: number;
  finish_reason?: string;
}

function applyFinish(m: ChatMessage, f: Finish): ChatMessage {
  const next: ChatMessage = { ...m };
  if (f.model !== undefined) next.model = f.model;
  if (f.timings !== undefined) next.timings = f.timings;
  if (f.usage !== undefined) next.usage = f.usage;
  if (f.ttft_ms !== undefined) next.ttft_ms = f.ttft_ms;
  if (f.finish_reason !== undefined) next.finish_reason = f.finish_reason;
  return next;
}

export function finishMessage(c: Conversation, id: string, f: Finish): Conversation {
  return mapMessage(c, id, (m) => {
    const next = applyFinish(m, f);
    delete next.error;
    return next;
  });
}

/** The answer failed: its partial text is kept with a readable error. */
export function failMessage(c: Conversation, id: string, error: string, f: Finish = {}): Conversation {
  return mapMessage(c, id, (m) => ({ ...applyFinish(m, f), error }));
}

/** Replaces a user message's text and drops everything after it (edit and resend). */
export function editAndTruncate(c: Conversation, id: string, content: string, now = nowSecs()): Conversation {
  const i = c.messages.findIndex((m) => m.id === id);
  if (i < 0) return c;
  const edited = { ...c.messages[i], content, created_at: now };
  return touch(c, [...c.messages.slice(0, i), edited], now);
}

export function deleteMessage(c: Conversation, id: string, now = nowSecs()): Conversation {
  const messages = c.messages.filter((m) => m.id !== id);
  return messages.length === c.messages.length ? c : touch(c, messages, now);
}

/**
 * Removes the last assistant message so it can be generated again; undefined when the
 * conversation does not end with one, or has no user message to answer.
 */
export function prepareRegenerate(c: Conversation, now = nowSecs()): Conversation | undefined {
  const last = c.messages.at(-1);
  if (!last || last.role !== 'assistant') return undefined;
  const rest = c.messages.slice(0, -1);
  if (!rest.some((m) => m.role === 'user')) return undefined;
  return touch(c, rest, now);
}

/** The last message is an assistant answer: it may be regenerated. */
export function canRegenerate(c: Conversation): boolean {
  return prepareRegenerate(c) !== undefined;
}

export function rename(c: Conversation, title: string, now = nowSecs()): Conversation {
  return { ...c, title: title.trim().slice(0, MAX_TITLE), updated_at: now };
}

export function withSettings(c: Conversation, settings: ChatSettings, now = nowSecs()): Conversation {
  return { ...c, settings: { ...settings }, updated_at: now };
}

/** The messages sent to the model: the system prompt, then every turn that did not fail. */
export function requestMessages(c: Conversation): ChatRequest['messages'] {
  const out: ChatRequest['messages'] = [];
  const system = c.settings.system_prompt?.trim();
  if (system) out.push({ role: 'system', content: system });
  for (const m of c.messages) {
    if (m.role === 'assistant' && (m.error || !m.content)) continue;
    out.push({ role: m.role, content: m.content });
  }
  return out;
}

/** The collection a conversation's answers are grounded in, if any. */
export function ragCollection(c: Conversation): string | undefined {
  if (c.settings.collection) return c.settings.collection;
  if (c.settings.has_documents) return c.id;
  return undefined;
}

/** The body of the chat request for a conversation. */
export function chatRequest(c: Conversation, model: string): ChatRequest {
  const s = c.settings;
  const req: ChatRequest = {
    model,
    messages: requestMessages(c),
    stream: true,
    stream_options: { include_usage: true },
  };
  const num = ['temperature', 'top_p', 'top_k', 'min_p', 'max_tokens', 'repeat_penalty', 'seed'] as const;
  for (const k of num) {
    const v = s[k];
    if (typeof v === 'number' && Number.isFinite(v)) req[k] = v;
  }
  const stop = (s.stop ?? []).filter((x) => x.length > 0).slice(0, 4);
  if (stop.length) req.stop = stop;
  const collection = ragCollection(c);
  if (collection) req.rag = s.rag_top_k ? { collection, top_k: s.rag_top_k } : { collection };
  return req;
}

// Saving and conflicts ------------------------------------------------------------------

/** What the UI holds for the open conversation. */
export interface ChatState {
  conversation: Conversation;
  /** Stored on the server (or the in-memory fallback) at least once. */
  stored: boolean;
  /** Changed since the last save. */
  dirty: boolean;
  /** The conversation as the server has it (last loaded or saved): what local edits are based on. */
  base?: Conversation;
  /** Shown once above the conversation (e.g. it changed elsewhere). */
  notice?: string;
}

export function stateOf(conversation: Conversation, stored: boolean): ChatState {
  return { conversation, stored, dirty: false, base: stored ? conversation : undefined };
}

/** A local change that needs saving. */
export function change(s: ChatState, conversation: Conversation): ChatState {
  return conversation === s.conversation ? s : { ...s, conversation, dirty: true };
}

/**
 * The server stored a save: its version (and timestamps) are taken, while any text that
 * arrived locally since the save was sent is kept.
 */
export function saved(s: ChatState, sent: Conversation, server: Conversation): ChatState {
  const changedSince = s.conversation !== sent;
  const stored: Conversation = { ...server, settings: server.settings ?? sent.settings, messages: server.messages ?? sent.messages };
  const conversation: Conversation = changedSince
    ? { ...s.conversation, id: server.id, version: server.version, created_at: server.created_at }
    : stored;
  return { ...s, conversation, stored: true, dirty: changedSince, base: stored };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A save hit `conversation_conflict` and `server` is the stored version. When the other
 * change did not touch the messages (e.g. a rename in another tab), our messages are put on
 * top of it (titles and settings: ours where we changed them, else theirs) and saving goes on.
 * Otherwise undefined: the two histories differ and [`conflicted`] applies.
 */
export function rebase(s: ChatState, server: Conversation): ChatState | undefined {
  const base = s.base;
  if (!base || !same(server.messages ?? [], base.messages)) return undefined;
  const mine = s.conversation;
  const conversation: Conversation = {
    ...server,
    title: mine.title !== base.title ? mine.title : server.title,
    settings: same(mine.settings, base.settings) ? (server.settings ?? {}) : mine.settings,
    messages: mine.messages,
  };
  return { ...s, conversation, base: server, dirty: true, stored: true };
}

export const CONFLICT_NOTICE =
  'This conversation was changed in another tab or browser, so the latest version was loaded. Your last change was not saved.';

/** The server's version replaces ours (the histories differ), with a notice. */
export function conflicted(s: ChatState, server: Conversation): ChatState {
  return { conversation: server, stored: true, dirty: false, base: server, notice: CONFLICT_NOTICE };
}
