// The API documentation (Swagger UI at /docs) renders under its own Content-Security-Policy,
// which keeps it from running anything but its own files on the origin where the UI keeps its
// key, and no other site may frame it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, watch } from './helpers.mjs';

let h;
before(async () => {
  h = await launch();
});
after(async () => {
  await h?.close();
});

test('Swagger UI renders the API under a strict CSP and refuses to be framed', async () => {
  const ctx = await h.context();
  const page = await ctx.newPage();
  const errors = watch(page);
  const res = await page.goto(`${BASE}/docs/`);
  const csp = res.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self';/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(res.headers()['x-frame-options'], 'DENY');
  await page.getByRole('heading', { name: /Hearth/ }).first().waitFor({ timeout: 30000 });
  await page.getByText('/v1/chat/completions').first().waitFor();
  errors.assertClean();
  await ctx.close();
});
