// Getting a model from the server view: a pull from the hub on loopback (scripts/test-web serves
// the starter model there, paced, as test/bench-GGUF's Pulled-SmolLM2-Q4_1.gguf) shows its bytes
// moving, can be cancelled, ends ready, and the pulled model is then in the chat's model choice
// and answers. A key that is not an admin's is told it cannot pull.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { answers, ask, axe, composer, KEY_ADMIN, KEY_A, launch, openPage, waitIdle } from './helpers.mjs';

const REF = 'test/bench-GGUF:Q4_1';
const PULLED = 'Pulled-SmolLM2-Q4_1';

let h;
before(async () => {
  h = await launch();
});
after(async () => {
  await h?.close();
});

async function serverView(page) {
  await page.getByRole('link', { name: 'Server' }).click();
  await page.getByRole('heading', { name: 'Get a model' }).waitFor();
}

test('a pull shows its progress, can be cancelled, resumes, and the model then chats', async () => {
  const { ctx, page, errs } = await openPage(h, { key: KEY_ADMIN });
  await serverView(page);
  const input = page.getByLabel('Model on the Hugging Face hub');
  const job = page.getByRole('listitem', { name: `Pull of ${REF}` });

  await input.fill(REF);
  await page.getByRole('button', { name: 'Pull', exact: true }).click();
  const bar = job.getByRole('progressbar', { name: `Downloaded of ${REF}` });
  await bar.waitFor({ timeout: 15_000 });
  // The bytes move while it runs (read twice, a second apart).
  await page.waitForFunction(() => Number(document.querySelector('progress')?.value) > 0, null, { timeout: 15_000 });
  const first = Number(await bar.getAttribute('value'));
  await page.waitForTimeout(1200);
  const second = Number(await bar.getAttribute('value'));
  assert.ok(second > first, `progress moves: ${first} -> ${second}`);
  await job.getByText(/ of \d+(\.\d+)? MiB · .*\/s · .* left/).waitFor();
  await axe(page, 'server view with a pull running');
  await job.getByRole('button', { name: 'Cancel' }).click();
  await job.getByText('Cancelled', { exact: true }).waitFor();
  await job.getByRole('button', { name: 'Dismiss' }).click();
  await job.waitFor({ state: 'detached' });

  // Pulled again: it resumes and ends ready under the file's id.
  await input.fill(REF);
  await page.getByRole('button', { name: 'Pull', exact: true }).click();
  await job.getByText(`Ready as ${PULLED}.`).waitFor({ timeout: 90_000 });

  // The pulled model is in the chat's model choice and answers.
  await page.getByRole('link', { name: 'Hearth, new chat' }).click();
  await composer(page).waitFor();
  await page.getByRole('button', { name: 'Settings' }).click();
  const panel = page.getByRole('dialog', { name: 'Chat settings' });
  await panel.locator('select').first().selectOption(PULLED);
  await panel.getByRole('button', { name: 'Save settings' }).click();
  await panel.getByText('Saved.').waitFor();
  await panel.getByRole('button', { name: 'Close settings' }).click();
  await ask(page, 'Say hi.');
  await waitIdle(page);
  assert.ok((await answers(page).last().innerText()).trim().length > 0, 'the pulled model answered');
  errs.assertClean();
  await ctx.close();
});

test('a key that is not an admin key is told pulling needs one', async () => {
  const { ctx, page, errs } = await openPage(h, { key: KEY_A });
  await serverView(page);
  await page.getByText('Pulling models needs an admin API key.').waitFor();
  errs.allow(/status of 403/);
  errs.assertClean();
  await ctx.close();
});
