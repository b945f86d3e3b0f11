// The one sanitising renderer: markdown (marked) -> HTML -> DOMPurify, with code highlighted,
// math set by KaTeX (after sanitising: KaTeX's own output from TeX, never the model's HTML),
// and `[n]` citation markers turned into buttons. Nothing else in the UI sets innerHTML; Svelte's
// `{@html}` is used only with what this module returns.

import DOMPurify from 'dompurify';
import { Marked, type Token, type Tokens, type TokensList } from 'marked';
import { highlight, knownLanguage } from './highlight';
import { blockMath, blockMathStart, inlineMath, inlineMathStart, renderTex } from './math';

export interface RenderOptions {
  /** Numbers of the sources a grounded answer may cite as `[n]`. */
  citations?: ReadonlySet<number>;
  /**
   * Streaming: a code fence that is still open is shown escaped but not highlighted
   * (highlighting a growing block on every frame is the expensive part).
   */
  draft?: boolean;
}

/** What rendering one block found. */
export interface BlockHtml {
  html: string;
  /** It has math (set by KaTeX once loaded, shown as TeX until then). */
  math: boolean;
}

/** Longer code blocks are shown unhighlighted (highlighting 100 KB takes most of a second). */
export const MAX_HIGHLIGHT = 30_000;

/** Per-call state read by the extensions (rendering is synchronous). */
let ctx: RenderOptions = {};
let sawMath = false;

const escapeMap: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => escapeMap[c]);
}

function mathPlaceholder(tex: string, display: boolean): string {
  sawMath = true;
  const cls = display ? 'math math-display' : 'math math-inline';
  const tag = display ? 'div' : 'span';
  return `<${tag} class="${cls}" data-tex="${escapeHtml(tex)}">${escapeHtml(display ? `$$${tex}$$` : `$${tex}$`)}</${tag}>`;
}

