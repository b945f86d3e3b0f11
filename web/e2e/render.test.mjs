// How answers are rendered, with answers faked by intercepting the chat call (the page still
// talks to the real server for everything else): HTML and script in a model's answer never run,
// markdown and code are rendered, and math is set only where it is clearly math.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { answers, ask, composer, fakeAnswers, launch, openPage, waitIdle } from './helpers.mjs';

let h;
before(async () => {
  h = await launch();
});
after(async () => {
  await h?.close();
});

const HOSTILE = [
  'Here is **bold** and a list:',
  '',
  '- one',
  '- two',
  '',
  'An image: <img src=x onerror="window.__pwned=1"> and inline `<b>code</b>` text.',
  '',
  '<script>window.__pwned=2</script>',
  '',
  '[click me](javascript:window.__pwned=3) and [a fine link](https://example.org/)',
  '',
  '<a href="javascript:window.__pwned=4">raw link</a> <svg onload="window.__pwned=5"></svg>',
  '',
  '<iframe src="javascript:window.__pwned=6"></iframe><form action="https://example.org"><input name=q></form>',
  '',
  '```js',
  'const answer = 42; // <script>window.__pwned=7</script>',
  '```',
  '',
  'The end.',
].join('\n');

async function checkHarmless(page) {
  const msg = answers(page).last();
  const md = msg.locator('.md');
  await md.getByText('The end.').waitFor();
  // Give any handler that slipped through the chance to run.
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined, 'no injected code ran');
  assert.equal(await md.locator('script, img, svg, iframe, form, [onerror], [onload], [data-blocked-onerror]').count(), 0, 'no dangerous element or handler is left');
  // Markdown is rendered, the HTML shown in code stays text.
  assert.equal(await md.locator('strong').innerText(), 'bold');
  assert.equal(await md.locator('ul > li').count(), 2);
  assert.equal(await md.locator(':not(pre) > code').first().innerText(), '<b>code</b>');
  assert.match(await md.locator('pre code').innerText(), /<script>window\.__pwned=7<\/script>/, 'code shows the script as text');
  // Links: javascript: is gone, an https link stays (opening in a new tab, without the opener).
  for (const name of ['click me', 'raw link']) {
    const href = await md.getByText(name).evaluate((el) => el.closest('a')?.getAttribute('href') ?? null);
    assert.ok(href === null || !/^\s*javascript:/i.test(href), `${name}: no javascript: href (${href})`);
  }
  const fine = md.getByRole('link', { name: 'a fine link' });
  assert.equal(await fine.getAttribute('href'), 'https://example.org/');
  assert.equal(await fine.getAttribute('rel'), 'noopener noreferrer');
  await md.getByText('click me').click();
  await md.getByText('raw link').click();
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined, 'clicking the links ran nothing');
}

test('HTML and script in an answer are not executed; markdown renders and code gets a Copy button', async () => {
  const { ctx, page, errs } = await openPage(h, { permissions: ['clipboard-read', 'clipboard-write'] });
  await fakeAnswers(page, [HOSTILE]);
  await ask(page, 'Show me something dangerous.');
  await waitIdle(page);
  await checkHarmless(page);

  const copy = answers(page).last().getByRole('button', { name: 'Copy code' });
  await copy.click();
  await answers(page).last().getByRole('button', { name: 'Copy code' }).getByText('Copied').waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  assert.match(clip, /^const answer = 42;/, 'the code was copied');

  // The saved answer, rendered again after a reload, is just as harmless.
  await page.waitForFunction(() => location.hash.startsWith('#/c/'));
  await page.reload();
  await composer(page).waitFor();
  await checkHarmless(page);
  errs.assertClean();
  await ctx.close();
});

test('math is set only where it is clearly math: prices stay text, $$...$$ is KaTeX', async () => {
  const { ctx, page, errs } = await openPage(h);
  await fakeAnswers(page, ['It costs $100 and $200 for two, so $300 in all.', 'Einstein wrote\n\n$$E=mc^2$$\n\nand inline $a^2+b^2=c^2$ too.']);
  await ask(page, 'Prices?');
  await waitIdle(page);
  const prices = answers(page).nth(0).locator('.md');
  await prices.getByText('It costs $100 and $200 for two, so $300 in all.').waitFor();
  assert.equal(await prices.locator('.katex, .math').count(), 0, 'no math in prices');

  await ask(page, 'Physics?');
  await waitIdle(page);
  const physics = answers(page).nth(1).locator('.md');
  // KaTeX loads lazily and then sets the formula.
  await physics.locator('.math-display .katex').waitFor({ timeout: 15_000 });
  assert.match(await physics.locator('.math-display .katex-mathml annotation').textContent(), /E=mc\^2/);
  await physics.locator('.math-inline .katex').waitFor();
  assert.equal(await prices.locator('.katex').count(), 0, 'the prices answer stays text after KaTeX loads');
  errs.assertClean();
  await ctx.close();
});

test('the console watch sees what it must: a script the page policy blocks is a CSP error', async () => {
  // The other tests' "no console errors" would mean little if a violation went unseen.
  const { ctx, page, errs } = await openPage(h);
  await assert.rejects(page.addScriptTag({ content: 'window.__inline = 1' }));
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__inline), undefined, 'the inline script did not run');
  // Chromium's own console report, or the page's securitypolicyviolation event (it fires a
  // task later), whichever has arrived: both name the directive.
  await assert.rejects(async () => errs.assertClean(), /script-src/);
  await ctx.close();
});
