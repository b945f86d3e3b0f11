// The open conversation: sending, streaming (tokens batched per animation frame), stopping,
// editing, regenerating, saving with versions, and documents uploaded into the chat.

import * as api from '../api';
import {
  appendDelta,
  appendMessage,
  change,
  chatRequest,
  conflicted,
  deleteMessage,
  editAndTruncate,
  failMessage,
  finishMessage,
  newConversation,
  newMessageId,
  prepareRegenerate,
  ragCollection,
  rebase,
  rename,
  saved,
  setCitations,
  stateOf,
  withSettings,
  type ChatState,
  type Finish,
} from '../conversation';
import { ApiError, describe } from '../errors';
import { isMissingRoute } from '../history';
import { uploadAll, type UploadItem } from '../uploads';
import type { ChatSettings, Conversation, DocumentInfo } from '../types';
import { app } from './app.svelte';

function summary(c: Conversation) {
  return {
    id: c.id,
    object: 'conversation',
    title: c.title,
    created_at: c.created_at,
    updated_at: c.updated_at,
    version: c.version,
    message_count: c.messages.length,
  };
}

class ChatStore {
  state = $state.raw<ChatState>(stateOf(newConversation({}), false));
  /** The id of the message being streamed. */
  streamingId = $state<string | undefined>();
  loading = $state(false);
  /** Could not open or save: shown above the conversation. */
  error = $state<string | undefined>();
  uploads = $state.raw<UploadItem[]>([]);
  documents = $state.raw<DocumentInfo[]>([]);

  private abort: AbortController | undefined;
  /** The answer being generated (resolves once it ended and was saved). */
  private generating: Promise<void> | undefined;
  private saveChain: Promise<void> = Promise.resolve();
  private pending = '';
  private frame = 0;
  private openSeq = 0;

  get conversation(): Conversation {
    return this.state.conversation;
  }

  get streaming(): boolean {
    return this.streamingId !== undefined;
  }

  private set(c: Conversation): void {
    this.state = change(this.state, c);
  }

  /** A fresh, unsaved chat (an answer being streamed is stopped and saved first). */
  async newChat(): Promise<void> {
    const seq = ++this.openSeq;
    await this.leave();
    if (seq !== this.openSeq) return;
    this.state = stateOf(newConversation(app.newChatSettings()), false);
    this.error = undefined;
    this.uploads = [];
    this.documents = [];
    this.loading = false;
  }

  /** Opens a stored conversation (the route changed). */
  async open(id: string): Promise<void> {
    if (this.conversation.id === id) return; // open already, or just created and being saved
    const seq = ++this.openSeq;
    this.loading = true;
    await this.leave();
    if (seq !== this.openSeq) return;
    this.error = undefined;
    this.uploads = [];
    this.documents = [];
    try {
      const c = await app.history.get(id);
      if (seq !== this.openSeq) return;
      this.state = stateOf(normalize(c), true);
      app.rememberSettings(c.settings ?? {});
      void this.loadDocuments();
    } catch (e) {
      if (seq !== this.openSeq) return;
      if (isMissingRoute(e)) app.degrade();
      this.state = stateOf(newConversation(app.newChatSettings()), false);
      this.error =
        e instanceof ApiError && e.status === 404
          ? 'That conversation does not exist (or belongs to another API key). A new chat was started.'
          : `Could not open the conversation: ${describe(e)}`;
      app.navigate({ view: 'chat' }, true);
    } finally {
      if (seq === this.openSeq) this.loading = false;
    }
  }

  /** Before another conversation is shown: stop an answer and let its save finish. */
  private async leave(): Promise<void> {
    if (this.generating) {
      this.stop();
      await this.generating;
    }
    await this.saveChain;
  }

  dismissNotice(): void {
    this.state = { ...this.state, notice: undefined };
    this.error = undefined;
  }

  // Saving ---------------------------------------------------------------------------------

  /** Saves the conversation if it changed (one save at a time, each with the version seen last). */
  save(): Promise<void> {
    this.saveChain = this.saveChain.then(() => this.saveNow()).catch(() => {});
    return this.saveChain;
  }

