import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RetryableError, backoffDelay, parseRetryAfter, withRetries, type RetryOptions } from '../../src/upstream/retry.js';

const timing = { baseDelayMs: 100, maxDelayMs: 1_000 };

describe('backoffDelay', () => {
  test('doubles per retry, half fixed and half jitter, capped', () => {
    assert.equal(backoffDelay(1, timing, () => 0), 50);
    assert.equal(backoffDelay(1, timing, () => 0.999999), 100);
    assert.equal(backoffDelay(2, timing, () => 0), 100);
    assert.equal(backoffDelay(3, timing, () => 0.5), 300);
    assert.equal(backoffDelay(10, timing, () => 0.999999), 1_000);
    assert.equal(backoffDelay(10, timing, () => 0), 500);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, timing);
      assert.ok(d >= 100 && d <= 200, String(d));
    }
  });
});

describe('parseRetryAfter', () => {
  test('delta-seconds, HTTP-date, absent and garbage', () => {
    const now = Date.parse('2025-03-01T12:00:00Z');
    assert.equal(parseRetryAfter('3', now), 3_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter(['7', '9'], now), 7_000);
    assert.equal(parseRetryAfter('Sat, 01 Mar 2025 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Sat, 01 Mar 2025 11:00:00 GMT', now), 0, 'a date in the past means now');
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter('', now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-5', now), undefined);
  });
});

describe('withRetries', () => {
  function harness(extra: Partial<RetryOptions> = {}) {
    const sleeps: number[] = [];
    const opts: RetryOptions = {
      retries: 3,
      ...timing,
      maxRetryAfterMs: 10_000,
      random: () => 0,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      ...extra,
    };
    return { sleeps, opts };
  }

  test('retries retryable failures with growing delays until success', async () => {
    const { sleeps, opts } = harness();
    const attempts: number[] = [];
    const result = await withRetries(async (n) => {
      attempts.push(n);
      if (n < 2) throw new RetryableError(new Error(`fail ${n}`));
      return 'ok';
    }, opts);
    assert.equal(result, 'ok');
    assert.deepEqual(attempts, [0, 1, 2]);
    assert.deepEqual(sleeps, [50, 100]);
  });

  test('gives up after `retries` retries with the inner error', async () => {
    const { sleeps, opts } = harness({ retries: 2 });
    let count = 0;
    const inner = new Error('still broken');
    await assert.rejects(
      withRetries(async () => {
        count++;
        throw new RetryableError(inner);
      }, opts),
      (err) => err === inner,
    );
    assert.equal(count, 3);
    assert.equal(sleeps.length, 2);
  });

  test('retries: 0 means one attempt', async () => {
    const { sleeps, opts } = harness({ retries: 0 });
    let count = 0;
    await assert.rejects(withRetries(async () => {
      count++;
      throw new RetryableError(new Error('x'));
    }, opts), /x/);
    assert.equal(count, 1);
    assert.deepEqual(sleeps, []);
  });

  test('other errors are not retried', async () => {
    const { opts } = harness();
    let count = 0;
    await assert.rejects(withRetries(async () => {
      count++;
      throw new TypeError('bug');
    }, opts), TypeError);
    assert.equal(count, 1);
  });

  test('Retry-After is honoured up to the cap; beyond it the failure is immediate', async () => {
    const first = harness();
    let n1 = 0;
    assert.equal(await withRetries(async () => {
      if (n1++ === 0) throw new RetryableError(new Error('429'), 4_000);
      return 'ok';
    }, first.opts), 'ok');
    assert.deepEqual(first.sleeps, [4_000]);

    const second = harness();
    let n2 = 0;
    await assert.rejects(withRetries(async () => {
      n2++;
      throw new RetryableError(new Error('rate limited for an hour'), 3_600_000);
    }, second.opts), /an hour/);
    assert.equal(n2, 1);
    assert.deepEqual(second.sleeps, []);
  });

  test('onRetry reports each retry', async () => {
    const seen: Array<[number, number, string]> = [];
    const { opts } = harness({ retries: 2, onRetry: (i) => seen.push([i.retry, i.delayMs, i.error.message]) });
    await assert.rejects(withRetries(async () => {
      throw new RetryableError(new Error('e'));
    }, opts));
    assert.deepEqual(seen, [[1, 50, 'e'], [2, 100, 'e']]);
  });

  test('an aborted signal stops retrying, also during the real sleep', async () => {
    const aborted = new AbortController();
    aborted.abort();
    const { opts } = harness({ signal: aborted.signal });
    let count = 0;
    await assert.rejects(withRetries(async () => {
      count++;
      throw new RetryableError(new Error('down'));
    }, opts), /down/);
    assert.equal(count, 1);

    // Aborted once the (real, long) sleep is about to start: the sleep ends at once.
    const during = new AbortController();
    const pending = withRetries(async () => {
      throw new RetryableError(new Error('down'));
    }, { retries: 5, baseDelayMs: 600_000, maxDelayMs: 600_000, signal: during.signal, onRetry: () => during.abort() });
    await assert.rejects(pending, { name: 'AbortError' });
  });
});
