import { describe, expect, it } from 'vitest';
import { appendMessage, newConversation, setCitations } from '../src/lib/conversation';
import { exportFileName, ImportError, parseImport, toJson, toMarkdown } from '../src/lib/transfer';

function chat() {
  let c = newConversation({ model: 'smol', system_prompt: 'Be kind.' }, 1_700_000_000, 'conv-00000000000000aa');
  c = appendMessage(c, 'user', 'What is *markdown*?', { id: 'u1' }, 1_700_000_001);
  c = appendMessage(c, 'assistant', 'A **format** [1].', { id: 'a1', model: 'smol' }, 1_700_000_002);
  c = setCitations(c, 'a1', [{ n: 1, document: 'guide.md', text: 'Markdown is...', section: 'Intro' }]);
  return c;
}

describe('export', () => {
  it('writes Markdown with turns, model and sources', () => {
    const md = toMarkdown(chat());
    expect(md).toContain('# What is *markdown*?');
    expect(md).toContain('## User\n\nWhat is *markdown*?');
    expect(md).toContain('## Assistant (smol)\n\nA **format** [1].');
    expect(md).toContain('1. guide.md, section "Intro"');
    expect(md).toContain('## System prompt\n\nBe kind.');
  });

  it('writes JSON that imports back to the same conversation', () => {
    const c = chat();
    const back = parseImport(toJson(c));
    expect(back.title).toBe(c.title);
    expect(back.settings).toEqual(c.settings);
    expect(back.messages).toEqual(c.messages);
  });

  it('names files safely', () => {
    expect(exportFileName({ ...chat(), title: 'a/b: c?*' }, 'md')).toBe('ab-c.md');
    expect(exportFileName({ ...chat(), title: '' }, 'json')).toBe('chat.json');
  });
});

describe('import', () => {
  it('gives a clear error for bad JSON', () => {
    expect(() => parseImport('{not json')).toThrow(ImportError);
    expect(() => parseImport('{not json')).toThrow(/not valid JSON/);
  });

  it('names what is missing or wrong', () => {
    expect(() => parseImport('"text"')).toThrow(/no conversation/);
    expect(() => parseImport('{"title":"x"}')).toThrow(/no "messages" list/);
    expect(() => parseImport('{"messages":[{"role":"tool","content":"x"}]}')).toThrow(/Message 1 has role "tool"/);
    expect(() => parseImport('{"messages":[{"role":"user","content":5}]}')).toThrow(/Message 1 has no text/);
    expect(() => parseImport('{"messages":[1]}')).toThrow(/Message 1 is not an object/);
  });

  it("reads OpenAI's shape and bare arrays", () => {
    const a = parseImport('{"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]},{"role":"assistant","content":null}]}', 5);
    expect(a.messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Hi'],
      ['assistant', ''],
    ]);
    expect(a.title).toBe('Hi');
    expect(a.messages[0].id).toMatch(/^msg-/);
    expect(a.messages[0].created_at).toBe(5);
    const b = parseImport('[{"role":"user","content":"Q"}]');
    expect(b.messages.length).toBe(1);
    expect(b.settings).toEqual({});
  });
});