  private async saveNow(attempt = 0): Promise<void> {
    const s = this.state;
    if (!s.dirty) return;
    const sent = s.conversation;
    const body = { title: sent.title, settings: sent.settings, messages: sent.messages };
    try {
      const server = s.stored
        ? await app.history.patch(sent.id, { ...body, version: sent.version })
        : await app.history.create(body, sent.id);
      if (this.conversation.id !== sent.id) return; // another conversation was opened meanwhile
      const wasStored = s.stored;
      this.state = saved(this.state, sent, server);
      this.error = undefined;
      app.noteSaved(summary(this.conversation));
      if (!wasStored) app.navigate({ view: 'chat', id: server.id }, true);
    } catch (e) {
      if (this.conversation.id !== sent.id) return;
      if (isMissingRoute(e)) {
        app.degrade();
        this.state = { ...this.state, stored: false };
        return this.saveNow(attempt + 1);
      }
      if (e instanceof ApiError && e.code === 'conversation_conflict') {
        try {
          const fresh = normalize(await app.history.get(sent.id));
          const merged = attempt < 3 ? rebase(this.state, fresh) : undefined;
          if (merged) {
            this.state = merged;
            return this.saveNow(attempt + 1);
          }
          this.state = conflicted(this.state, fresh);
          app.noteSaved(summary(fresh));
        } catch (e2) {
          this.error = `This conversation changed elsewhere and could not be reloaded: ${describe(e2)}`;
        }
        return;
      }
      this.error = `Not saved: ${describe(e)}`;
    }
  }

  /** Stores a new conversation now (it needs its final id, e.g. to name its collection). */
  private async ensureStored(): Promise<void> {
    if (this.state.stored) return;
    this.state = { ...this.state, dirty: true };
    await this.save();
    if (!this.state.stored) throw new Error(this.error ?? 'The conversation could not be saved.');
  }

  // Sending and streaming ----------------------------------------------------------------

  async send(text: string): Promise<void> {
    const content = text.trim();
    if (!content || this.streaming) return;
    this.set(appendMessage(this.conversation, 'user', content));
    app.rememberSettings(this.conversation.settings);
    void this.save();
    await this.generate();
  }

  /** Streams an answer to the conversation as it is, then saves it. */
  private generate(): Promise<void> {
    const p = this.run().finally(() => {
      if (this.generating === p) this.generating = undefined;
    });
    this.generating = p;
    return p;
  }

  private async run(): Promise<void> {
    const model = app.modelFor(this.conversation.settings);
    const req = chatRequest(this.conversation, model);
    const id = newMessageId();
    this.set(appendMessage(this.conversation, 'assistant', '', { id, model }));
    this.streamingId = id;
    const ctrl = new AbortController();
    this.abort = ctrl;
    const started = performance.now();
    const fin: Finish = {};
    try {
      for await (const ev of api.streamChat(req, ctrl.signal)) {
        if (ev.type === 'done') break;
        const chunk = ev.chunk;
        if (chunk.citations?.length) this.set(setCitations(this.conversation, id, chunk.citations));
        if (chunk.model) fin.model = chunk.model;
        const choice = chunk.choices?.[0];
        const delta = choice?.delta?.content;
        if (delta) {
          fin.ttft_ms ??= Math.round(performance.now() - started);
          this.buffer(id, delta);
        }
        if (choice?.finish_reason) fin.finish_reason = choice.finish_reason;
        if (chunk.timings) fin.timings = chunk.timings;
        if (chunk.usage) fin.usage = chunk.usage;
      }
      this.flush(id);
      this.set(finishMessage(this.conversation, id, fin));
    } catch (e) {
      this.flush(id);
      if (e instanceof ApiError && e.kind === 'aborted') {
        this.set(finishMessage(this.conversation, id, { ...fin, finish_reason: 'stopped' }));
      } else {
        this.set(failMessage(this.conversation, id, describe(e), fin));
      }
    } finally {
      if (this.abort === ctrl) this.abort = undefined;
      if (this.streamingId === id) this.streamingId = undefined;
    }
    await this.save();
  }

  /** Tokens are applied once per animation frame, not once per token. */
  private buffer(id: string, delta: string): void {
    this.pending += delta;
    if (this.frame) return;
    const run = () => {
      this.frame = 0;
      this.flush(id);
    };
    this.frame = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(run) : (setTimeout(run, 16) as unknown as number);
  }

