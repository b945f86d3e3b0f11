// Incremental rendering of a streamed answer. The text is split into top-level markdown
// blocks; blocks that can no longer change are rendered once and kept, and only the open tail
// (the last block or two) is lexed and rendered again as text arrives. So a 20k-token answer
// costs about the size of its last block per frame, not the whole answer.
//
// When is a block final? Appending text can change a block only through what follows it
// directly: a paragraph can turn into a setext heading or absorb a lazy line, a list or an
// indented code block can continue after a blank line. A block is therefore committed only
// when a blank line and then another block follow it; everything from the last such point on
// is the open tail. The result equals a full render of the final text (tested), except for a
// reference-style link used before its definition (`[x]` ... `[x]: url`), which a full render
// resolves and this does not.

import type { TokensList } from 'marked';
import { lexWith, normalize, renderToken, type BlockHtml, type RenderOptions } from './render';

export interface Block extends BlockHtml {
  /** Stable key for keyed lists (the block's offset in the text). */
  key: number;
}

export class IncrementalRenderer {
  private opts: RenderOptions;
  /** The text seen last (normalised). */
  private text = '';
  /** Offset where the open tail starts: everything before is in `done`. */
  private committed = 0;
  private done: Block[] = [];
  private tail: Block[] = [];
  private links: TokensList['links'] = Object.create(null);
  private finished = false;

  constructor(opts: RenderOptions = {}) {
    this.opts = { ...opts };
  }

  /** Finished blocks (never change until a reset) followed by the open tail. */
  get blocks(): readonly Block[] {
    return this.tail.length ? [...this.done, ...this.tail] : this.done;
  }

  /** Finished blocks only. */
  get committedBlocks(): readonly Block[] {
    return this.done;
  }

  /** The open tail's blocks. */
  get tailBlocks(): readonly Block[] {
    return this.tail;
  }

  get html(): string {
    return this.blocks.map((b) => b.html).join('');
  }

  /** Does any block have math? */
  get hasMath(): boolean {
    return this.done.some((b) => b.math) || this.tail.some((b) => b.math);
  }

  /** New options (e.g. citations arrived): everything is rendered again. */
  setOptions(opts: RenderOptions): void {
    const same =
      opts.draft === this.opts.draft && setsEqual(opts.citations, this.opts.citations);
    if (same) return;
    this.opts = { ...opts };
    const text = this.text;
    this.reset();
    if (text) this.update(text, !this.finished);
  }

  /**
   * The text so far. It normally only grows; any other change starts over. `streaming`
   * leaves the last block open (drafted); false renders everything final.
   */
  update(raw: string, streaming = true): void {
    const text = normalize(raw);
    if (!text.startsWith(this.text.slice(0, this.committed)) || text.length < this.committed) this.reset();
    if (text === this.text && streaming === !this.finished && (this.tail.length || !text)) return;
    this.text = text;
    this.finished = !streaming;
    const opts: RenderOptions = { ...this.opts, draft: streaming };
    const src = text.slice(this.committed);
    const tokens = lexWith(src, opts, this.links);
    // Commit blocks up to the last blank line that is followed by a whole line of a next
    // block (until that line has ended, `3` may still become `3.` and continue a list).
    let commitCount = 0;
    if (streaming) {
      let end = src.length;
      for (let i = tokens.length - 1; i >= 0; i--) {
        end -= tokens[i].raw.length;
        if (i < tokens.length - 1 && tokens[i].type === 'space' && src.includes('\n', end + tokens[i].raw.length)) {
          commitCount = i + 1;
          break;
        }
      }
    } else {
      commitCount = tokens.length;
    }
    // The tokens' raw text must line up with the source, or nothing is committed.
    let offset = 0;
    for (let i = 0; i < commitCount; i++) {
      if (!src.startsWith(tokens[i].raw, offset)) {
        commitCount = 0;
        break;
      }
      offset += tokens[i].raw.length;
    }
    if (!streaming && commitCount === tokens.length && offset !== src.length) commitCount = 0;
    let pos = this.committed;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (i < commitCount) {
        if (t.type === 'def') this.links[t.tag] ??= { href: t.href, title: t.title };
        const r = renderToken(t, opts);
        if (r.html) this.done.push({ ...r, key: pos });
        pos += t.raw.length;
      }
    }
    this.committed = pos;
    this.tail = [];
    if (commitCount < tokens.length) {
      let key = pos;
      for (const t of tokens.slice(commitCount)) {
        const r = renderToken(t, opts);
        if (r.html) this.tail.push({ ...r, key });
        key += t.raw.length;
      }
    }
  }

  /** The stream ended: the tail is rendered final (open fences highlighted too). */
  finish(raw: string = this.text): void {
    this.update(raw, false);
  }

  /** KaTeX has loaded: blocks with math are set again. */
  refreshMath(): void {
    const text = this.text;
    const streaming = !this.finished;
    if (!this.hasMath) return;
    this.reset();
    this.update(text, streaming);
  }

  reset(): void {
    this.text = '';
    this.committed = 0;
    this.done = [];
    this.tail = [];
    this.links = Object.create(null);
    this.finished = false;
  }
}

function setsEqual(a?: ReadonlySet<number>, b?: ReadonlySet<number>): boolean {
  if ((a?.size ?? 0) !== (b?.size ?? 0)) return false;
  if (!a || !b) return true;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
