import { describe, expect, it } from 'vitest';
import { parseRoute, routeHash } from '../src/lib/route';
import { carryOver, chatModels, contextLabel, pickModel, readNumber, readStop, stopText, NUMBER_FIELDS } from '../src/lib/settings';
import type { ModelObject } from '../src/lib/types';

describe('routes', () => {
  it('parses and writes hash routes', () => {
    expect(parseRoute('')).toEqual({ view: 'chat' });
    expect(parseRoute('#/')).toEqual({ view: 'chat' });
    expect(parseRoute('#/c/conv-0123456789abcdef')).toEqual({ view: 'chat', id: 'conv-0123456789abcdef' });
    expect(parseRoute('#/collections')).toEqual({ view: 'collections' });
    expect(parseRoute('#/collections/my%20docs')).toEqual({ view: 'collections', name: 'my docs' });
    expect(parseRoute('#/server')).toEqual({ view: 'server' });
    expect(parseRoute('#/nonsense')).toEqual({ view: 'chat' });
    expect(routeHash({ view: 'chat', id: 'conv-1' })).toBe('#/c/conv-1');
    expect(routeHash({ view: 'collections', name: 'a b' })).toBe('#/collections/a%20b');
  });
});

describe('settings', () => {
  const f = (k: string) => NUMBER_FIELDS.find((x) => x.key === k)!;

  it('reads numbers within range', () => {
    expect(readNumber(f('temperature'), '')).toEqual({});
    expect(readNumber(f('temperature'), '0.7')).toEqual({ value: 0.7 });
    expect(readNumber(f('temperature'), '3').error).toMatch(/between 0 and 2/);
    expect(readNumber(f('top_k'), '1.5').error).toMatch(/whole number/);
    expect(readNumber(f('seed'), 'abc').error).toMatch(/number/);
  });

  it('reads stop sequences', () => {
    expect(readStop('')).toEqual({});
    expect(readStop('###\nUser:')).toEqual({ value: ['###', 'User:'] });
    expect(readStop('\\n\\n')).toEqual({ value: ['\n\n'] });
    expect(readStop('a\nb\nc\nd\ne').error).toMatch(/At most 4/);
    expect(stopText(['\n\n', 'x'])).toBe('\\n\\n\nx');
  });

  it('carries settings but not documents into a new chat', () => {
    expect(carryOver({ model: 'm', has_documents: true, temperature: 1 })).toEqual({ model: 'm', temperature: 1 });
  });

  it('lists chat models only, loaded first, and picks one', () => {
    const models: ModelObject[] = [
      { id: 'b-chat', object: 'model', created: 0, owned_by: 'hearth', meta: { kind: 'causal', context_length: 8192 } },
      { id: 'minilm', object: 'model', created: 0, owned_by: 'hearth', meta: { kind: 'embedding' } },
      { id: 'a-chat', object: 'model', created: 0, owned_by: 'hearth', meta: { kind: 'causal', loaded: true } },
    ];
    expect(chatModels(models).map((m) => m.id)).toEqual(['a-chat', 'b-chat']);
    expect(pickModel(models)).toBe('a-chat');
    expect(pickModel(models, 'b-chat')).toBe('b-chat');
    expect(pickModel(models, 'gone')).toBe('a-chat');
    expect(pickModel([], 'x')).toBe('x');
    expect(contextLabel(8192)).toBe('8k');
    expect(contextLabel(2000)).toBe('2k');
    expect(contextLabel(500)).toBe('500');
  });
});
