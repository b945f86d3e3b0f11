// axe-core on every view, in the light and the dark theme: no "serious" or "critical"
// violation (the others are printed). The chat's answer is faked so its content is fixed: a
// list, a table, highlighted code, math and cited sources.
import { after, before, test } from 'node:test';
import { answers, ask, axe, BASE, composer, fakeAnswers, KEY_ADMIN, launch, openPage, seedCollection, waitIdle } from './helpers.mjs';

const COLLECTION = 'e2e-a11y-docs';
const ANSWER = [
  '## A heading',
  '',
  'Text with **bold**, `inline code`, a [link](https://example.org/) and a citation [1].',
  '',
  '1. first',
  '2. second',
  '',
  '| name | value |',
  '|------|-------|',
  '| a    | 1     |',
  '',
  '> a quote',
  '',
  '```python',
  'def f(x):  # a comment',
  '    return "text" + str(42)',
  '```',
  '',
  '$$\\int_0^1 x^2\\,dx = \\frac13$$',
].join('\n');
const CITATIONS = [
  { n: 1, document: 'guide.md', title: 'Guide', text: 'The cited passage of the guide.', section: 'Intro', score: 0.83 },
  { n: 2, document: 'report.pdf', text: 'A passage on page two.', page: 2, score: 0.61 },
];

let h;
before(async () => {
  h = await launch();
  await seedCollection(COLLECTION, 'a11y.md', '# Accessibility\n\nA document so the collection has a row.\n', KEY_ADMIN);
});
after(async () => {
  await h?.close();
});

for (const theme of ['light', 'dark']) {
  test(`no serious or critical axe violations in the ${theme} theme: chat, settings, key dialog, collections, server`, async () => {
    // The admin key: the server view's charts read /metrics, which only admin keys may.
    const { ctx, page, errs } = await openPage(h, { theme, key: KEY_ADMIN });
    errs.allow(/status of (400|415)/);
    await axe(page, `${theme} empty chat`);

    await fakeAnswers(page, [ANSWER], { citations: CITATIONS });
    await ask(page, 'Show me everything.');
    await waitIdle(page);
    const answer = answers(page).last();
    await answer.locator('.katex').first().waitFor({ timeout: 15_000 });
    await answer.getByRole('button', { name: /^Source 1: guide\.md/ }).click();
    await answer.getByRole('dialog').waitFor();
    // An upload that failed and one that is ready, as the composer shows them.
    await page.getByLabel('Files to attach').setInputFiles([
      { name: 'bad.exe', mimeType: 'application/octet-stream', buffer: Buffer.from([0, 1, 2, 3]) },
      { name: 'good.md', mimeType: 'text/markdown', buffer: Buffer.from('# Good\n\nfine\n') },
    ]);
    const uploads = page.getByRole('list', { name: 'Uploads' });
    await uploads.getByRole('alert').filter({ hasText: 'bad.exe' }).waitFor({ timeout: 60_000 });
    await uploads.getByText('ready', { exact: true }).waitFor({ timeout: 60_000 });
    await axe(page, `${theme} chat with an answer`);

    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByRole('dialog', { name: 'Chat settings' }).waitFor();
    await axe(page, `${theme} settings`);
    await page.getByRole('button', { name: 'Close settings' }).click();

    await page.getByRole('button', { name: 'API key' }).click();
    const dialog = page.getByRole('dialog', { name: 'API key' });
    await dialog.waitFor();
    await axe(page, `${theme} key dialog`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });

    await page.getByRole('link', { name: 'Collections' }).click();
    await page.getByRole('link', { name: COLLECTION }).waitFor();
    await axe(page, `${theme} collections`);
    await page.getByRole('link', { name: COLLECTION }).click();
    await page.getByRole('cell', { name: /^a11y\.md/ }).first().waitFor();
    await axe(page, `${theme} collection`);

    await page.getByRole('link', { name: 'Server' }).click();
    await page.getByRole('cell', { name: /SmolLM2-135M-Instruct/ }).first().waitFor();
    await axe(page, `${theme} server`);
    errs.assertClean();
    await ctx.close();
  });
}

test('no serious or critical axe violations on a phone: chat and the conversation drawer', async () => {
  const { ctx, page, errs } = await openPage(h, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await fakeAnswers(page, [ANSWER], { citations: CITATIONS });
  await ask(page, 'Show me everything on a phone.');
  await waitIdle(page);
  await axe(page, 'phone chat');
  await page.getByRole('button', { name: 'Conversations' }).click();
  await page.getByRole('button', { name: 'Close the conversation list' }).first().waitFor();
  await axe(page, 'phone drawer');
  await page.goto(`${BASE}/#/`);
  await composer(page).waitFor();
  errs.assertClean();
  await ctx.close();
});
