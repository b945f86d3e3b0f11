import { beforeAll, describe, expect, it } from 'vitest';
import { IncrementalRenderer } from '../src/lib/markdown/incremental';
import { hasMath, inlineMath, isMathLike, loadMath, mathReady } from '../src/lib/markdown/math';
import { isOpenFence, renderMarkdown } from '../src/lib/markdown/render';

/** Feeds `text` in pieces cut at `cuts` (or every `step` characters); returns the final HTML. */
function streamed(text: string, pieces: string[], opts = {}): string {
  const r = new IncrementalRenderer(opts);
  let acc = '';
  for (const p of pieces) {
    acc += p;
    r.update(acc);
  }
  expect(acc).toBe(text);
  r.finish(acc);
  return r.html;
}

function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** A deterministic pseudo-random split. */
function randomChunks(text: string, seed: number): string[] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const n = 1 + Math.floor(rand() * 12);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

const SAMPLES: Record<string, string> = {
  codeFence:
    'Here is code:\n\n```python\ndef f(x):\n    return x * 2\n\n\nprint(f(2))\n```\n\nAnd after.\n\n```\nplain\n```\n',
  lists:
    '1. one\n2. two\n\n3. three, loose\n\n   continued paragraph\n\n- a\n- b\n  - nested\n\n* other bullet\n\nDone.\n',
  listThenParagraph: '- a\n- b\n\nparagraph\n\n- c\n',
  table: 'Before\n\n| a | b |\n|---|:-:|\n| 1 | 2 |\n| 3 | 4 |\n\nAfter the table.\n',
  tableAfterParagraph: 'Text right above\n| x | y |\n| - | - |\n| 1 | 2 |\n',
  math: 'Euler: $e^{i\\pi} + 1 = 0$.\n\n$$\n\\int_0^1 x^2\\,dx = \\frac13\n$$\n\nAnd \\(a^2\\) and \\[b^2\\].\n',
  headingsAndQuotes: '# Title\n\nSetext\n===\n\n> quoted\n> more\n\n> second\n\n---\n\nend',
  indentedCode: 'para\n\n    code line\n\n    more code\n\nafter\n',
  unclosedFence: 'start\n\n```js\nconst a = 1;\nconst b = 2;\n',
  references: '[r]: https://example.org "T"\n\n[link][r]\n\n[again][r]\n',
  mixed:
    '## Plan\n\n1. **Bold** and *em* with `code`\n2. A [link](https://example.com)\n\n```rust\nfn main() {}\n```\n\n| h |\n|---|\n| c |\n\nA price of $100 and $5 and $10 stays text, $x^2$ is math.\n',
};

