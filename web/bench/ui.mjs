// The browser UI's benchmark, against a running Hearth (HEARTH_URL, key HEARTH_KEY_A) in
// Debian's Chromium; prints markdown tables.
//
//   node web/bench/ui.mjs            (HEARTH_URL=http://127.0.0.1:8080 HEARTH_KEY_A=sk-...)
//
// 1. Bundle: gzip -9 of what the first load fetches (index.html, its JS and CSS) and of the lazy
//    math chunk (KaTeX's JS and CSS; its fonts are woff2, fetched only for the glyphs used).
// 2. Cold loads: 5 fresh browser contexts load `/`; navigation timing and the time until the
//    composer can take text (medians).
// 3. Streaming a ~20,000-token answer: the chat call is answered by a fake (a) all at once by
//    page.route (the worst case for the renderer: every token arrives in one go) and (b) paced at
//    ~1,000 tokens/s by a small local server in front of Hearth. Long tasks (PerformanceObserver
//    'longtask') and requestAnimationFrame gaps while it streams.
// 4. Server memory: VmRSS of the Hearth process (HEARTH_PID, or found by its port) after a
//    warm-up chat through the API, then with the UI open on a loaded conversation and then 10 s
//    on the server view (polling /metrics and /models/loaded every 2 s).
import { chromium } from 'playwright-core';
import http from 'node:http';
import { gzipSync, constants } from 'node:zlib';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const BASE = process.env.HEARTH_URL ?? 'http://127.0.0.1:8080';
const KEY = process.env.HEARTH_KEY_A ?? process.env.HEARTH_API_KEY ?? '';
const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const COLD_LOADS = 5;
const TOKENS = 20_000;
const PACED_PER_SECOND = 1000;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const msf = (n) => `${n.toFixed(0)} ms`;
const gz = (buf) => gzipSync(buf, { level: constants.Z_BEST_COMPRESSION }).length;

// 1. Bundle ------------------------------------------------------------------------------------

async function bundle() {
  const html = await readFile(join(DIST, 'index.html'));
  const refs = [...html.toString().matchAll(/(?:src|href)="\/?(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
  const initial = [['index.html', html]];
  for (const r of refs) initial.push([r, await readFile(join(DIST, r))]);
  const assets = await readdir(join(DIST, 'assets'));
  const math = [];
  for (const f of assets.filter((a) => /^katex-.*\.(js|css)$/.test(a))) math.push([`assets/${f}`, await readFile(join(DIST, 'assets', f))]);
  const fonts = assets.filter((a) => a.endsWith('.woff2'));
  let fontBytes = 0;
  for (const f of fonts) fontBytes += (await readFile(join(DIST, 'assets', f))).length;
  const sum = (files) => ({
    files: files.map(([n]) => n).join(', '),
    raw: files.reduce((a, [, b]) => a + b.length, 0),
    gzip: files.reduce((a, [, b]) => a + gz(b), 0),
  });
  return { initial: sum(initial), math: sum(math), fonts: { count: fonts.length, bytes: fontBytes } };
}

// Browser helpers ------------------------------------------------------------------------------

async function context(browser, extra = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...extra });
  await ctx.addInitScript((key) => {
    if (key && !localStorage.getItem('hearth.apiKey')) localStorage.setItem('hearth.apiKey', key);
  }, KEY);
  return ctx;
}

// 2. Cold loads ---------------------------------------------------------------------------------

