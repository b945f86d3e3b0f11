// Who sees what: a conversation belongs to its API key (another browser with the same key sees
// it, another key does not, in the UI or the API), and the API key dialog.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE,
  KEY_A,
  KEY_B,
  answers,
  apiFetch,
  ask,
  composer,
  conversationId,
  launch,
  openPage,
  setSettings,
  waitIdle,
  watch,
} from './helpers.mjs';

let h;
before(async () => {
  h = await launch();
});
after(async () => {
  await h?.close();
});

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test("a conversation is seen by another browser with the same key, never with another key", async () => {
  const question = `Tell me one word about privacy ${Date.now()}`;
  const a = await openPage(h);
  await setSettings(a.page, { 'Max tokens': 16, Temperature: 0 });
  await ask(a.page, question);
  await waitIdle(a.page);
  const id = await conversationId(a.page);
  const answer = (await answers(a.page).last().locator('.bubble').innerText()).trim();
  await a.page.getByRole('navigation', { name: 'Conversation history' }).getByRole('link', { name: new RegExp(esc(question)) }).waitFor();

  // The same key in a second browser context (its own storage): listed, and it opens.
  const a2 = await openPage(h, { key: KEY_A });
  const list2 = a2.page.getByRole('navigation', { name: 'Conversation history' });
  await list2.getByRole('link', { name: new RegExp(esc(question)) }).click();
  await a2.page.getByRole('article', { name: 'You said' }).getByText(question).waitFor();
  assert.equal((await answers(a2.page).last().locator('.bubble').innerText()).trim(), answer);

  // Another key: not listed; its URL says not found and shows none of it.
  const b = await openPage(h, { key: KEY_B });
  b.errs.allow(/status of 404/);
  const listB = b.page.getByRole('navigation', { name: 'Conversation history' });
  await listB.waitFor();
  // The list has loaded once the empty note or some entry is there.
  await b.page.waitForFunction(() => !!document.querySelector('nav[aria-label="Conversation history"] li, nav[aria-label="Conversation history"] p'));
  assert.equal(await listB.getByRole('link', { name: new RegExp(esc(question)) }).count(), 0, "bob's list lacks alice's chat");
  await b.page.goto(`${BASE}/#/c/${encodeURIComponent(id)}`);
  await b.page.getByRole('alert').filter({ hasText: /does not exist/ }).waitFor();
  assert.equal(await b.page.getByText(question).count(), 0, "alice's question is not shown to bob");
  assert.equal(await b.page.getByRole('article').count(), 0, 'no message is shown to bob');
  await composer(b.page).waitFor();

  // The API agrees.
  assert.equal((await apiFetch(`/api/v1/conversations/${encodeURIComponent(id)}`, { key: KEY_B })).status, 404);
  assert.equal((await apiFetch(`/api/v1/conversations/${encodeURIComponent(id)}`, { key: KEY_A })).status, 200);
  const bobList = await (await apiFetch('/api/v1/conversations?limit=200', { key: KEY_B })).json();
  assert.ok(!bobList.data.some((c) => c.id === id), "bob's listing lacks alice's chat");

  for (const x of [a, a2, b]) {
    x.errs.assertClean();
    await x.ctx.close();
  }
});

test('the API key dialog: asked for on a keyless browser, a wrong key is refused, the right one works', async () => {
  const ctx = await h.context({ key: '' });
  const page = await ctx.newPage();
  const errs = watch(page);
  errs.allow(/status of 401/);
  await page.goto(`${BASE}/`);

  const dialog = page.getByRole('dialog', { name: 'This server needs an API key' });
  await dialog.waitFor();
  await dialog.getByText('This server needs an API key. Enter it to continue.').waitFor();
  const input = dialog.getByLabel('API key');
  const save = dialog.getByRole('button', { name: 'Save key' });
  assert.ok(await save.isDisabled(), 'nothing to save yet');

  await input.fill('sk-not-a-key');
  await save.click();
  await dialog.getByText('The server did not accept this API key.', { exact: false }).waitFor();
  assert.ok(await dialog.isVisible(), 'still asking after a wrong key');

  await input.fill(KEY_A);
  await save.click();
  await dialog.waitFor({ state: 'hidden' });
  // The calls went through: the model list is there, and the key is kept for the next load.
  await page.getByRole('combobox', { name: 'Model' }).getByRole('option', { name: /SmolLM2-135M-Instruct/ }).first().waitFor({ state: 'attached' });
  await page.reload();
  await composer(page).waitFor();
  await page.getByRole('combobox', { name: 'Model' }).getByRole('option', { name: /SmolLM2-135M-Instruct/ }).first().waitFor({ state: 'attached' });
  assert.equal(await page.getByRole('dialog').count(), 0, 'no dialog once the key is stored');
  errs.assertClean();
  await ctx.close();
});
