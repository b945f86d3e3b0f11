// The server view's polling: `/models/loaded` and `/metrics` every 2 s while it is open.

import * as api from '../api';
import { ApiError, describe } from '../errors';
import { parseMetrics, point, pushPoint, rates, type Point } from '../metrics';
import type { LoadedModels } from '../types';

const EVERY_MS = 2000;

class ServerMonitor {
  loaded = $state.raw<LoadedModels | undefined>();
  points = $state.raw<Point[]>([]);
  error = $state<string | undefined>();
  /** Why there are no charts (e.g. this key may not read /metrics). */
  metricsNote = $state<string | undefined>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private ctrl: AbortController | undefined;

  get rates(): number[] {
    return rates(this.points);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.tick();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.ctrl?.abort();
  }

  private async tick(): Promise<void> {
    if (!this.running) return;
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    const [loaded, metrics] = await Promise.allSettled([api.loadedModels(ctrl.signal), api.metricsText(ctrl.signal)]);
    if (!this.running) return;
    if (loaded.status === 'fulfilled') {
      this.loaded = loaded.value;
      this.error = undefined;
    } else if (!(loaded.reason instanceof ApiError && loaded.reason.kind === 'aborted')) {
      this.error = `Could not read the loaded models: ${describe(loaded.reason)}`;
    }
    if (metrics.status === 'fulfilled') {
      this.points = pushPoint(this.points, point(parseMetrics(metrics.value), Date.now()));
      this.metricsNote = undefined;
    } else {
      const e = metrics.reason;
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        this.metricsNote = 'Metrics are not available to this API key (the server answered /metrics with ' + e.status + ').';
      } else if (e instanceof ApiError && e.status === 404) {
        this.metricsNote = 'This server does not export metrics.';
      } else if (!(e instanceof ApiError && e.kind === 'aborted')) {
        this.metricsNote = `Could not read /metrics: ${describe(e)}`;
      }
    }
    this.timer = setTimeout(() => void this.tick(), EVERY_MS);
  }
}

export const monitor = new ServerMonitor();