async function coldLoads(browser) {
  const rows = [];
  for (let i = 0; i < COLD_LOADS; i++) {
    const ctx = await context(browser);
    const page = await ctx.newPage();
    await page.goto(`${BASE}/`, { waitUntil: 'commit' });
    await page.waitForFunction(() => {
      const t = /** @type {HTMLTextAreaElement | null} */ (document.getElementById('composer-input'));
      if (!t || t.disabled) return false;
      if (!('__ready' in window)) /** @type {any} */ (window).__ready = performance.now();
      return true;
    }, null, { polling: 'raf', timeout: 30_000 });
    // The model list answered: the picker names a real model.
    await page.waitForFunction(() => {
      const o = document.querySelector('#model-picker option');
      if (o && o.textContent && o.textContent.trim() && o.textContent.trim() !== 'Server default') {
        if (!('__models' in window)) /** @type {any} */ (window).__models = performance.now();
        return true;
      }
      return false;
    }, null, { polling: 'raf', timeout: 30_000 });
    await page.waitForLoadState('load');
    rows.push(await page.evaluate(() => {
      const n = /** @type {PerformanceNavigationTiming} */ (performance.getEntriesByType('navigation')[0]);
      const w = /** @type {any} */ (window);
      return { ttfb: n.responseStart, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, ready: w.__ready, models: w.__models };
    }));
    await ctx.close();
  }
  const pick = (k) => median(rows.map((r) => r[k]));
  return { n: rows.length, ttfb: pick('ttfb'), dcl: pick('dcl'), load: pick('load'), ready: pick('ready'), models: pick('models'), rows };
}

// 3. Streaming a long answer ----------------------------------------------------------------------

/** ~TOKENS small pieces of an answer mixing prose, lists, code fences and a table. */
function longAnswerDeltas() {
  const parts = [];
  for (let i = 0; parts.join('').length < TOKENS * 4; i++) {
    switch (i % 6) {
      case 1:
        parts.push(Array.from({ length: 6 }, (_, j) => `${j + 1}. Item **${i}.${j}** with \`code ${j}\` and a [link](https://example.org/${j})`).join('\n'));
        break;
      case 3:
        parts.push('```python\n' + Array.from({ length: 14 }, (_, j) => `def f${i}_${j}(x):\n    return x * ${j}  # step ${j}`).join('\n') + '\n```');
        break;
      case 5:
        parts.push('| n | square | note |\n|---|---:|---|\n' + Array.from({ length: 8 }, (_, j) => `| ${j} | ${j * j} | row ${i}.${j} |`).join('\n'));
        break;
      default:
        parts.push(`Paragraph ${i}: ` + 'The quick brown fox jumps over the lazy dog while the stream goes on, word by word. '.repeat(3).trim());
    }
  }
  const text = parts.join('\n\n');
  const deltas = text.match(/[\s\S]{1,4}/g) ?? [];
  return deltas.slice(0, TOKENS);
}

function chunk(extra) {
  return `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 0, model: 'bench-fake', ...extra })}\n\n`;
}
const deltaChunk = (d) => chunk({ choices: [{ index: 0, delta: { content: d }, finish_reason: null }] });
function finalChunks(n) {
  return chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
    chunk({ choices: [], usage: { prompt_tokens: 5, completion_tokens: n, total_tokens: n + 5 },
      timings: { prompt_n: 5, prompt_ms: 1, predicted_n: n, predicted_ms: n, predicted_per_second: 1000, cached_n: 0 } }) +
    'data: [DONE]\n\n';
}

/**
 * A local server in front of Hearth: the chat call streams the fake answer at
 * PACED_PER_SECOND deltas/s (10 per 10 ms), everything else is passed to Hearth.
 */