  private flush(id: string): void {
    if (this.frame) {
      if (typeof cancelAnimationFrame === 'function') cancelAnimationFrame(this.frame);
      clearTimeout(this.frame);
      this.frame = 0;
    }
    if (!this.pending) return;
    const text = this.pending;
    this.pending = '';
    this.set(appendDelta(this.conversation, id, text));
  }

  /** Stops the answer being streamed (closing the connection frees the server's sequence). */
  stop(): void {
    this.abort?.abort();
  }

  async regenerate(): Promise<void> {
    if (this.streaming) return;
    const c = prepareRegenerate(this.conversation);
    if (!c) return;
    this.set(c);
    await this.generate();
  }

  /** Retry of a failed answer: it is replaced by a new one. */
  async retry(id: string): Promise<void> {
    if (this.streaming) return;
    const last = this.conversation.messages.at(-1);
    if (last?.id === id) return this.regenerate();
    // A failed answer earlier in the conversation: drop it and everything after, then answer.
    const i = this.conversation.messages.findIndex((m) => m.id === id);
    if (i < 0) return;
    this.set({ ...this.conversation, messages: this.conversation.messages.slice(0, i) });
    await this.generate();
  }

  async editAndResend(id: string, text: string): Promise<void> {
    const content = text.trim();
    if (!content || this.streaming) return;
    this.set(editAndTruncate(this.conversation, id, content));
    void this.save();
    await this.generate();
  }

  async deleteMessage(id: string): Promise<void> {
    if (this.streamingId === id) this.stop();
    this.set(deleteMessage(this.conversation, id));
    if (this.state.stored) await this.save();
  }

  async rename(title: string): Promise<void> {
    this.set(rename(this.conversation, title));
    if (this.state.stored) await this.save();
  }

  async updateSettings(s: ChatSettings): Promise<void> {
    this.set(withSettings(this.conversation, s));
    app.rememberSettings(s);
    if (this.state.stored) await this.save();
    void this.loadDocuments();
  }

  /** Replaces the open conversation after it was changed from the list (rename, delete). */
  external(c: Conversation | undefined): void {
    if (!c) {
      void this.newChat();
      app.navigate({ view: 'chat' }, true);
      return;
    }
    if (c.id === this.conversation.id) this.state = stateOf(normalize(c), true);
  }

  // Documents --------------------------------------------------------------------------------

  /** The collection uploads in this chat go into. */
  uploadTarget(): string {
    return this.conversation.settings.collection || this.conversation.id;
  }

  async upload(files: File[]): Promise<void> {
    if (!files.length) return;
    const convId = this.conversation.id;
    try {
      if (!this.conversation.settings.collection) await this.ensureStored();
      const collection = this.uploadTarget();
      await api.ensureCollection(collection);
      const stored = await uploadAll(collection, files, (item) => {
        if (this.conversation.id !== convId && this.conversation.id !== collection) return;
        const rest = this.uploads.filter((u) => u.key !== item.key);
        const i = this.uploads.findIndex((u) => u.key === item.key);
        this.uploads = i < 0 ? [...rest, item] : this.uploads.map((u) => (u.key === item.key ? item : u));
      });
      if (stored > 0 && !this.conversation.settings.collection && !this.conversation.settings.has_documents) {
        await this.updateSettings({ ...this.conversation.settings, has_documents: true });
      } else if (stored > 0) {
        void this.loadDocuments();
      }
    } catch (e) {
      const names = files.map((f) => f.name).join(', ');
      let msg = describe(e);
      if (e instanceof ApiError && e.code === 'retrieval_disabled') {
        msg = 'retrieval is not enabled on this server (no embedding model), so documents cannot be used.';
      }
      this.error = `Could not upload ${names}: ${msg}`;
    }
  }

  dismissUpload(key: string): void {
    this.uploads = this.uploads.filter((u) => u.key !== key);
  }

  /** Documents of the collection answers are grounded in. */
  async loadDocuments(): Promise<void> {
    const collection = ragCollection(this.conversation);
    if (!collection) {
      this.documents = [];
      return;
    }
    try {
      const docs = await api.listDocuments(collection);
      if (ragCollection(this.conversation) === collection) this.documents = docs;
    } catch {
      this.documents = [];
    }
  }
}

/** A conversation from the server with every field the UI relies on. */
function normalize(c: Conversation): Conversation {
  return { ...c, title: c.title ?? '', settings: c.settings ?? {}, messages: c.messages ?? [] };
}

export const chat = new ChatStore();
