// Wire types of the Hearth API as the UI uses them (crates/protocol and crates/server are the
// source of truth), and the UI's own conversation shapes.

/** OpenAI's error body. */
export interface ErrorBody {
  error: { message: string; type?: string; param?: string | null; code?: string | null };
}

export interface ModelMeta {
  kind?: string;
  context_length?: number;
  loaded?: boolean;
  architecture?: string;
  parameters?: number;
  quantization?: string;
  aliases?: string[];
  [key: string]: unknown;
}

export interface ModelObject {
  id: string;
  object: string;
  created: number;
  owned_by: string;
  meta?: ModelMeta;
}

export interface LoadedModel {
  id: string;
  kind: string;
  memory_bytes: number;
  last_used: number;
  expires_in?: number | null;
  active_requests: number;
  waiting_requests: number;
  load_seconds: number;
  /** `ready`, or `failed` when its worker process crashed (it loads again on its next request). */
  status?: string;
  pid?: number | null;
  /** The worker process's measured resident memory. */
  rss_bytes?: number | null;
  crashes?: number;
  last_crash?: string | null;
  /** Layers on a GPU, of `layers_total`. */
  gpu_layers?: number;
  layers_total?: number;
  device_bytes?: number;
  devices?: string[];
  /** Why it runs on the CPU although a GPU is present. */
  gpu_fallback?: string | null;
}

export interface LoadedModels {
  object: string;
  data: LoadedModel[];
  memory_bytes: number;
}

/** A model pulled from the Hugging Face hub, as `/models/pull` shows it. */
export interface PullJob {
  id: string;
  model: string;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  file?: string;
  completed: number;
  total?: number;
  bytes_per_second?: number;
  eta_seconds?: number;
  model_id?: string;
  note?: string;
  error?: { code: string; message: string };
  created_at: number;
  finished_at?: number;
}

export interface Timings {
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_second: number;
  cached_n: number;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
}

/** One numbered source of a grounded answer (crates/server/src/rag/ground.rs `Citation`). */
export interface Citation {
  n: number;
  chunk_id?: number;
  document_id?: number;
  document: string;
  title?: string | null;
  text: string;
  page?: number | null;
  section?: string | null;
  start?: number;
  end?: number;
  score?: number;
}

export interface ChatChunk {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[];
  usage?: Usage | null;
  timings?: Timings;
  citations?: Citation[];
}

export type Role = 'system' | 'user' | 'assistant';

/** Sampling and grounding settings, stored per conversation. An absent field: the server's default. */
export interface ChatSettings {
  model?: string;
  system_prompt?: string;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  max_tokens?: number;
  repeat_penalty?: number;
  seed?: number;
  stop?: string[];
  /** A named collection picked by the user: uploads go there and answers are grounded in it. */
  collection?: string;
  /** Retrieval hits per answer. */
  rag_top_k?: number;
  /** The conversation's own collection (named like the conversation) has documents. */
  has_documents?: boolean;
}

export interface ChatMessage {
  id: string;
  role: Role;
  content: string;
  created_at: number;
  model?: string;
  timings?: Timings;
  usage?: Usage;
  /** Client-measured time from sending to the first text, ms. */
  ttft_ms?: number;
  citations?: Citation[];
  /** A readable error: the answer failed (its partial text is kept). */
  error?: string;
  finish_reason?: string;
}

export interface ConversationSummary {
  id: string;
  object?: string;
  title: string;
  created_at: number;
  updated_at: number;
  version: number;
  message_count: number;
}

export interface Conversation {
  id: string;
  object?: string;
  title: string;
  created_at: number;
  updated_at: number;
  version: number;
  settings: ChatSettings;
  messages: ChatMessage[];
}

export interface CollectionInfo {
  name: string;
  dim?: number;
  model?: string;
  documents: number;
  chunks: number;
  created: number;
}

export interface DocumentInfo {
  id: number;
  name: string;
  title?: string | null;
  sha256?: string;
  metadata?: Record<string, unknown>;
  chunks: number;
  bytes: number;
  created: number;
}

export interface Job {
  id: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  collection?: string;
  document?: string;
  chunks_done: number;
  chunks_total: number;
  result?: unknown;
  error?: string;
}

/** The body of `POST /v1/chat/completions` as the UI sends it. */
export interface ChatRequest {
  model: string;
  messages: { role: Role; content: string }[];
  stream: true;
  stream_options: { include_usage: true };
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  max_tokens?: number;
  repeat_penalty?: number;
  seed?: number;
  stop?: string[];
  rag?: { collection: string; top_k?: number };
}
