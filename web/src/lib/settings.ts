// Chat settings: the form's fields, their limits, and turning form text into settings.

import type { ChatSettings, ModelObject } from './types';

export interface NumberField {
  key: 'temperature' | 'top_p' | 'top_k' | 'min_p' | 'max_tokens' | 'repeat_penalty' | 'seed' | 'rag_top_k';
  label: string;
  min: number;
  max: number;
  step: number;
  integer: boolean;
  hint: string;
}

/** The sampling fields, with the ranges the server accepts. Empty means the server's default. */
export const NUMBER_FIELDS: NumberField[] = [
  { key: 'temperature', label: 'Temperature', min: 0, max: 2, step: 0.05, integer: false, hint: '0 is greedy; higher is more varied' },
  { key: 'top_p', label: 'Top P', min: 0, max: 1, step: 0.01, integer: false, hint: 'nucleus sampling, 0-1' },
  { key: 'top_k', label: 'Top K', min: 0, max: 1000, step: 1, integer: true, hint: '0 disables' },
  { key: 'min_p', label: 'Min P', min: 0, max: 1, step: 0.01, integer: false, hint: '0-1' },
  { key: 'max_tokens', label: 'Max tokens', min: 1, max: 1_048_576, step: 1, integer: true, hint: 'longest answer' },
  { key: 'repeat_penalty', label: 'Repeat penalty', min: 0, max: 10, step: 0.05, integer: false, hint: '1 disables' },
  { key: 'seed', label: 'Seed', min: 0, max: 2 ** 53 - 1, step: 1, integer: true, hint: 'same seed, same answer' },
  { key: 'rag_top_k', label: 'Sources per answer', min: 1, max: 50, step: 1, integer: true, hint: 'retrieved passages, 1-50' },
];

/** Reads one number field; undefined for empty, an error message for a bad value. */
export function readNumber(f: NumberField, text: string): { value?: number; error?: string } {
  const t = text.trim();
  if (!t) return {};
  const v = Number(t);
  if (!Number.isFinite(v)) return { error: `${f.label} must be a number.` };
  if (f.integer && !Number.isInteger(v)) return { error: `${f.label} must be a whole number.` };
  if (v < f.min || v > f.max) return { error: `${f.label} must be between ${f.min} and ${f.max}.` };
  return { value: v };
}

/** Stop sequences from the form: one per line, at most 4 (escapes like \n are read). */
export function readStop(text: string): { value?: string[]; error?: string } {
  const items = text
    .split('\n')
    .map((s) => s.replace(/\\n/g, '\n').replace(/\\t/g, '\t'))
    .filter((s) => s.length > 0);
  if (items.length > 4) return { error: 'At most 4 stop sequences.' };
  return items.length ? { value: items } : {};
}

export function stopText(stop?: string[]): string {
  return (stop ?? []).map((s) => s.replace(/\n/g, '\\n').replace(/\t/g, '\\t')).join('\n');
}

/** Settings carried into a new conversation: the sampling and model, not the documents. */
export function carryOver(s: ChatSettings): ChatSettings {
  const next: ChatSettings = { ...s };
  delete next.has_documents;
  return next;
}

/** Chat models (not embedding or rerank models), loaded ones first. */
export function chatModels(models: ModelObject[]): ModelObject[] {
  return models
    .filter((m) => {
      const kind = m.meta?.kind;
      return kind === undefined || kind === 'causal' || kind === 'chat';
    })
    .sort((a, b) => Number(!!b.meta?.loaded) - Number(!!a.meta?.loaded) || a.id.localeCompare(b.id));
}

/** The model to use: the chosen one if the server has it, else a loaded chat model, else the first. */
export function pickModel(models: ModelObject[], wanted?: string): string {
  const chat = chatModels(models);
  if (wanted && (chat.some((m) => m.id === wanted || m.meta?.aliases?.includes(wanted)) || !chat.length)) return wanted;
  return chat[0]?.id ?? wanted ?? '';
}

/** `8k` style context length. */
export function contextLabel(n?: number): string {
  if (!n) return '';
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}k`;
  if (n >= 1000) return `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k`;
  return String(n);
}
