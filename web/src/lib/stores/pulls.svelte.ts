// Models pulled from the Hugging Face hub (`/models/pull`): the server's recent pull jobs, read
// again every second while one runs and the view is open.

import * as api from '../api';
import { ApiError, describe } from '../errors';
import type { PullJob } from '../types';
import { app } from './app.svelte';

const EVERY_MS = 1000;

class PullJobs {
  jobs = $state.raw<PullJob[]>([]);
  /** Why this key cannot pull (the server keeps pulls to admin keys). */
  unavailable = $state<string | undefined>();
  error = $state<string | undefined>();
  /** What the last request did when there is no job to show (the model was here already). */
  notice = $state<string | undefined>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private watching = false;

  watch(): void {
    this.watching = true;
    void this.refresh();
  }

  unwatch(): void {
    this.watching = false;
    clearTimeout(this.timer);
  }

  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    const before = this.jobs;
    try {
      this.jobs = await api.pullJobs();
      this.unavailable = undefined;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        this.unavailable = 'Pulling models needs an admin API key.';
      } else {
        this.error = `Could not read the pulls: ${describe(e)}`;
      }
      return;
    }
    const finished = this.jobs.some((j) => j.status === 'done' && before.some((b) => b.id === j.id && b.status === 'running'));
    if (finished) void app.loadModels();
    if (this.watching && this.jobs.some((j) => j.status === 'running')) {
      this.timer = setTimeout(() => void this.refresh(), EVERY_MS);
    }
  }

  /** Starts pulling `model`; false when the server refused (the reason is in `error`). */
  async start(model: string): Promise<boolean> {
    this.error = undefined;
    this.notice = undefined;
    try {
      const job = await api.startPull(model);
      if (job.status === 'done' && !this.jobs.some((j) => j.id === job.id)) {
        this.notice = `${model} is here already, as ${job.model_id}.`;
      }
    } catch (e) {
      this.error = describe(e);
      return false;
    }
    await this.refresh();
    return true;
  }

  /** Cancels a running pull, or dismisses a finished one. */
  async cancel(id: string): Promise<void> {
    try {
      await api.cancelPull(id);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) this.error = describe(e);
    }
    await this.refresh();
  }
}

export const pulls = new PullJobs();
