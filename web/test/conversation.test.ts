import { describe, expect, it } from 'vitest';
import {
  appendDelta,
  appendMessage,
  canRegenerate,
  change,
  chatRequest,
  conflicted,
  CONFLICT_NOTICE,
  deleteMessage,
  editAndTruncate,
  failMessage,
  finishMessage,
  newConversation,
  newConversationId,
  prepareRegenerate,
  rebase,
  rename,
  requestMessages,
  saved,
  setCitations,
  stateOf,
  titleFrom,
} from '../src/lib/conversation';
import { MemoryHistory } from '../src/lib/history';
import { ApiError } from '../src/lib/errors';
import type { Conversation } from '../src/lib/types';

function chat(): Conversation {
  let c = newConversation({ model: 'm', temperature: 0.5, system_prompt: 'Be brief.' }, 100, 'conv-0000000000000001');
  c = appendMessage(c, 'user', 'Hello there\nsecond line', { id: 'u1' }, 101);
  c = appendMessage(c, 'assistant', 'Hi', { id: 'a1' }, 102);
  c = appendMessage(c, 'user', 'More?', { id: 'u2' }, 103);
  c = appendMessage(c, 'assistant', 'Yes', { id: 'a2' }, 104);
  return c;
}

describe('conversation updates', () => {
  it('makes ids like the server', () => {
    expect(newConversationId()).toMatch(/^conv-[0-9a-f]{16}$/);
  });

  it('titles from the first user message', () => {
    const c = chat();
    expect(c.title).toBe('Hello there');
    expect(titleFrom('x'.repeat(100)).length).toBeLessThanOrEqual(61);
    expect(titleFrom('   ')).toBe('New chat');
  });

  it('appends deltas without touching the input', () => {
    const c = chat();
    const before = JSON.stringify(c);
    const d = appendDelta(appendDelta(c, 'a2', ' and'), 'a2', ' more');
    expect(d.messages[3].content).toBe('Yes and more');
    expect(JSON.stringify(c)).toBe(before);
    expect(d.messages[0]).toBe(c.messages[0]);
    expect(appendDelta(c, 'a2', '')).toBe(c);
    expect(appendDelta(c, 'nope', 'x')).toBe(c);
  });

  it('finishes with timings and clears an earlier error', () => {
    const t = { prompt_n: 5, prompt_ms: 12, predicted_n: 3, predicted_ms: 30, predicted_per_second: 100, cached_n: 0 };
    let c = failMessage(chat(), 'a2', 'boom');
    expect(c.messages[3].error).toBe('boom');
    c = finishMessage(c, 'a2', { timings: t, ttft_ms: 40, finish_reason: 'stop', model: 'm' });
    expect(c.messages[3]).toMatchObject({ timings: t, ttft_ms: 40, finish_reason: 'stop', model: 'm' });
    expect(c.messages[3].error).toBeUndefined();
    c = setCitations(c, 'a2', [{ n: 1, document: 'd.pdf', text: 'fact', page: 2 }]);
    expect(c.messages[3].citations?.[0].document).toBe('d.pdf');
  });

  it('edits a user message and drops what followed', () => {
    const c = editAndTruncate(chat(), 'u1', 'Changed', 200);
    expect(c.messages.map((m) => m.id)).toEqual(['u1']);
    expect(c.messages[0].content).toBe('Changed');
    expect(c.updated_at).toBe(200);
  });

  it('deletes one message', () => {
    const c = deleteMessage(chat(), 'a1');
    expect(c.messages.map((m) => m.id)).toEqual(['u1', 'u2', 'a2']);
  });

  it('regenerates only a final answer', () => {
    const c = chat();
    expect(canRegenerate(c)).toBe(true);
    expect(prepareRegenerate(c)?.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2']);
    expect(prepareRegenerate(deleteMessage(c, 'a2'))).toBeUndefined();
    const onlyAnswer = appendMessage(newConversation({}), 'assistant', 'x');
    expect(prepareRegenerate(onlyAnswer)).toBeUndefined();
  });

  it('renames within the limit', () => {
    expect(rename(chat(), '  ' + 'x'.repeat(300)).title.length).toBe(200);
  });

  it('builds the request: system prompt, no failed answers, settings, rag', () => {
    let c = failMessage(chat(), 'a2', 'boom');
    expect(requestMessages(c)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello there\nsecond line' },
      { role: 'assistant', content: 'Hi' },
      { role: 'user', content: 'More?' },
    ]);
    const req = chatRequest(c, 'm');
    expect(req).toMatchObject({ model: 'm', stream: true, stream_options: { include_usage: true }, temperature: 0.5 });
    expect(req.rag).toBeUndefined();
    c = { ...c, settings: { ...c.settings, has_documents: true, stop: ['a', '', 'b', 'c', 'd', 'e'] } };
    expect(chatRequest(c, 'm').rag).toEqual({ collection: 'conv-0000000000000001' });
    expect(chatRequest(c, 'm').stop).toEqual(['a', 'b', 'c', 'd']);
    c = { ...c, settings: { ...c.settings, collection: 'manuals', rag_top_k: 6 } };
    expect(chatRequest(c, 'm').rag).toEqual({ collection: 'manuals', top_k: 6 });
  });
});