function pacedProxy(deltas) {
  const up = new URL(BASE);
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/v1/chat/completions')) {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }));
      let i = 0;
      const per = PACED_PER_SECOND / 100;
      const timer = setInterval(() => {
        let out = '';
        for (let k = 0; k < per && i < deltas.length; k++, i++) out += deltaChunk(deltas[i]);
        if (out) res.write(out);
        if (i >= deltas.length) {
          clearInterval(timer);
          res.end(finalChunks(deltas.length));
        }
      }, 10);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const fwd = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(fwd);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Sends one message on `origin` and measures long tasks and frame gaps until the answer ends. */
async function streamRun(browser, origin, route, tokens) {
  const ctx = await context(browser);
  await ctx.addInitScript(() => {
    const w = /** @type {any} */ (window);
    w.__long = [];
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) if (w.__measuring) w.__long.push(e.duration);
    }).observe({ type: 'longtask', buffered: true });
    w.__gaps = [];
    let last = 0;
    const loop = (t) => {
      if (w.__measuring && last) w.__gaps.push(t - last);
      last = t;
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  });
  const page = await ctx.newPage();
  if (route) await page.route('**/v1/chat/completions', route);
  await page.goto(`${origin}/`);
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.waitFor();
  await box.fill('A very long answer, please.');
  await page.evaluate(() => {
    /** @type {any} */ (window).__measuring = true;
  });
  const t0 = Date.now();
  await box.press('Enter');
  // Done: the answer's footer counts its tokens (the fake's final chunk reports them).
  await page.getByRole('article', { name: 'bench-fake said' }).getByText(`${tokens} tokens`, { exact: true }).waitFor({ timeout: 300_000 });
  const wall = Date.now() - t0;
  // The last frames after the final render.
  await page.waitForTimeout(300);
  const r = await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__measuring = false;
    const md = [...document.querySelectorAll('[role="log"] article .md')].at(-1);
    return { long: w.__long, gaps: w.__gaps, chars: md?.textContent?.length ?? 0, blocks: md?.children.length ?? 0 };
  });
  await ctx.close();
  const gaps = [...r.gaps].sort((a, b) => a - b);
  const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))] ?? 0;
  return {
    wall,
    chars: r.chars,
    blocks: r.blocks,
    longest: Math.max(0, ...r.long),
    over50: r.long.filter((d) => d > 50).length,
    longTotal: r.long.reduce((a, b) => a + b, 0),
    frames: gaps.length,
    p50: q(0.5),
    p95: q(0.95),
    maxGap: gaps.at(-1) ?? 0,
  };
}

async function streaming(browser) {
  const deltas = longAnswerDeltas();
  const body = chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }) +
    deltas.map(deltaChunk).join('') + finalChunks(deltas.length);
  const all = await streamRun(browser, BASE, (route) =>
    route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body }),
  deltas.length);
  const proxy = await pacedProxy(deltas);
  const { port } = /** @type {import('node:net').AddressInfo} */ (proxy.address());
  let paced;
  try {
    paced = await streamRun(browser, `http://127.0.0.1:${port}`, undefined, deltas.length);
  } finally {
    proxy.close();
    proxy.closeAllConnections?.();
  }
  return { deltas: deltas.length, chars: deltas.join('').length, all, paced };
}

// 4. Server memory -----------------------------------------------------------------------------

/** The pid of the process listening on `port` (from /proc/net/tcp*, then the fds). */
async function pidForPort(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[1].endsWith(`:${hex}`) && cols[3] === '0A') inodes.add(cols[9]);
    }
  }
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      const l = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(l);
      if (m && inodes.has(m[1])) return Number(pid);
    }
  }
  return undefined;
}

async function rss(pid) {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(s)?.[1] ?? NaN) * 1024;
}

