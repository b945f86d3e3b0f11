// Documents in a chat: Markdown, PDF and DOCX files made here, uploaded through the file input,
// ingested by the real server (per-file progress to "ready"), then an answer grounded in them
// with sources that open the cited text. A bad file gets the server's message naming it.
// The model is tiny: the tests check the sources, not what it says.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { docx, pdf } from './fixtures.mjs';
import { answers, ask, launch, openPage, setSettings, waitIdle } from './helpers.mjs';

let h;
before(async () => {
  h = await launch();
});
after(async () => {
  await h?.close();
});

const FILES = [
  {
    name: 'zorblat-notes.md',
    mimeType: 'text/markdown',
    buffer: Buffer.from('# Zorblat notes\n\nThe zorblat engine was invented by Ada Quill in 1907 in the town of Brindlemere.\n'),
    fact: 'Ada Quill',
  },
  {
    name: 'quintor-report.pdf',
    mimeType: 'application/pdf',
    buffer: pdf(['The quintor valve was designed by Tobias Wren in 1911.\nIt regulates steam in zorblat engines.']),
    fact: 'Tobias Wren',
  },
  {
    name: 'fennick-history.docx',
    mimeType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    buffer: docx('Fennick history', [
      ['Heading1', 'Fennick gears'],
      ['', 'The fennick gear was first cast by Mira Holt in 1923 for zorblat engines.'],
    ]),
    fact: 'Mira Holt',
  },
];

const uploads = (page) => page.getByRole('list', { name: 'Uploads' });

test('Markdown, PDF and DOCX uploads become ready and ground an answer whose sources open the cited text', async () => {
  const { ctx, page, errs } = await openPage(h);
  await setSettings(page, { 'Max tokens': 24, Temperature: 0, 'Sources per answer': 3 });
  await page.getByLabel('Files to attach').setInputFiles(FILES.map(({ name, mimeType, buffer }) => ({ name, mimeType, buffer })));
  for (const f of FILES) {
    await uploads(page).getByRole('listitem').filter({ hasText: f.name }).getByText('ready', { exact: true }).waitFor({ timeout: 90_000 });
  }
  // The chat now says it is grounded in its documents.
  await page.getByText('3 documents').waitFor();

  await ask(page, 'Who invented the zorblat engine, who designed the quintor valve and who cast the fennick gear?');
  await waitIdle(page);
  const answer = answers(page).last();
  await answer.getByText('Sources', { exact: true }).waitFor();
  const sources = answer.getByRole('button', { name: /^Source \d+: / });
  const names = await sources.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
  for (const f of FILES) {
    assert.ok(names.some((n) => n.includes(f.name)), `a source names ${f.name}: ${names.join(' | ')}`);
  }

  // Each file's source opens its chunk, with the fact in it.
  for (const f of FILES) {
    await answer.getByRole('button', { name: new RegExp(`^Source \\d+: ${f.name.replace('.', '\\.')}`) }).click();
    const panel = answer.getByRole('dialog');
    await panel.getByText(f.fact, { exact: false }).waitFor();
    assert.ok((await panel.innerText()).includes(f.name), 'the panel names the document');
    await panel.getByRole('button', { name: 'Close source' }).click();
    await panel.waitFor({ state: 'detached' });
  }
  assert.match(names.find((n) => n.includes('quintor-report.pdf')), /page 1\b/, 'the PDF source names its page');
  errs.assertClean();
  await ctx.close();
});

test('a file the server cannot read gets its error message, naming the file', async () => {
  const { ctx, page, errs } = await openPage(h);
  errs.allow(/status of (400|413|415|422)/);
  await page.getByLabel('Files to attach').setInputFiles([
    { name: 'junk.exe', mimeType: 'application/octet-stream', buffer: Buffer.from([0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00, 0xff, 0xfe, 0x00, 0x01]) },
    { name: 'broken.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.5\nthis is not really a pdf\n') },
    { name: 'fine.md', mimeType: 'text/markdown', buffer: Buffer.from('# Fine\n\nA good file next to the bad ones.\n') },
  ]);
  const list = uploads(page);
  for (const name of ['junk.exe', 'broken.pdf']) {
    const alert = list.getByRole('alert').filter({ hasText: name });
    await alert.waitFor({ timeout: 60_000 });
    const text = await alert.innerText();
    assert.ok(text.length > name.length + 5, `a message, not just the name: ${text}`);
  }
  // The good file next to them is stored all the same.
  await list.getByRole('listitem').filter({ hasText: 'fine.md' }).getByText('ready', { exact: true }).waitFor({ timeout: 60_000 });
  console.log(`upload errors: ${(await list.getByRole('alert').allInnerTexts()).join(' | ')}`);
  errs.assertClean();
  await ctx.close();
});
