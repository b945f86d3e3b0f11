// A small parser of Prometheus' text exposition format, and the series the server view draws.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Samples by metric name (histogram parts keep their `_bucket`/`_sum`/`_count` names). */
export type Metrics = Map<string, Sample[]>;

function parseValue(s: string): number {
  switch (s) {
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return NaN;
    default:
      return Number(s);
  }
}

/** Reads `{a="x",b="y\"z"}` starting at `i` (just after `{`); returns labels and the index after `}`. */
function parseLabels(line: string, i: number): [Record<string, string>, number] | undefined {
  const labels: Record<string, string> = {};
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return [labels, i + 1];
    const eq = line.indexOf('=', i);
    if (eq < 0) return undefined;
    const key = line.slice(i, eq).trim();
    i = eq + 1;
    if (line[i] !== '"') return undefined;
    i++;
    let value = '';
    for (; i < line.length && line[i] !== '"'; i++) {
      if (line[i] === '\\' && i + 1 < line.length) {
        i++;
        value += line[i] === 'n' ? '\n' : line[i];
      } else {
        value += line[i];
      }
    }
    if (line[i] !== '"') return undefined;
    labels[key] = value;
    i++;
  }
}

/** Parses exposition text; lines it cannot read are skipped. */
export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!m) continue;
    const name = m[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') {
      const parsed = parseLabels(line, i + 1);
      if (!parsed) continue;
      [labels, i] = parsed;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    if (!rest[0]) continue;
    const value = parseValue(rest[0]);
    if (Number.isNaN(value) && rest[0] !== 'NaN') continue;
    let list = out.get(name);
    if (!list) out.set(name, (list = []));
    list.push({ name, labels, value });
  }
  return out;
}

/** The sum of a metric over all its series (0 when absent). */
export function total(m: Metrics, name: string): number {
  return (m.get(name) ?? []).reduce((a, s) => a + (Number.isFinite(s.value) ? s.value : 0), 0);
}

/** A metric's value per value of one label (e.g. per model). */
export function byLabel(m: Metrics, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of m.get(name) ?? []) {
    const k = s.labels[label] ?? '';
    out[k] = (out[k] ?? 0) + s.value;
  }
  return out;
}

/** One poll's numbers for the charts. */
export interface Point {
  /** ms since the epoch. */
  t: number;
  generatedTotal: number;
  queueDepth: number;
  activeSequences: number;
  kvUsed: number;
  kvCells: number;
  memoryByModel: Record<string, number>;
}

export function point(m: Metrics, t: number): Point {
  return {
    t,
    generatedTotal: total(m, 'hearth_generated_tokens_total'),
    queueDepth: total(m, 'hearth_queue_depth'),
    activeSequences: total(m, 'hearth_active_sequences'),
    kvUsed: total(m, 'hearth_kv_cache_used_cells'),
    kvCells: total(m, 'hearth_kv_cache_cells'),
    memoryByModel: byLabel(m, 'hearth_model_memory_bytes', 'model'),
  };
}

/**
 * Generated tokens per second between consecutive polls. A counter that went down (the
 * server restarted) counts from zero.
 */
export function rates(points: readonly Point[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0) continue;
    const d = b.generatedTotal >= a.generatedTotal ? b.generatedTotal - a.generatedTotal : b.generatedTotal;
    out.push(d / dt);
  }
  return out;
}

/** Appends a point, keeping the last `max`. */
export function pushPoint(points: readonly Point[], p: Point, max = 90): Point[] {
  const next = [...points, p];
  return next.length > max ? next.slice(next.length - max) : next;
}

/** The `points` attribute of a sparkline polyline for `values` in a `w` x `h` box. */
export function sparkline(values: readonly number[], w: number, h: number, max?: number): string {
  if (!values.length) return '';
  const top = Math.max(max ?? Math.max(...values.filter(Number.isFinite)), 1e-9);
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  return values
    .map((v, i) => {
      const y = h - (Math.min(Math.max(Number.isFinite(v) ? v : 0, 0), top) / top) * h;
      return `${(i * step).toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}
