// Export of a conversation as Markdown or JSON, and reading an imported JSON file.

import { MAX_MESSAGES, MAX_TITLE, newMessageId, nowSecs } from './conversation';
import type { ChatMessage, ChatSettings, Conversation, Role } from './types';

export const EXPORT_FORMAT = 'hearth.conversation';

/** The JSON export: the conversation as stored, with a format marker. */
export function toJson(c: Conversation): string {
  const out = {
    format: EXPORT_FORMAT,
    format_version: 1,
    id: c.id,
    title: c.title,
    created_at: c.created_at,
    updated_at: c.updated_at,
    settings: c.settings,
    messages: c.messages,
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

function when(secs: number): string {
  return new Date(secs * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

const ROLE_NAMES: Record<Role, string> = { system: 'System', user: 'User', assistant: 'Assistant' };

/** The Markdown export: a heading per turn; answers as written, user text as written. */
export function toMarkdown(c: Conversation): string {
  const lines: string[] = [`# ${c.title || 'Chat'}`, ''];
  const meta = [`Exported from Hearth. Created ${when(c.created_at)}.`];
  if (c.settings.model) meta.push(`Model: ${c.settings.model}.`);
  lines.push(meta.join(' '), '');
  if (c.settings.system_prompt) lines.push('## System prompt', '', c.settings.system_prompt, '');
  for (const m of c.messages) {
    const who = ROLE_NAMES[m.role] + (m.role === 'assistant' && m.model ? ` (${m.model})` : '');
    lines.push(`## ${who}`, '', m.content || '_(empty)_', '');
    if (m.citations?.length) {
      lines.push('Sources:', '');
      for (const s of m.citations) lines.push(`${s.n}. ${s.document}${place(s.page, s.section)}`);
      lines.push('');
    }
    if (m.error) lines.push(`> Error: ${m.error}`, '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

function place(page?: number | null, section?: string | null): string {
  if (page != null) return `, page ${page}`;
  if (section) return `, section "${section}"`;
  return '';
}

/** A file name for an export: the title made safe, and the extension. */
export function exportFileName(c: Conversation, ext: 'md' | 'json'): string {
  const base = (c.title || 'chat')
    .normalize('NFKD')
    .replace(/[^\w\- ]+/g, '')
    .trim()
    .replace(/\s+/g, '-')
    .slice(0, 60);
  return `${base || 'chat'}.${ext}`;
}

export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}

/** What an import creates on the server. */
export interface Imported {
  title: string;
  settings: ChatSettings;
  messages: ChatMessage[];
}

const ROLES = new Set(['system', 'user', 'assistant']);

/**
 * Reads an imported file: Hearth's JSON export, a conversation as the API returns it, an
 * object with `messages` (OpenAI's shape), or a bare array of messages.
 *
 * # Errors
 * [`ImportError`] with a message that says what is wrong (bad JSON, no messages, a message
 * without a known role or text).
 */
export function parseImport(text: string, now = nowSecs()): Imported {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new ImportError(`This file is not valid JSON (${detail}). Choose a conversation exported from Hearth as JSON.`);
  }
  let obj: Record<string, unknown>;
  if (Array.isArray(value)) obj = { messages: value };
  else if (value && typeof value === 'object') obj = value as Record<string, unknown>;
  else throw new ImportError('This JSON file holds no conversation (expected an object with "messages").');
  const list = obj.messages;
  if (!Array.isArray(list)) throw new ImportError('This JSON file has no "messages" list, so it is not a conversation.');
  if (list.length > MAX_MESSAGES) {
    throw new ImportError(`This conversation has ${list.length} messages; at most ${MAX_MESSAGES} can be imported.`);
  }
  const messages: ChatMessage[] = list.map((raw, i) => readMessage(raw, i, now));
  const settings =
    obj.settings && typeof obj.settings === 'object' && !Array.isArray(obj.settings) ? (obj.settings as ChatSettings) : {};
  const firstUser = messages.find((m) => m.role === 'user')?.content ?? '';
  const title = typeof obj.title === 'string' && obj.title.trim() ? obj.title.trim() : firstUser.split('\n')[0] || 'Imported chat';
  return { title: title.slice(0, MAX_TITLE), settings, messages };
}

function readMessage(raw: unknown, i: number, now: number): ChatMessage {
  const where = `Message ${i + 1}`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ImportError(`${where} is not an object.`);
  const m = raw as Record<string, unknown>;
  if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
    throw new ImportError(`${where} has role ${JSON.stringify(m.role ?? null)}; only system, user and assistant can be imported.`);
  }
  let content = m.content;
  // OpenAI's content parts: keep the text ones.
  if (Array.isArray(content)) {
    content = content
      .map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join('');
  }
  if (content === null || content === undefined) content = '';
  if (typeof content !== 'string') throw new ImportError(`${where} has no text content.`);
  return {
    ...(m as Partial<ChatMessage>),
    id: typeof m.id === 'string' && m.id ? m.id : newMessageId(),
    role: m.role as Role,
    content,
    created_at: typeof m.created_at === 'number' ? m.created_at : now,
  };
}
