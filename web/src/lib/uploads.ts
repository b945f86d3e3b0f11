// Uploading documents into a collection: one request per file (a bad file is a clear error
// naming it, the others go on), then the file's ingestion job is polled for progress.

import * as api from './api';
import { ApiError, describe } from './errors';
import type { Job } from './types';

export const SUPPORTED_HINT = 'PDF, DOCX, Markdown, HTML or plain text';
export const ACCEPT = '.pdf,.docx,.md,.markdown,.html,.htm,.txt,.text,.csv,.log,text/*,application/pdf';

export type UploadStatus = 'uploading' | 'queued' | 'running' | 'done' | 'failed';

export interface UploadItem {
  key: string;
  name: string;
  collection: string;
  status: UploadStatus;
  chunksDone: number;
  chunksTotal: number;
  error?: string;
}

let seq = 0;

export function newItem(name: string, collection: string): UploadItem {
  return { key: `up-${++seq}`, name, collection, status: 'uploading', chunksDone: 0, chunksTotal: 0 };
}

/** The item as its job reports it. */
export function fromJob(item: UploadItem, job: Job): UploadItem {
  return {
    ...item,
    status: job.status,
    chunksDone: job.chunks_done ?? 0,
    chunksTotal: job.chunks_total ?? 0,
    error: job.status === 'failed' ? withName(item.name, job.error || 'ingestion failed') : undefined,
  };
}

/** The server's message for a file, naming the file when the message does not. */
export function withName(name: string, message: string): string {
  return message.includes(name) ? message : `${name}: ${message}`;
}

export function failed(item: UploadItem, e: unknown): UploadItem {
  let msg = describe(e);
  if (e instanceof ApiError && e.code === 'retrieval_disabled') {
    msg = 'Documents are not available: retrieval is not enabled on this server (no embedding model).';
  }
  return { ...item, status: 'failed', error: withName(item.name, msg) };
}

export function progressText(item: UploadItem): string {
  switch (item.status) {
    case 'uploading':
      return 'uploading…';
    case 'queued':
      return 'queued';
    case 'running':
      return item.chunksTotal ? `embedding ${item.chunksDone}/${item.chunksTotal} chunks` : 'reading…';
    case 'done':
      return 'ready';
    case 'failed':
      return 'failed';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Files sent at once: with API keys, the server reads at most two uploads of one key at a time
 * (its share of the upload slots); the rest wait here instead of being refused.
 */
export const UPLOADS_AT_ONCE = 2;
/** How often a file the server is too busy to take now is sent again. */
const BUSY_RETRIES = 5;

/** Runs at most `n` of the functions given to it at once, in the order given. */
export function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    while (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await f();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Sends one file, again after `Retry-After` while the server says it is busy (429). */
async function send(collection: string, file: File): Promise<Job> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await api.uploadDocument(collection, file);
    } catch (e) {
      if (!(e instanceof ApiError) || e.kind !== 'rate_limited' || attempt >= BUSY_RETRIES) throw e;
      await sleep(1000 * Math.min(e.retryAfter ?? 1, 30));
    }
  }
}

/**
 * Uploads `files` into `collection`, calling `update` with each item as it changes; resolves
 * when every file is done or failed, with the number stored.
 */
export async function uploadAll(
  collection: string,
  files: File[],
  update: (item: UploadItem) => void,
): Promise<number> {
  const items = files.map((f) => newItem(f.name, collection));
  items.forEach(update);
  let stored = 0;
  const sending = limiter(UPLOADS_AT_ONCE);
  await Promise.all(
    files.map(async (file, i) => {
      let item = items[i];
      try {
        const job = await sending(() => send(collection, file));
        item = fromJob(item, job);
        update(item);
        for (let delay = 400; item.status === 'queued' || item.status === 'running'; delay = Math.min(delay * 1.5, 2000)) {
          await sleep(delay);
          item = fromJob(item, await api.getJob(job.id));
          update(item);
        }
        if (item.status === 'done') stored++;
      } catch (e) {
        update(failed(item, e));
      }
    }),
  );
  return stored;
}