/** Is this fenced code block still waiting for its closing fence? */
export function isOpenFence(raw: string): boolean {
  const m = /^ {0,3}(`{3,}|~{3,})/.exec(raw);
  if (!m) return false;
  const fence = m[1];
  const lines = raw.replace(/\n+$/, '').split('\n');
  if (lines.length < 2) return true;
  const last = lines[lines.length - 1].trim();
  return !(last.length >= fence.length && [...last].every((c) => c === fence[0]));
}

const md = new Marked({ gfm: true, breaks: false, silent: true });

md.use({
  extensions: [
    {
      name: 'blockMath',
      level: 'block',
      start: (src: string) => {
        const i = blockMathStart(src);
        return i < 0 ? undefined : i;
      },
      tokenizer(src: string) {
        const m = blockMath(src);
        if (m) return { type: 'blockMath', raw: m.raw, text: m.tex };
        return undefined;
      },
      renderer: (t) => mathPlaceholder((t as Tokens.Generic).text as string, true),
    },
    {
      name: 'inlineMath',
      level: 'inline',
      start: (src: string) => {
        const i = inlineMathStart(src);
        return i < 0 ? undefined : i;
      },
      tokenizer(src: string) {
        const m = inlineMath(src);
        if (m) return { type: 'inlineMath', raw: m.raw, text: m.tex, display: m.display };
        return undefined;
      },
      renderer: (t) => {
        const g = t as Tokens.Generic;
        return mathPlaceholder(g.text as string, g.display as boolean);
      },
    },
    {
      name: 'citation',
      level: 'inline',
      start: (src: string) => {
        if (!ctx.citations?.size) return undefined;
        const m = /\[\d/.exec(src);
        return m ? m.index : undefined;
      },
      tokenizer(src: string) {
        const known = ctx.citations;
        if (!known?.size) return undefined;
        const m = /^\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\](?![(:])/.exec(src);
        if (!m) return undefined;
        const numbers = m[1].split(',').map((s) => Number(s.trim()));
        if (!numbers.every((n) => known.has(n))) return undefined;
        return { type: 'citation', raw: m[0], numbers };
      },
      renderer: (t) => {
        const nums = (t as Tokens.Generic).numbers as number[];
        const buttons = nums
          .map((n) => `<button type="button" class="cite" data-cite="${n}" aria-label="Source ${n}">${n}</button>`)
          .join('');
        return `<span class="cites">${buttons}</span>`;
      },
    },
  ],
  renderer: {
    code(token: Tokens.Code) {
      const info = (token.lang ?? '').trim().split(/\s+/)[0] ?? '';
      const lang = knownLanguage(info);
      const text = token.text;
      const open = token.codeBlockStyle !== 'indented' && isOpenFence(token.raw);
      const body = lang && !(ctx.draft && open) && text.length <= MAX_HIGHLIGHT ? highlight(text, lang) : escapeHtml(text);
      const cls = lang ? ` class="hljs language-${escapeHtml(lang)}"` : ' class="hljs"';
      const label = info ? `<span class="code-lang">${escapeHtml(info)}</span>` : '<span class="code-lang">text</span>';
      return (
        `<div class="code-block"><div class="code-head">${label}` +
        `<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>` +
        `<pre><code${cls}>${body}${text.endsWith('\n') || !text ? '' : '\n'}</code></pre></div>`
      );
    },
    image(token: Tokens.Image) {
      // No images from outside (the page's policy blocks them too): a link to it instead.
      const alt = token.text || 'image';
      if (!token.href) return escapeHtml(alt);
      return `<a href="${escapeHtml(token.href)}">${escapeHtml(`[image: ${alt}]`)}</a>`;
    },
  },
});

// DOMPurify ----------------------------------------------------------------------------

const ALLOWED_TAGS = [
  'a', 'abbr', 'b', 'blockquote', 'br', 'button', 'code', 'del', 'details', 'div', 'em', 'h1', 'h2', 'h3',
  'h4', 'h5', 'h6', 'hr', 'i', 'input', 'ins', 'kbd', 'li', 'mark', 'ol', 'p', 'pre', 's', 'small', 'span',
  'strong', 'sub', 'summary', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'u', 'ul',
];
const ALLOWED_ATTR = [
  'href', 'title', 'class', 'start', 'colspan', 'rowspan', 'align', 'type', 'checked', 'disabled',
  'data-cite', 'data-tex', 'aria-label', 'open',
];

const purify = DOMPurify();
let hooked = false;
function sanitizer(): typeof purify {
  if (!hooked) {
    hooked = true;
    purify.addHook('afterSanitizeAttributes', (node) => {
      const el = node as Element;
      if (el.tagName === 'A') {
        const href = el.getAttribute('href');
        if (href !== null && !SAFE_LINK.test(href.replace(/[\u0000-\u0020]/g, ''))) el.removeAttribute('href');
        el.setAttribute('target', '_blank');
        el.setAttribute('rel', 'noopener noreferrer');
      } else if (el.tagName === 'INPUT') {
        // Only the read-only checkboxes of task lists.
        if (el.getAttribute('type') !== 'checkbox') el.remove();
        else el.setAttribute('disabled', '');
      } else if (el.tagName === 'BUTTON') {
        el.setAttribute('type', 'button');
      }
    });
  }
  return purify;
}

/** Links: http(s), mailto, in-page and same-site paths only (never javascript:, data:, //host). */
const SAFE_LINK = /^(?:https?:|mailto:|#|\/(?!\/)|[^:/?#]+(?:[/?#]|$))/i;

const PURIFY_CONFIG = {
  ALLOWED_TAGS,
  ALLOWED_ATTR,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  KEEP_CONTENT: true,
};

/** Sanitises HTML (the model's text and our markup alike). */
export function sanitize(html: string): string {
  return sanitizer().sanitize(defuseHandlers(html), PURIFY_CONFIG) as unknown as string;
}

/**
 * Renames `on...=` attributes inside tags before DOMPurify parses the HTML. Not a safety
 * measure (DOMPurify removes them either way): the parse alone makes Chromium report a
 * blocked inline handler under the page's CSP, and such noise would hide real violations.
 */
const HANDLER = /(<[a-zA-Z][^>]*?[\s/"'])on([a-zA-Z]+\s*=)/g;
function defuseHandlers(html: string): string {
  if (!/[\s/"']on[a-z]+\s*=/i.test(html)) return html;
  let out = html;
  for (let i = 0; i < 20; i++) {
    const next = out.replace(HANDLER, '$1data-blocked-on$2');
    if (next === out) break;
    out = next;
  }
  return out;
}

/** Sets math placeholders with KaTeX (trusted: it renders TeX, never the input's HTML). */
function setMath(clean: string): string {
  if (!clean.includes('data-tex')) return clean;
  const host = document.createElement('div');
  host.innerHTML = clean;
  let changed = false;
  for (const el of host.querySelectorAll<HTMLElement>('[data-tex]')) {
    const out = renderTex(el.getAttribute('data-tex') ?? '', el.classList.contains('math-display'));
    if (out === undefined) return clean;
    el.innerHTML = out;
    changed = true;
  }
  return changed ? host.innerHTML : clean;
}

// Blocks -----------------------------------------------------------------------------------

/** A lexer with reference definitions already known (from blocks before this text). */
export function lex(src: string, links?: TokensList['links']): TokensList {
  const lexer = new md.Lexer(md.defaults);
  if (links) Object.assign(lexer.tokens.links, links);
  return lexer.lex(src);
}

/** Lexes with the options (citations decide what `[n]` is). */
export function lexWith(src: string, opts: RenderOptions, links?: TokensList['links']): TokensList {
  const prev = ctx;
  ctx = opts;
  try {
    return lex(src, links);
  } finally {
    ctx = prev;
  }
}

/** Renders one top-level token to sanitised HTML. */
export function renderToken(token: Token, opts: RenderOptions): BlockHtml {
  if (token.type === 'space' || token.type === 'def') return { html: '', math: false };
  const prev = ctx;
  ctx = opts;
  sawMath = false;
  try {
    const raw = md.parser([token]);
    const math = sawMath;
    // A code block is our own markup around escaped text (highlight.js escapes too), so it
    // skips DOMPurify: a growing 100 KB block would otherwise be parsed on every frame.
    const clean = token.type === 'code' ? raw : sanitize(raw);
    return { html: math ? setMath(clean) : clean, math };
  } finally {
    ctx = prev;
  }
}

/** Full render of a whole markdown text (what the incremental renderer must equal). */
export function renderMarkdown(text: string, opts: RenderOptions = {}): string {
  const tokens = lexWith(normalize(text), opts);
  return tokens.map((t) => renderToken(t, opts).html).join('');
}

/** Line ends as the lexer sees them. */
export function normalize(text: string): string {
  return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
}
