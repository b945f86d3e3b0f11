// Numbers for people.

export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function ms(n?: number): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${Math.round(n)} ms`;
}

export function rate(n?: number): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return `${n >= 100 ? Math.round(n) : n.toFixed(1)} tok/s`;
}

/** "3 min ago" for unix seconds. */
export function ago(secs: number, now = Date.now() / 1000): string {
  const d = Math.max(0, now - secs);
  if (d < 60) return 'just now';
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  if (d < 86400 * 30) return `${Math.floor(d / 86400)} d ago`;
  return new Date(secs * 1000).toLocaleDateString();
}

export function seconds(n?: number | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  if (n < 60) return `${Math.round(n)} s`;
  if (n < 3600) return `${Math.round(n / 60)} min`;
  return `${(n / 3600).toFixed(1)} h`;
}

/** Where a loaded model runs: `CPU`, or `31/31 layers on Vulkan0 (93.8 MiB)`. */
export function gpuText(m: {
  gpu_layers?: number;
  layers_total?: number;
  devices?: string[];
  device_bytes?: number;
  gpu_fallback?: string | null;
}): string {
  if (!m.gpu_layers) return m.gpu_fallback ? 'CPU (GPU fell back)' : 'CPU';
  const on = (m.devices ?? []).join(', ') || 'GPU';
  return `${m.gpu_layers}/${m.layers_total ?? '?'} layers on ${on} (${bytes(m.device_bytes ?? 0)})`;
}