async function api(path, body, method = body ? 'POST' : 'GET') {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { ...(KEY ? { Authorization: `Bearer ${KEY}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function memory(browser) {
  const pid = Number(process.env.HEARTH_PID) || (await pidForPort(Number(new URL(BASE).port || 80)));
  if (!pid) return undefined;
  const warm = await api('/v1/chat/completions', { messages: [{ role: 'user', content: 'Say hello in five words.' }], max_tokens: 32 });
  const answer = warm.choices?.[0]?.message?.content ?? '';
  await new Promise((r) => setTimeout(r, 1000));
  const before = await rss(pid);
  const conv = await api('/api/v1/conversations', {
    title: 'UI bench conversation',
    messages: [
      { id: 'm1', role: 'user', content: 'Say hello in five words.' },
      { id: 'm2', role: 'assistant', content: answer || 'Hello there, how are you?' },
    ],
  });
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await page.goto(`${BASE}/#/c/${encodeURIComponent(conv.id)}`);
  await page.getByRole('article', { name: 'You said' }).waitFor({ timeout: 30_000 });
  const withChat = await rss(pid);
  await page.getByRole('link', { name: 'Server' }).click();
  await page.getByRole('heading', { name: 'Loaded models' }).waitFor();
  let peak = withChat;
  for (let i = 0; i < 10; i++) {
    await page.waitForTimeout(1000);
    peak = Math.max(peak, await rss(pid));
  }
  const after = await rss(pid);
  await ctx.close();
  await api(`/api/v1/conversations/${encodeURIComponent(conv.id)}`, undefined, 'DELETE').catch(() => {});
  return { pid, before, withChat, after, peak };
}

// Report ----------------------------------------------------------------------------------------

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

async function main() {
  const b = await bundle();
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ARGS });
  try {
    const cold = await coldLoads(browser);
    const s = await streaming(browser);
    const m = await memory(browser);
    const out = [];
    out.push(`UI benchmark against ${BASE} (${new Date().toISOString().slice(0, 10)}), Chromium ${browser.version()} headless, 1280x800`);
    out.push('');
    out.push('| bundle | raw | gzip -9 |');
    out.push('|---|---:|---:|');
    out.push(`| initial load (index.html + ${b.initial.files.split(', ').slice(1).join(' + ')}) | ${kib(b.initial.raw)} | ${kib(b.initial.gzip)} |`);
    out.push(`| lazy math chunk (${b.math.files}) | ${kib(b.math.raw)} | ${kib(b.math.gzip)} |`);
    out.push(`| KaTeX fonts (${b.fonts.count} woff2, fetched per glyph set used) | ${kib(b.fonts.bytes)} | (woff2) |`);
    out.push('');
    out.push(`| cold load of / (median of ${cold.n}, fresh context each) | ms |`);
    out.push('|---|---:|');
    out.push(`| first byte (responseStart) | ${cold.ttfb.toFixed(1)} |`);
    out.push(`| domContentLoaded | ${cold.dcl.toFixed(1)} |`);
    out.push(`| load | ${cold.load.toFixed(1)} |`);
    out.push(`| app ready (composer enabled) | ${cold.ready.toFixed(1)} |`);
    out.push(`| model list shown | ${cold.models.toFixed(1)} |`);
    out.push('');
    out.push(`Streaming a faked answer of ${s.deltas.toLocaleString('en')} deltas (${(s.chars / 1024).toFixed(0)} KiB of markdown: prose, lists, code fences, tables):`);
    out.push('');
    out.push('| delivery | wall | longest task | tasks > 50 ms | long-task total | frames | frame gap p50 | p95 | max | rendered blocks |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [name, r] of [['all at once (page.route)', s.all], [`paced, ${PACED_PER_SECOND}/s (local server)`, s.paced]]) {
      out.push(`| ${name} | ${(r.wall / 1000).toFixed(1)} s | ${msf(r.longest)} | ${r.over50} | ${msf(r.longTotal)} | ${r.frames} | ${r.p50.toFixed(1)} ms | ${r.p95.toFixed(1)} ms | ${r.maxGap.toFixed(0)} ms | ${r.blocks} |`);
    }
    out.push('');
    if (m) {
      out.push(`| Hearth server RSS (pid ${m.pid}) | VmRSS |`);
      out.push('|---|---:|');
      out.push(`| after a warm-up chat (API only, no UI) | ${mb(m.before)} |`);
      out.push(`| UI open, a conversation loaded | ${mb(m.withChat)} |`);
      out.push(`| after 10 s on the server view (polling) | ${mb(m.after)} (peak ${mb(m.peak)}) |`);
      const d = Math.round((m.after - m.before) / 1024);
      out.push(`| difference (UI open vs not) | ${d >= 0 ? '+' : '-'}${Math.abs(d).toLocaleString('en')} KiB |`);
    } else {
      out.push('Server RSS: no process found listening on the port of HEARTH_URL (set HEARTH_PID).');
    }
    console.log(out.join('\n'));
  } finally {
    await browser.close();
  }
}

await main();
