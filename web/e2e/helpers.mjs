// Shared parts of the end-to-end tests: Debian's Chromium driven by playwright-core, a browser
// context with an API key, the console-error watch, faked chat streams, axe-core, and small
// API calls made the way any client makes them.
import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import assert from 'node:assert/strict';

export const BASE = process.env.HEARTH_URL ?? 'http://127.0.0.1:8080';
export const KEY_A = process.env.HEARTH_KEY_A ?? 'sk-e2e-alice';
export const KEY_B = process.env.HEARTH_KEY_B ?? 'sk-e2e-bob';
/** An admin key: only admin keys read /metrics. */
export const KEY_ADMIN = process.env.HEARTH_KEY_ADMIN ?? 'sk-e2e-ops';
/** Where the UI keeps the key and the theme (src/lib/api.ts, src/lib/theme.ts). */
const KEY_STORAGE = 'hearth.apiKey';
const THEME_STORAGE = 'hearth.theme';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A fresh Chromium for one test file (playwright gives it a new temporary profile and removes
 * it on close). `close()` closes every context made from it.
 */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  return {
    browser,
    /** A new context (its own storage), with the API key and theme already stored. */
    async context({ key = KEY_A, theme, viewport = { width: 1280, height: 800 }, ...rest } = {}) {
      const ctx = await browser.newContext({ viewport, ...rest });
      const stored = { [KEY_STORAGE]: key, [THEME_STORAGE]: theme };
      await ctx.addInitScript((s) => {
        // Only on the first load of this context: what the page stores later (a new key) stays.
        if (sessionStorage.getItem('e2e.seeded')) return;
        sessionStorage.setItem('e2e.seeded', '1');
        for (const [k, v] of Object.entries(s)) if (v) localStorage.setItem(k, v);
      }, stored);
      await ctx.addInitScript(() => {
        // A CSP violation is a console error, so the watch below sees it.
        document.addEventListener('securitypolicyviolation', (e) =>
          console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`),
        );
      });
      return ctx;
    },
    async close() {
      await browser.close();
    },
  };
}

/**
 * Collects console errors and uncaught page errors of `page`. `allow(re)` accepts messages
 * that a test expects (a 401 the test provokes); `assertClean()` fails with every other one.
 */
export function watch(page) {
  const errors = [];
  const allowed = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location()?.url ?? ''})`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return {
    errors,
    allow(re) {
      allowed.push(re);
    },
    assertClean() {
      const bad = errors.filter((e) => !allowed.some((re) => re.test(e)));
      assert.deepEqual(bad, [], `console errors:\n${bad.join('\n')}`);
    },
  };
}

/** A page of a new context, opened at `hash`, with its error watch. */
export async function openPage(h, { hash = '#/', ...opts } = {}) {
  const ctx = await h.context(opts);
  const page = await ctx.newPage();
  const errs = watch(page);
  await page.goto(`${BASE}/${hash}`);
  await composer(page).waitFor();
  return { ctx, page, errs };
}

// The chat view ------------------------------------------------------------------------------

export const composer = (page) => page.getByRole('textbox', { name: 'Message' });
export const log = (page) => page.getByRole('log', { name: 'Messages' });
/** The answers (articles that are not the user's). */
export const answers = (page) => log(page).getByRole('article', { name: /^(?!You said$).+ said$/ });
export const sendButton = (page) => page.getByRole('button', { name: 'Send', exact: true });
export const stopButton = (page) => page.getByRole('button', { name: 'Stop', exact: true });

/** Types `text` into the composer and sends it with Enter. */
export async function ask(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

/** Waits until no answer is streaming (the Send button is back). */
export async function waitIdle(page, timeout = 90_000) {
  await sendButton(page).waitFor({ timeout });
  await stopButton(page).waitFor({ state: 'detached', timeout });
}

/** Sets this chat's settings in the settings panel (label -> text), saves and closes it. */
export async function setSettings(page, fields) {
  await page.getByRole('button', { name: 'Settings' }).click();
  const panel = page.getByRole('dialog', { name: 'Chat settings' });
  for (const [label, value] of Object.entries(fields)) {
    await panel.getByLabel(label, { exact: true }).fill(String(value));
  }
  await panel.getByRole('button', { name: 'Save settings' }).click();
  await panel.getByText('Saved.').waitFor();
  await panel.getByRole('button', { name: 'Close settings' }).click();
  await panel.waitFor({ state: 'detached' });
}

/** Starts a fresh chat from the sidebar. */
export async function newChat(page) {
  await page.getByRole('button', { name: 'New chat' }).click();
  await composer(page).waitFor();
}

/** The conversation id in the URL (`#/c/<id>`), once the chat has been saved. */
export async function conversationId(page, timeout = 15_000) {
  await page.waitForFunction(() => location.hash.startsWith('#/c/'), null, { timeout });
  return decodeURIComponent(new URL(page.url()).hash.slice('#/c/'.length));
}

// Faked answers ------------------------------------------------------------------------------

/** The SSE body of a chat completion streaming `deltas`, with a final usage/timings chunk. */
export function sseBody(deltas, { model = 'fake-model', citations } = {}) {
  const chunk = (extra) =>
    `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 0, model, ...extra })}\n\n`;
  let out = chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  if (citations) out += chunk({ choices: [], citations });
  for (const d of deltas) out += chunk({ choices: [{ index: 0, delta: { content: d }, finish_reason: null }] });
  out += chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  const n = deltas.length;
  out += chunk({
    choices: [],
    usage: { prompt_tokens: 5, completion_tokens: n, total_tokens: n + 5 },
    timings: { prompt_n: 5, prompt_ms: 1, predicted_n: n, predicted_ms: n, predicted_per_second: 1000, cached_n: 0 },
  });
  return out + 'data: [DONE]\n\n';
}

/**
 * Answers the page's chat calls with these texts, one per call (the last one again when they
 * run out), in small deltas; the real server still gets every other call.
 */
export async function fakeAnswers(page, texts, opts = {}) {
  const queue = [...texts];
  await page.route('**/v1/chat/completions', (route) => {
    const text = queue.length > 1 ? queue.shift() : queue[0];
    const deltas = text.match(/[\s\S]{1,3}/g) ?? [];
    return route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: sseBody(deltas, opts) });
  });
}

// Accessibility ------------------------------------------------------------------------------

let axeSource;
/**
 * Runs axe-core (node_modules/axe-core/axe.min.js) on the page; fails on "serious" or "critical" violations and prints the others
 * (so they are seen, not hidden).
 */
export async function axe(page, label) {
  axeSource ??= await readFile(new URL('../node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
  // Evaluated through the DevTools protocol: the page's CSP (rightly) refuses an inline script.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const { violations, incomplete } = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations', 'incomplete'] });
    const brief = (v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${(n.failureSummary ?? n.any?.[0]?.message ?? '').replace(/\s+/g, ' ').trim()}`),
    });
    return { violations: r.violations.map(brief), incomplete: r.incomplete.map(brief) };
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of violations.filter((x) => !bad.includes(x))) {
    console.log(`axe ${label}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes) ${v.nodes[0] ?? ''}`);
  }
  for (const v of incomplete) {
    console.log(`axe ${label}: needs review ${v.id}: ${v.help} (${v.nodes.length} nodes) ${v.nodes[0] ?? ''}`);
  }
  assert.deepEqual(
    bad,
    [],
    `axe ${label}:\n${bad.map((v) => `${v.impact} ${v.id} ${v.help}\n  ${v.nodes.join('\n  ')}`).join('\n')}`,
  );
  return violations;
}

// The API, as any client calls it --------------------------------------------------------------

export async function apiFetch(path, { key = KEY_A, method = 'GET', body, form } = {}) {
  return fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: form ?? (body ? JSON.stringify(body) : undefined),
  });
}

/** A collection with one Markdown document, made through the API (ingestion awaited). */
export async function seedCollection(name, fileName, text, key = KEY_A) {
  const made = await apiFetch('/collections', { key, method: 'POST', body: { name } });
  assert.ok(made.ok || made.status === 409, `create collection ${name}: ${made.status}`);
  const form = new FormData();
  form.append('file', new Blob([text], { type: 'text/markdown' }), fileName);
  const up = await apiFetch(`/collections/${encodeURIComponent(name)}/documents`, { key, method: 'POST', form });
  assert.ok(up.ok, `upload ${fileName}: ${up.status} ${await up.clone().text()}`);
  const job = (await up.json()).data[0];
  for (let i = 0; i < 200; i++) {
    const j = await (await apiFetch(`/jobs/${encodeURIComponent(job.id)}`, { key })).json();
    if (j.status === 'done') return;
    assert.notEqual(j.status, 'failed', `ingesting ${fileName}: ${j.error}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`ingesting ${fileName} did not finish`);
}
