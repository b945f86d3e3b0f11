// Math: where it is in markdown text, and KaTeX, loaded only when a message has some.
//
// Delimiters: `$$...$$` and `\[...\]` (display), `\(...\)` and `$...$` (inline). A single `$`
// is math only by pandoc's rule (the opening `$` has a non-space right after it, the closing
// one a non-space right before it and no digit right after it) and only when what is between
// looks like math, so prices (`$100`, `$5 and $10`) stay text.

export interface MathMatch {
  /** The source matched, delimiters included. */
  raw: string;
  /** The TeX between the delimiters. */
  tex: string;
  display: boolean;
}

/** Math never spans a blank line. */
const BLANK_LINE = /\n[ \t]*\n/;
/** How far a `$` looks for its closing `$`. */
const MAX_INLINE = 1000;

/** Does `s` (between single dollars) look like math rather than prose around prices? */
export function isMathLike(s: string): boolean {
  if (!s || s.length > 400) return false;
  // TeX commands, sub/superscripts, braces, equations.
  if (/\\[a-zA-Z]+|[\^_{}=]|\\[,;!{}]/.test(s)) return true;
  if (s.length > 40) return false;
  // Prose: a word of three letters or more (TeX commands were handled above).
  if (/[A-Za-z]{3,}/.test(s)) return false;
  if (!/^[A-Za-z0-9+\-*/<>()[\]|.,:;!' ]+$/.test(s)) return false;
  // A variable or an expression, not a bare number.
  return /[A-Za-z]/.test(s) || /[+\-*/<>]/.test(s.replace(/^-/, ''));
}

/** Single-dollar math at the start of `src`. */
function dollarInline(src: string): MathMatch | undefined {
  if (src[0] !== '$' || src[1] === '$') return undefined;
  const first = src[1];
  if (first === undefined || /\s/.test(first)) return undefined;
  const end = Math.min(src.length, MAX_INLINE);
  for (let i = 2; i < end; i++) {
    const ch = src[i];
    if (ch === '\\') {
      i++; // an escaped character, `\$` included
      continue;
    }
    if (ch === '\n' && /^\n[ \t]*\n/.test(src.slice(i))) return undefined;
    if (ch !== '$') continue;
    const before = src[i - 1];
    const after = src[i + 1];
    if (/\s/.test(before) || (after !== undefined && /[0-9]/.test(after))) {
      // Not a closing `$`: a `$` that cannot close also cannot be inside math.
      return undefined;
    }
    const tex = src.slice(1, i);
    return isMathLike(tex) ? { raw: src.slice(0, i + 1), tex, display: false } : undefined;
  }
  return undefined;
}

function delimited(src: string, open: string, close: string, display: boolean): MathMatch | undefined {
  if (!src.startsWith(open)) return undefined;
  const endIdx = src.indexOf(close, open.length);
  if (endIdx < 0) return undefined;
  const tex = src.slice(open.length, endIdx);
  if (!tex.trim() || BLANK_LINE.test(tex)) return undefined;
  return { raw: src.slice(0, endIdx + close.length), tex, display };
}

/** Inline-level math at the start of `src` (inside a paragraph). */
export function inlineMath(src: string): MathMatch | undefined {
  if (src[0] === '$') {
    if (src[1] === '$') return delimited(src, '$$', '$$', true);
    return dollarInline(src);
  }
  if (src[0] === '\\') {
    if (src[1] === '(') return delimited(src, '\\(', '\\)', false);
    if (src[1] === '[') return delimited(src, '\\[', '\\]', true);
  }
  return undefined;
}

/** Where inline math might start in `src`, or -1. */
export function inlineMathStart(src: string): number {
  const m = /\$|\\[([]/.exec(src);
  return m ? m.index : -1;
}

const BLOCK = /^ {0,3}(\$\$|\\\[)([\s\S]*?)(\$\$|\\\])[ \t]*(?:\n+|$)/;

/** A display math block at the start of `src` (the delimiters at line starts and ends). */
export function blockMath(src: string): MathMatch | undefined {
  const m = BLOCK.exec(src);
  if (!m) return undefined;
  const [raw, open, tex, close] = m;
  if ((open === '$$') !== (close === '$$')) return undefined;
  if (!tex.trim() || BLANK_LINE.test(tex)) return undefined;
  return { raw, tex, display: true };
}

/** Where a display math block might start in `src` (at a line start), or -1. */
export function blockMathStart(src: string): number {
  const m = /(?:^|\n) {0,3}(?:\$\$|\\\[)/.exec(src);
  if (!m) return -1;
  return m[0].startsWith('\n') ? m.index + 1 : m.index;
}

/**
 * Does `text` clearly hold math? A quick scan for the lazy load of KaTeX; the markdown
 * lexer decides for each place (code spans and blocks never hold math).
 */
export function hasMath(text: string): boolean {
  if (/\$\$[\s\S]+?\$\$/.test(text) || /\\\[[\s\S]+?\\\]/.test(text) || /\\\([\s\S]+?\\\)/.test(text)) return true;
  for (let i = text.indexOf('$'); i >= 0; i = text.indexOf('$', i + 1)) {
    if (text[i - 1] === '\\') continue;
    if (dollarInline(text.slice(i, i + MAX_INLINE))) return true;
  }
  return false;
}

// KaTeX, loaded lazily --------------------------------------------------------------------

type Katex = typeof import('katex').default;
let katex: Katex | undefined;
let loading: Promise<void> | undefined;
const listeners = new Set<() => void>();

/** Is KaTeX loaded? */
export function mathReady(): boolean {
  return katex !== undefined;
}

/** Loads KaTeX (script, CSS and fonts are a chunk of their own); calls the listeners once loaded. */
export function loadMath(): Promise<void> {
  loading ??= import('./katex')
    .then((m) => {
      katex = m.default;
      for (const f of listeners) f();
    })
    .catch((e) => {
      loading = undefined;
      console.error('could not load KaTeX', e);
    });
  return loading;
}

/** Calls `f` when KaTeX has loaded; returns the unsubscribe function. */
export function onMathReady(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** KaTeX's HTML for `tex`, or undefined when KaTeX is not loaded yet. */
export function renderTex(tex: string, display: boolean): string | undefined {
  if (!katex) return undefined;
  return katex.renderToString(tex, {
    displayMode: display,
    throwOnError: false,
    // Never \href, \url, \includegraphics or raw HTML from model output.
    trust: false,
    strict: 'ignore',
    output: 'htmlAndMathml',
    maxExpand: 1000,
    maxSize: 50,
  });
}