describe('saving and conflicts', () => {
  it('takes the server version after a save', () => {
    const c = chat();
    const s = change(stateOf(newConversation({}), false), c);
    expect(s.dirty).toBe(true);
    const server = { ...c, version: 3 };
    const after = saved(s, c, server);
    expect(after).toMatchObject({ stored: true, dirty: false });
    expect(after.conversation.version).toBe(3);
  });

  it('keeps text that arrived while a save was on its way', () => {
    const c = chat();
    const s0 = change(stateOf(newConversation({}), false), c);
    const s1 = change(s0, appendDelta(c, 'a2', '!'));
    const after = saved(s1, c, { ...c, version: 4 });
    expect(after.conversation.messages[3].content).toBe('Yes!');
    expect(after.conversation.version).toBe(4);
    expect(after.dirty).toBe(true);
  });

  it('on a conflict takes the server copy and says so', () => {
    const mine = chat();
    const theirs = { ...mine, title: 'Renamed elsewhere', version: 9 };
    const s = conflicted(change(stateOf(mine, true), rename(mine, 'x')), theirs);
    expect(s.conversation).toBe(theirs);
    expect(s.notice).toBe(CONFLICT_NOTICE);
    expect(s.dirty).toBe(false);
  });

  it('rebases on a rename elsewhere, keeping our new messages and their title', () => {
    const mine0 = chat();
    const s0 = stateOf({ ...mine0, version: 2 }, true);
    const s1 = change(s0, appendMessage(s0.conversation, 'user', 'new question', { id: 'u3' }));
    const theirs = { ...s0.conversation, title: 'Renamed elsewhere', version: 3 };
    const r = rebase(s1, theirs)!;
    expect(r.conversation.version).toBe(3);
    expect(r.conversation.title).toBe('Renamed elsewhere');
    expect(r.conversation.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2', 'u3']);
    expect(r.dirty).toBe(true);
    // Our own rename wins over theirs.
    const s2 = change(s0, rename(s0.conversation, 'Mine'));
    expect(rebase(s2, theirs)!.conversation.title).toBe('Mine');
  });

  it('does not rebase when the messages changed elsewhere', () => {
    const s0 = stateOf(chat(), true);
    const s1 = change(s0, appendDelta(s0.conversation, 'a2', '!'));
    const theirs = { ...deleteMessage(s0.conversation, 'a1'), version: 5 };
    expect(rebase(s1, theirs)).toBeUndefined();
    expect(rebase(change(stateOf(chat(), false), chat()), theirs)).toBeUndefined();
  });

  it('the in-memory history keeps the contract: versions, 409, 404, search', async () => {
    const h = new MemoryHistory();
    const c = await h.create({ title: 'First', messages: chat().messages });
    expect(c.id).toMatch(/^conv-/);
    expect(c.version).toBe(1);
    const p = await h.patch(c.id, { title: 'Second', version: 1 });
    expect(p.version).toBe(2);
    await expect(h.patch(c.id, { title: 'Stale', version: 1 })).rejects.toMatchObject({ status: 409, code: 'conversation_conflict' });
    await expect(h.get('conv-nope')).rejects.toBeInstanceOf(ApiError);
    expect((await h.list('more?')).map((x) => x.id)).toEqual([c.id]);
    expect(await h.list('absent')).toEqual([]);
    await h.remove(c.id);
    expect(await h.list('')).toEqual([]);
  });
});
