// Where conversations are kept: the server (`/api/v1/conversations`), or, when the server
// has no such routes, this tab's memory (same contract, so the rest of the UI does not care).

import * as api from './api';
import { ApiError } from './errors';
import { newConversationId, nowSecs } from './conversation';
import type { ChatMessage, ChatSettings, Conversation, ConversationSummary } from './types';

export interface NewConversation {
  title?: string;
  settings?: ChatSettings;
  messages?: ChatMessage[];
}

export interface Patch {
  title?: string;
  settings?: ChatSettings;
  messages?: ChatMessage[];
  version?: number;
}

export interface History {
  /** True for the server, false for the in-memory fallback. */
  readonly persistent: boolean;
  list(q: string, limit?: number): Promise<ConversationSummary[]>;
  get(id: string): Promise<Conversation>;
  create(body: NewConversation, id?: string): Promise<Conversation>;
  patch(id: string, body: Patch): Promise<Conversation>;
  remove(id: string): Promise<void>;
}

export const serverHistory: History = {
  persistent: true,
  list: (q, limit) => api.listConversations(q, limit),
  get: (id) => api.getConversation(id),
  create: (body) => api.createConversation(body),
  patch: (id, body) => api.patchConversation(id, body),
  remove: (id) => api.deleteConversation(id),
};

/** Did the server answer that it has no conversation routes (an older server)? */
export function isMissingRoute(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 404 || e.status === 405) && e.code !== 'conversation_not_found';
}

function notFound(id: string): ApiError {
  return new ApiError('not_found', `No conversation ${id}.`, { status: 404, code: 'conversation_not_found' });
}

/** The in-memory fallback: the server's contract (versions, 409 on a stale version, 404). */
export class MemoryHistory implements History {
  readonly persistent = false;
  private items = new Map<string, Conversation>();

  async list(q: string, limit = 100): Promise<ConversationSummary[]> {
    const needle = q.trim().toLowerCase();
    return [...this.items.values()]
      .filter(
        (c) =>
          !needle ||
          c.title.toLowerCase().includes(needle) ||
          c.messages.some((m) => m.content.toLowerCase().includes(needle)),
      )
      .sort((a, b) => b.updated_at - a.updated_at || b.created_at - a.created_at)
      .slice(0, limit)
      .map(({ id, title, created_at, updated_at, version, messages }) => ({
        id,
        object: 'conversation',
        title,
        created_at,
        updated_at,
        version,
        message_count: messages.length,
      }));
  }

  async get(id: string): Promise<Conversation> {
    const c = this.items.get(id);
    if (!c) throw notFound(id);
    return structuredClone(c);
  }

  async create(body: NewConversation, id = newConversationId()): Promise<Conversation> {
    const now = nowSecs();
    const c: Conversation = {
      id,
      object: 'conversation',
      title: (body.title ?? '').slice(0, 200),
      created_at: now,
      updated_at: now,
      version: 1,
      settings: structuredClone(body.settings ?? {}),
      messages: structuredClone(body.messages ?? []),
    };
    this.items.set(id, c);
    return structuredClone(c);
  }

  async patch(id: string, body: Patch): Promise<Conversation> {
    const c = this.items.get(id);
    if (!c) throw notFound(id);
    if (body.version !== undefined && body.version !== c.version) {
      throw new ApiError('conflict', 'The conversation was changed since you loaded it.', {
        status: 409,
        code: 'conversation_conflict',
      });
    }
    const next: Conversation = {
      ...c,
      ...(body.title !== undefined ? { title: body.title.slice(0, 200) } : {}),
      ...(body.settings !== undefined ? { settings: structuredClone(body.settings) } : {}),
      ...(body.messages !== undefined ? { messages: structuredClone(body.messages) } : {}),
      version: c.version + 1,
      updated_at: nowSecs(),
    };
    this.items.set(id, next);
    return structuredClone(next);
  }

  async remove(id: string): Promise<void> {
    if (!this.items.delete(id)) throw notFound(id);
  }
}