describe('incremental renderer', () => {
  beforeAll(async () => {
    await loadMath();
  });

  for (const [name, text] of Object.entries(SAMPLES)) {
    it(`equals a full render: ${name}`, () => {
      const full = renderMarkdown(text);
      for (const size of [1, 2, 3, 5, 7, 16, 1000]) {
        expect(streamed(text, chunks(text, size)), `chunk size ${size}`).toBe(full);
      }
      for (let seed = 1; seed <= 20; seed++) {
        expect(streamed(text, randomChunks(text, seed)), `seed ${seed}`).toBe(full);
      }
    });
  }

  it('keeps finished blocks while streaming, re-rendering only the tail', () => {
    const r = new IncrementalRenderer();
    r.update('First paragraph.\n\nSecond');
    // `Second` might still become a setext heading's text or `2.`: the first block waits.
    expect(r.committedBlocks.length).toBe(0);
    r.update('First paragraph.\n\nSecond paragraph.\n');
    const first = r.committedBlocks;
    expect(first.length).toBe(1);
    expect(r.tailBlocks.length).toBe(1);
    r.update('First paragraph.\n\nSecond paragraph.\n\nThird\n');
    expect(r.committedBlocks[0]).toBe(first[0]);
    expect(r.committedBlocks.length).toBe(2);
  });

  it('does not highlight an open fence while streaming, but does at the end', () => {
    const r = new IncrementalRenderer();
    const text = '```python\ndef f():\n    pass\n';
    r.update(text);
    expect(r.html).not.toContain('hljs-keyword');
    r.finish(text);
    expect(r.html).toContain('hljs-keyword');
    expect(r.html).toBe(renderMarkdown(text));
  });

  it('streams a long answer in linear work', () => {
    const para = 'Some words in a sentence that goes on for a while. '.repeat(4);
    const text = Array.from({ length: 200 }, (_, i) => (i % 10 === 0 ? '```js\nlet x = 1;\n```' : para)).join('\n\n');
    const r = new IncrementalRenderer();
    let acc = '';
    let maxTail = 0;
    for (const piece of chunks(text, 24)) {
      acc += piece;
      r.update(acc);
      maxTail = Math.max(maxTail, acc.length - (r.committedBlocks.length ? (r.committedBlocks.at(-1)!.key) : 0));
    }
    r.finish(acc);
    // The open tail stays around one block long, however long the answer gets.
    expect(maxTail).toBeLessThan(para.length * 4);
    expect(r.html).toBe(renderMarkdown(text));
  });

  it('renders citations as buttons only for known sources', () => {
    const text = 'Paris is the capital [1]. See also [2] and [1, 3].';
    const html = renderMarkdown(text, { citations: new Set([1, 2]) });
    expect(html).toContain('data-cite="1"');
    expect(html).toContain('data-cite="2"');
    expect(html).toContain('[1, 3]');
    expect(streamed(text, chunks(text, 3), { citations: new Set([1, 2]) })).toBe(html);
    expect(renderMarkdown(text)).not.toContain('data-cite');
  });

  it('starts over when the text is replaced', () => {
    const r = new IncrementalRenderer();
    r.update('One.\n\nTwo.\n\nThree');
    r.update('Other.');
    r.finish();
    expect(r.html).toBe(renderMarkdown('Other.'));
  });
});

describe('math detection', () => {
  it('leaves prices as text', () => {
    for (const t of ['It costs $100.', 'Between $5 and $10.', 'From $5-$10', 'Pay $5, or $6', '$1,000 and $2,000']) {
      expect(hasMath(t), t).toBe(false);
      expect(renderMarkdown(t), t).not.toContain('data-tex');
      expect(renderMarkdown(t), t).toContain('$');
    }
  });

  it('finds math', () => {
    for (const t of ['$x$', 'where $x^2 + y^2 = 1$ holds', '$$a$$', '\\[x\\]', '\\(y\\)', 'the set $\\mathbb{R}$', '$a + b$']) {
      expect(hasMath(t), t).toBe(true);
    }
    expect(inlineMath('$x^2$ rest')).toEqual({ raw: '$x^2$', tex: 'x^2', display: false });
    expect(inlineMath('$5 and $10')).toBeUndefined();
    expect(isMathLike('5 and ')).toBe(false);
    expect(isMathLike('about 15')).toBe(false);
    expect(isMathLike('\\alpha')).toBe(true);
  });

  it('never sees math in code', () => {
    expect(renderMarkdown('`$x^2$`')).not.toContain('data-tex');
    expect(renderMarkdown('```\n$$x$$\n```')).not.toContain('data-tex');
  });

  it('renders math with KaTeX once loaded', async () => {
    await loadMath();
    expect(mathReady()).toBe(true);
    const html = renderMarkdown('Area $\\pi r^2$.\n\n$$\nE = mc^2\n$$');
    expect(html).toContain('class="katex"');
    expect(html).toContain('katex-display');
  });

  it('finds a finished fence', () => {
    expect(isOpenFence('```js\ncode\n')).toBe(true);
    expect(isOpenFence('```js\ncode\n```\n')).toBe(false);
    expect(isOpenFence('````\ncode\n```\n')).toBe(true);
  });
});

