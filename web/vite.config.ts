import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

/**
 * KaTeX's stylesheet lists every font as woff2, woff and ttf. Every browser that runs this UI
 * reads woff2, so the other two are dropped: they would only make dist (and the binary that
 * embeds it) larger.
 */
function katexWoff2Only(): Plugin {
  return {
    name: 'hearth-katex-woff2-only',
    enforce: 'pre',
    transform(code, id) {
      if (!/katex(\.min)?\.css$/.test(id.split('?')[0])) return null;
      const out = code.replace(/,\s*url\([^)]*\.woff\)\s*format\(["']woff["']\)/g, '')
        .replace(/,\s*url\([^)]*\.ttf\)\s*format\(["']truetype["']\)/g, '');
      return { code: out, map: null };
    },
  };
}

declare const process: { env: Record<string, string | undefined> };

// The server the dev server forwards API calls to (`npm run dev`).
const target = process.env.HEARTH_URL ?? 'http://127.0.0.1:8080';
const api = ['/v1', '/api', '/collections', '/jobs', '/models', '/metrics', '/health'];

export default defineConfig({
  base: '/',
  plugins: [katexWoff2Only(), svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    // Fonts and icons are files, never data: URLs inside CSS or JS.
    assetsInlineLimit: 0,
    cssCodeSplit: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    proxy: Object.fromEntries(api.map((p) => [p, { target, changeOrigin: false }])),
  },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
  },
});
