// Chatting with the real model: a streamed answer, Stop (button and Esc), following the stream,
// and the conversation kept on the server across a reload.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  answers,
  apiFetch,
  KEY_ADMIN,
  ask,
  composer,
  launch,
  log,
  newChat,
  openPage,
  sendButton,
  setSettings,
  stopButton,
  waitIdle,
} from './helpers.mjs';

const LONG = 'Write a very long story about a dragon and a knight, in at least thirty paragraphs.';

let h;
before(async () => {
  h = await launch();
});
after(async () => {
  await h?.close();
});

/** Records the length of the last answer's text on every frame while the log is busy. */
async function recordGrowth(page) {
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__lengths = [];
    const tick = () => {
      const logEl = document.querySelector('[role="log"]');
      const last = [...document.querySelectorAll('[role="log"] article')].at(-1);
      if (logEl?.getAttribute('aria-busy') === 'true' && last) w.__lengths.push(last.querySelector('.md')?.textContent?.length ?? 0);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}

/** Waits until the server's chat model runs no sequence (its /metrics gauge is 0). */
async function waitForNoActiveSequences(timeout = 10_000) {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    const text = await (await apiFetch('/metrics', { key: KEY_ADMIN })).text();
    last = text.split('\n').filter((l) => l.startsWith('hearth_active_sequences{')).join('; ');
    if (last && /^(hearth_active_sequences\{[^}]*\} 0(; )?)+$/.test(last)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`the server still runs sequences: ${last}`);
}

/** The last answer's text, without its footer. */
const answerText = (page) => answers(page).last().locator('.bubble').innerText();

/** Waits until the last answer has at least `n` characters. */
async function waitForText(page, n, timeout = 60_000) {
  await page.waitForFunction(
    (min) => ([...document.querySelectorAll('[role="log"] article .bubble')].at(-1)?.textContent?.trim().length ?? 0) >= min,
    n,
    { timeout },
  );
}

test('a question gets a streamed answer that grows, then its TTFT and tok/s', async () => {
  const { ctx, page, errs } = await openPage(h);
  await setSettings(page, { 'Max tokens': 48, Temperature: 0 });
  await recordGrowth(page);
  await ask(page, 'Name three colours of the rainbow.');
  await page.getByRole('article', { name: 'You said' }).getByText('Name three colours of the rainbow.').waitFor();
  await waitIdle(page);

  const lengths = await page.evaluate(() => /** @type {any} */ (window).__lengths);
  const distinct = [...new Set(lengths.filter((n) => n > 0))];
  assert.ok(distinct.length >= 2, `the answer should grow over several frames, saw lengths ${distinct.join(',')}`);
  for (let i = 1; i < distinct.length; i++) assert.ok(distinct[i] > distinct[i - 1], 'the text only grows');

  const answer = answers(page).last();
  assert.ok((await answerText(page)).trim().length > 0, 'the answer has text');
  await answer.getByText(/^TTFT \d+(\.\d+)? m?s$/).waitFor();
  await answer.getByText(/tok\/s$/).waitFor();
  await answer.getByText(/^\d+ tokens$/).waitFor();
  errs.assertClean();
  await ctx.close();
});

test('Stop ends a long answer, keeps the partial text and frees the composer; Esc stops too', async () => {
  const { ctx, page, errs } = await openPage(h);
  await setSettings(page, { 'Max tokens': 2000, Temperature: 0 });

  for (const how of ['button', 'Escape']) {
    await ask(page, LONG);
    await stopButton(page).waitFor();
    await waitForText(page, 40);
    const t0 = Date.now();
    if (how === 'button') await stopButton(page).click();
    else await page.keyboard.press('Escape');
    await stopButton(page).waitFor({ state: 'detached', timeout: 5_000 });
    const took = Date.now() - t0;
    assert.ok(took < 3_000, `${how}: the stream should end at once, took ${took} ms`);

    const answer = answers(page).last();
    await answer.getByText('stopped', { exact: true }).waitFor();
    const partial = await answerText(page);
    assert.ok(partial.trim().length >= 40, `${how}: the partial answer stays`);
    // Nothing more arrives after the stop.
    await page.waitForTimeout(500);
    assert.equal(await answerText(page), partial, `${how}: the answer does not grow after Stop`);

    // The composer takes the next message.
    await composer(page).fill('next');
    assert.ok(await sendButton(page).isEnabled(), `${how}: Send is enabled again`);
    await composer(page).fill('');
  }
  assert.equal(await answers(page).count(), 2);
  // Closing the stream freed the server's sequence.
  await waitForNoActiveSequences();
  errs.assertClean();
  await ctx.close();
});