describe('sanitising', () => {
  it('removes scripts, handlers and javascript: links', () => {
    const html = renderMarkdown(
      'Hi <script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n[click](javascript:alert(3)) <a href="javascript:alert(4)">x</a>\n\n<div onclick="alert(5)">d</div>',
    );
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/onerror/i);
    expect(html).not.toMatch(/onclick/i);
    expect(html).not.toMatch(/javascript:/i);
    expect(html).not.toMatch(/<img/i);
  });

  it('opens links in a new tab without an opener', () => {
    const html = renderMarkdown('[site](https://example.org)');
    expect(html).toContain('target="_blank"');
    expect(html).toContain('rel="noopener noreferrer"');
  });

  it('shows images as links, never loads them', () => {
    const html = renderMarkdown('![a cat](https://example.org/cat.png)');
    expect(html).not.toContain('<img');
    expect(html).toContain('[image: a cat]');
  });

  it('drops style attributes, iframes and forms', () => {
    const html = renderMarkdown('<p style="position:fixed">x</p><iframe src="https://e.org"></iframe><form><input type="text"></form>');
    expect(html).not.toContain('style=');
    expect(html).not.toContain('iframe');
    expect(html).not.toContain('<form');
    expect(html).not.toContain('type="text"');
  });

  it('adds a copy button to code blocks', () => {
    const html = renderMarkdown('```bash\necho hi\n```');
    expect(html).toContain('aria-label="Copy code"');
    expect(html).toContain('language-bash');
  });
});

describe('incremental renderer, fuzzed', () => {
  const pieces = [
    'A paragraph with *em* and `code`.',
    'Setext\n---',
    '- item\n- item two',
    '1. first\n2. second',
    '3. third',
    '  indented continuation',
    '    indented code',
    '```js\nlet a = 1;\n```',
    '```\nunclosed fence',
    '| a | b |\n|---|---|\n| 1 | 2 |',
    '> quote\nlazy line',
    '# Heading',
    '***',
    '* star item',
    '<div>html block</div>',
    '$$\nx^2\n$$',
    'Costs $5 and $10, but $y = 2x$ is math.',
    '- [ ] task\n- [x] done',
    'Line one\nline two',
    '',
  ];
  it('equals a full render for random documents', { timeout: 60_000 }, () => {
    let s = 7;
    const rand = (n: number) => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return Math.floor((s / 2147483648) * n);
    };
    for (let doc = 0; doc < 50; doc++) {
      const parts: string[] = [];
      const n = 2 + rand(6);
      for (let i = 0; i < n; i++) parts.push(pieces[rand(pieces.length)]);
      const sep = ['\n\n', '\n', '\n\n\n'];
      let text = '';
      parts.forEach((p, i) => (text += (i ? sep[rand(sep.length)] : '') + p));
      const full = renderMarkdown(text);
      expect(streamed(text, randomChunks(text, doc + 1)), JSON.stringify(text)).toBe(full);
      expect(streamed(text, chunks(text, 1)), JSON.stringify(text)).toBe(full);
    }
  });
});

describe('code blocks', () => {
  it('escapes code (it skips the sanitiser, so it must be inert on its own)', () => {
    const html = renderMarkdown('```html" onmouseover="alert(1)\n<script>alert(1)</script><img src=x onerror=alert(2)>\n```');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;');
    expect(html).not.toMatch(/\sonmouseover="/);
    const hl = renderMarkdown('```xml\n<script>alert(1)</script>\n```');
    expect(hl).not.toContain('<script');
    expect(hl).toContain('hljs-tag');
  });

  it('leaves very long code unhighlighted', () => {
    const long = '```js\n' + 'let a = 1;\n'.repeat(4000) + '```';
    expect(renderMarkdown(long)).not.toContain('hljs-keyword');
  });
});
