// App-wide state: the route, the models, the conversation list and where it is kept, the
// theme, and the API key dialog. Components read it and call its methods.

import * as api from '../api';
import { describe } from '../errors';
import { isMissingRoute, MemoryHistory, serverHistory, type History } from '../history';
import { parseRoute, routeHash, type Route } from '../route';
import { carryOver, chatModels, pickModel } from '../settings';
import { applyTheme, loadTheme, nextTheme, type Theme } from '../theme';
import type { ChatSettings, ConversationSummary, ModelObject } from '../types';

export const HISTORY_UNAVAILABLE =
  'This server does not keep chat history, so chats live in this tab only and are gone when it closes.';

class AppStore {
  route = $state<Route>({ view: 'chat' });
  models = $state.raw<ModelObject[]>([]);
  modelsError = $state<string | undefined>();
  history: History = serverHistory;
  /** False: the server has no conversation routes; chats are kept in memory. */
  historyAvailable = $state(true);
  conversations = $state.raw<ConversationSummary[]>([]);
  listError = $state<string | undefined>();
  query = $state('');
  /** Settings a new chat starts from (the last used). */
  lastSettings = $state.raw<ChatSettings>({});
  theme = $state<Theme>('system');
  drawerOpen = $state(false);
  /** The API key dialog, when open. */
  keyPrompt = $state<{ reason: string } | undefined>();
  private keyResolve: ((ok: boolean) => void) | undefined;
  private listSeq = 0;

  get chatModels(): ModelObject[] {
    return chatModels(this.models);
  }

  init(): void {
    this.theme = loadTheme();
    applyTheme(this.theme);
    this.route = parseRoute(location.hash);
    window.addEventListener('hashchange', () => {
      this.route = parseRoute(location.hash);
      this.drawerOpen = false;
    });
    api.setAuthHandler((reason) => this.askForKey(reason));
    void this.loadModels();
  }

  navigate(r: Route, replace = false): void {
    const hash = routeHash(r);
    if (location.hash === hash || (hash === '#/' && !location.hash)) {
      this.route = r;
      return;
    }
    if (replace) {
      history.replaceState(null, '', hash);
      this.route = r;
    } else {
      location.hash = hash;
    }
  }

  toggleTheme(): void {
    this.theme = nextTheme(this.theme);
    applyTheme(this.theme);
  }

  async loadModels(): Promise<void> {
    try {
      this.models = await api.listModels();
      this.modelsError = undefined;
    } catch (e) {
      this.modelsError = describe(e);
    }
  }

  /** The model a conversation with these settings uses. */
  modelFor(s: ChatSettings): string {
    return pickModel(this.models, s.model);
  }

  contextOf(id: string): number | undefined {
    return this.models.find((m) => m.id === id)?.meta?.context_length;
  }

  /** Settings for a new chat. */
  newChatSettings(): ChatSettings {
    return carryOver(this.lastSettings);
  }

  rememberSettings(s: ChatSettings): void {
    this.lastSettings = carryOver(s);
  }

  /** Falls back to keeping chats in memory (the server has no history routes). */
  degrade(): void {
    if (!this.historyAvailable) return;
    this.historyAvailable = false;
    this.history = new MemoryHistory();
  }

  /** Reloads the conversation list (with the search text). */
  async refreshList(): Promise<void> {
    const seq = ++this.listSeq;
    const q = this.query.trim();
    try {
      const list = await this.history.list(q, 200);
      if (seq !== this.listSeq) return;
      this.conversations = list;
      this.listError = undefined;
    } catch (e) {
      if (seq !== this.listSeq) return;
      if (isMissingRoute(e)) {
        this.degrade();
        return this.refreshList();
      }
      this.listError = describe(e);
    }
  }

  /** Loads the list, and the newest conversation's settings as the starting point. */
  async loadHistory(loadLastSettings: boolean): Promise<void> {
    await this.refreshList();
    const newest = this.conversations[0];
    if (loadLastSettings && newest && this.historyAvailable) {
      try {
        const c = await this.history.get(newest.id);
        this.rememberSettings(c.settings ?? {});
      } catch {
        // only a starting point
      }
    }
  }

  /** Updates one entry of the list after a save (no round trip). */
  noteSaved(s: ConversationSummary): void {
    const rest = this.conversations.filter((c) => c.id !== s.id);
    if (this.query.trim()) {
      // The search decides what is listed: ask again.
      void this.refreshList();
      return;
    }
    this.conversations = [s, ...rest].sort((a, b) => b.updated_at - a.updated_at);
  }

  noteDeleted(id: string): void {
    this.conversations = this.conversations.filter((c) => c.id !== id);
  }

  askForKey(reason: string): Promise<boolean> {
    this.keyResolve?.(false);
    this.keyPrompt = { reason };
    return new Promise((resolve) => {
      this.keyResolve = resolve;
    });
  }

  /** The dialog closed: with a key (stored, calls retried) or without. */
  answerKey(key: string | undefined): void {
    if (key !== undefined) api.setApiKey(key.trim());
    const resolve = this.keyResolve;
    this.keyResolve = undefined;
    this.keyPrompt = undefined;
    resolve?.(key !== undefined && key.trim() !== '');
  }

  /** Opens the dialog by hand (change or forget the key). */
  editKey(): void {
    void this.askForKey('').then((ok) => {
      if (ok) {
        void this.loadModels();
        void this.refreshList();
      }
    });
  }
}

export const app = new AppStore();