test('reloading keeps the conversation: it is listed and opens with its messages', async () => {
  const { ctx, page, errs } = await openPage(h);
  await setSettings(page, { 'Max tokens': 24, Temperature: 0 });
  const question = `What is a reload test ${Date.now()}?`;
  await ask(page, question);
  await waitIdle(page);
  await page.waitForFunction(() => location.hash.startsWith('#/c/'));
  const answer = (await answerText(page)).trim();

  await page.reload();
  await composer(page).waitFor();
  const list = page.getByRole('navigation', { name: 'Conversation history' });
  const link = list.getByRole('link', { name: new RegExp(question.replace(/[?.]/g, '\\$&')) });
  await link.waitFor();

  await newChat(page);
  await page.waitForFunction(() => !location.hash.startsWith('#/c/'));
  await link.click();
  await page.getByRole('article', { name: 'You said' }).getByText(question).waitFor();
  assert.equal((await answerText(page)).trim(), answer, 'the answer is the one saved');
  errs.assertClean();
  await ctx.close();
});

test('while streaming, scrolling up is not undone and "Jump to latest" returns to the end', async () => {
  // A short window so a real answer overflows it within a few seconds.
  const { ctx, page, errs } = await openPage(h, { viewport: { width: 1000, height: 520 } });
  await setSettings(page, { 'Max tokens': 2000, Temperature: 0 });
  await ask(page, LONG);
  await stopButton(page).waitFor();
  const scroller = page.locator('.scroller');
  // Enough text to scroll by.
  await page.waitForFunction(
    () => {
      const s = document.querySelector('.scroller');
      return !!s && s.scrollHeight > s.clientHeight + 350;
    },
    null,
    { timeout: 90_000 },
  );
  const gap = () => scroller.evaluate((s) => s.scrollHeight - s.scrollTop - s.clientHeight);
  assert.ok((await gap()) < 60, 'it follows the stream while at the bottom');

  // Scroll up the way a reader does, with the wheel over the messages.
  const box = await log(page).boundingBox();
  await page.mouse.move(box.x + box.width / 2, Math.min(box.y + box.height - 20, 300));
  await page.mouse.wheel(0, -300);
  const jump = page.getByRole('button', { name: 'Jump to latest' });
  await jump.waitFor({ timeout: 5_000 });
  const top = await scroller.evaluate((s) => s.scrollTop);
  // Let the answer grow by a good amount: the view must stay where the reader put it.
  const len = (await answerText(page)).length;
  await waitForText(page, len + 150);
  assert.ok(await stopButton(page).isVisible(), 'still streaming');
  const topAfter = await scroller.evaluate((s) => s.scrollTop);
  assert.ok(Math.abs(topAfter - top) < 5, `scroll position kept (${top} -> ${topAfter})`);
  assert.ok((await gap()) > 200, 'not pulled back to the bottom');

  await jump.click();
  await jump.waitFor({ state: 'detached', timeout: 5_000 });
  await page.waitForFunction(() => {
    const s = document.querySelector('.scroller');
    return !!s && s.scrollHeight - s.scrollTop - s.clientHeight < 60;
  });

  // A slow trackpad: a few small steps, less in all than the "at the bottom" margin. The
  // stream used to pull such a scroll back down at its next line.
  await page.waitForFunction(() => !document.querySelector('.jump'));
  for (let i = 0; i < 5; i++) {
    await page.mouse.wheel(0, -8);
    await page.waitForTimeout(20);
  }
  await jump.waitFor({ timeout: 5_000 });
  const len2 = (await answerText(page)).length;
  await waitForText(page, len2 + 150);
  assert.ok(await jump.isVisible(), 'still away from the end');
  assert.ok((await gap()) > 30, `small scrolls are not undone (gap ${await gap()})`);
  await stopButton(page).click();
  await waitIdle(page);
  errs.assertClean();
  await ctx.close();
});
