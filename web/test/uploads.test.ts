import { describe, expect, it } from 'vitest';
import { limiter, UPLOADS_AT_ONCE } from '../src/lib/uploads';

describe('limiter', () => {
  it('runs at most n at once, all of them in the end', async () => {
    const run = limiter(UPLOADS_AT_ONCE);
    let now = 0;
    let most = 0;
    const job = (i: number) =>
      run(async () => {
        now++;
        most = Math.max(most, now);
        await new Promise((r) => setTimeout(r, 5));
        now--;
        return i;
      });
    const got = await Promise.all([0, 1, 2, 3, 4].map(job));
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(UPLOADS_AT_ONCE);
  });

  it('goes on after a failure', async () => {
    const run = limiter(1);
    await expect(run(async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    await expect(run(async () => 7)).resolves.toBe(7);
  });
});
