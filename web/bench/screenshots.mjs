// Remakes the UI screenshots in docs/ against a running Hearth with the real model:
//
//   HEARTH_URL=http://127.0.0.1:8080 HEARTH_KEY_A=sk-... node web/bench/screenshots.mjs
//
// A fresh server (a new --vector-store) gives a clean conversation list: this adds two short
// conversations, a collection "handbook" with two documents, and one chat answered live.
// Writes docs/ui-chat-light.png, ui-chat-dark.png (1280x800), ui-phone-light.png,
// ui-phone-dark.png (390x844), ui-server.png and ui-collections.png (light, 1280x800).
import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { pdf } from '../e2e/fixtures.mjs';

const BASE = process.env.HEARTH_URL ?? 'http://127.0.0.1:8080';
const KEY = process.env.HEARTH_KEY_A ?? '';
const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars'];
const QUESTION = 'Write a Python function that reverses a string, then explain it in two sentences.';

async function api(path, { body, form, method = body || form ? 'POST' : 'GET' } = {}) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { ...(KEY ? { Authorization: `Bearer ${KEY}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: form ?? (body ? JSON.stringify(body) : undefined),
  });
  if (!res.ok && res.status !== 409) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 409 ? undefined : res.json();
}

/** A conversation with a real (short) answer, for the list in the sidebar. */
async function seedConversation(title, question) {
  const listed = await api(`/api/v1/conversations?limit=100&q=${encodeURIComponent(title)}`);
  if (listed.data?.some((c) => c.title === title)) return;
  const r = await api('/v1/chat/completions', { body: { messages: [{ role: 'user', content: question }], max_tokens: 60, temperature: 0 } });
  const answer = r.choices[0].message.content;
  await api('/api/v1/conversations', {
    body: {
      title,
      settings: { max_tokens: 60, temperature: 0 },
      messages: [
        { id: `u-${Date.now()}`, role: 'user', content: question },
        { id: `a-${Date.now()}`, role: 'assistant', content: answer, model: r.model },
      ],
    },
  });
}

async function seedCollection() {
  await api('/collections', { body: { name: 'handbook' } });
  const docs = [
    ['onboarding.md', 'text/markdown', Buffer.from('# Onboarding\n\nNew staff get a laptop on day one and meet their mentor on day two.\n\n## Tools\n\nWe use Hearth for questions about this handbook.\n')],
    ['travel-policy.pdf', 'application/pdf', pdf(['Travel policy\nTrains are preferred for trips under five hours.', 'Expenses\nReceipts are filed within thirty days.'])],
  ];
  const have = ((await api('/collections/handbook/documents')).data ?? []).map((d) => d.name);
  for (const [name, type, buf] of docs) {
    if (have.includes(name)) continue;
    const form = new FormData();
    form.append('file', new Blob([buf], { type }), name);
    const job = (await api('/collections/handbook/documents', { form })).data[0];
    for (let i = 0; i < 300; i++) {
      const j = await api(`/jobs/${encodeURIComponent(job.id)}`);
      if (j.status === 'done' || j.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function context(browser, { theme = 'light', phone = false } = {}) {
  const ctx = await browser.newContext(
    phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 800 } },
  );
  await ctx.addInitScript(([key, t]) => {
    if (key) localStorage.setItem('hearth.apiKey', key);
    localStorage.setItem('hearth.theme', t);
  }, [KEY, theme]);
  return ctx;
}

async function shot(page, name) {
  // No caret or hover effects in the picture.
  await page.mouse.move(0, 0);
  await page.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.blur());
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(OUT, name) });
  console.log(`docs/${name}`);
}

async function main() {
  await mkdir(OUT, { recursive: true });
  await seedConversation('Packing list for a weekend hike', 'Give me a short packing list for a weekend hike.');
  await seedConversation('What is a haiku?', 'What is a haiku? Answer in one sentence.');
  await seedCollection();

  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ARGS });
  try {
    // The chat, answered live.
    let ctx = await context(browser);
    let page = await ctx.newPage();
    await page.goto(`${BASE}/`);
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.waitFor();
    await page.getByRole('button', { name: 'Settings' }).click();
    const panel = page.getByRole('dialog', { name: 'Chat settings' });
    await panel.getByLabel('Max tokens', { exact: true }).fill('160');
    await panel.getByLabel('Temperature', { exact: true }).fill('0');
    await panel.getByRole('button', { name: 'Save settings' }).click();
    await panel.getByRole('button', { name: 'Close settings' }).click();
    await box.fill(QUESTION);
    await box.press('Enter');
    await page.getByRole('button', { name: 'Send', exact: true }).waitFor({ timeout: 120_000 });
    await page.waitForFunction(() => location.hash.startsWith('#/c/'));
    const chatUrl = page.url();
    await shot(page, 'ui-chat-light.png');
    await ctx.close();

    for (const [theme, name, phone] of [['dark', 'ui-chat-dark.png', false], ['light', 'ui-phone-light.png', true], ['dark', 'ui-phone-dark.png', true]]) {
      ctx = await context(browser, { theme, phone });
      page = await ctx.newPage();
      await page.goto(chatUrl);
      await page.getByRole('article', { name: 'You said' }).waitFor();
      await page.locator('.hljs').first().waitFor().catch(() => {});
      await shot(page, name);
      await ctx.close();
    }

    // The server view, with some traffic so the charts move.
    ctx = await context(browser);
    page = await ctx.newPage();
    await page.goto(`${BASE}/#/server`);
    await page.getByRole('cell', { name: /SmolLM2/ }).first().waitFor();
    const traffic = Promise.all([0, 1].map(() => api('/v1/chat/completions', { body: { messages: [{ role: 'user', content: 'Count from one to a hundred in words.' }], max_tokens: 600, temperature: 0 } })));
    // A few samples while two streams run.
    await page.waitForTimeout(7000);
    await shot(page, 'ui-server.png');
    await traffic;

    await page.getByRole('link', { name: 'Collections' }).click();
    await page.getByRole('link', { name: 'handbook' }).waitFor();
    await shot(page, 'ui-collections.png');
    await ctx.close();
  } finally {
    await browser.close();
  }
}

await main();
