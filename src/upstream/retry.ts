// Retries for idempotent upstream requests: exponential backoff with jitter, and the server's
// Retry-After when it gives one (up to a cap).
import { setTimeout as sleepFor } from 'node:timers/promises';

/** Thrown by an attempt whose failure is worth another try; `error` is what the caller sees if none is left. */
export class RetryableError extends Error {
  constructor(
    readonly error: Error,
    /** Delay the server asked for (Retry-After), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(error.message);
    this.name = 'RetryableError';
  }
}

export interface RetryTiming {
  /** Delay before the first retry, before jitter. */
  baseDelayMs: number;
  /** Upper bound of a backoff delay. */
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the failure is returned at once. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_TIMING: RetryTiming = { baseDelayMs: 200, maxDelayMs: 5_000, maxRetryAfterMs: 10_000 };

export interface RetryInfo {
  /** 1 for the first retry. */
  retry: number;
  delayMs: number;
  error: Error;
}

export interface RetryOptions extends Partial<RetryTiming> {
  /** Retries after the first attempt. */
  retries: number;
  signal?: AbortSignal;
  /** In [0, 1); injectable for tests. */
  random?: () => number;
  /** Injectable for tests; must reject when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  onRetry?: (info: RetryInfo) => void;
}

/**
 * Delay before retry number `retry` (1-based): base * 2^(retry-1), capped, with "equal jitter"
 * (half fixed, half random) so that clients failing together do not retry together.
 */
export function backoffDelay(retry: number, timing: Pick<RetryTiming, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(timing.maxDelayMs, timing.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Retry-After as delta-seconds or an HTTP-date, in ms from `now`; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | readonly string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = (typeof value === 'string' ? value : value?.[0])?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  // An HTTP-date names a weekday and month; Date.parse alone would take "-5" for a year.
  const at = /[A-Za-z]/.test(raw) ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> => sleepFor(ms, undefined, signal ? { signal } : undefined);

/**
 * Runs `attempt` until it succeeds, throws something other than RetryableError, or retries run out
 * (then the RetryableError's `error` is thrown). Only for idempotent work.
 */
export async function withRetries<T>(attempt: (n: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const timing: RetryTiming = {
    baseDelayMs: opts.baseDelayMs ?? DEFAULT_RETRY_TIMING.baseDelayMs,
    maxDelayMs: opts.maxDelayMs ?? DEFAULT_RETRY_TIMING.maxDelayMs,
    maxRetryAfterMs: opts.maxRetryAfterMs ?? DEFAULT_RETRY_TIMING.maxRetryAfterMs,
  };
  const sleep = opts.sleep ?? defaultSleep;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      if (n >= opts.retries || opts.signal?.aborted) throw err.error;
      let delayMs: number;
      if (err.retryAfterMs !== undefined) {
        // Retrying sooner than the server asked is pointless, and waiting longer keeps the client hanging.
        if (err.retryAfterMs > timing.maxRetryAfterMs) throw err.error;
        delayMs = err.retryAfterMs;
      } else {
        delayMs = backoffDelay(n + 1, timing, opts.random);
      }
      opts.onRetry?.({ retry: n + 1, delayMs, error: err.error });
      await sleep(delayMs, opts.signal);
    }
  }
}
