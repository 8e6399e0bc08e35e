/**
 * Collapses concurrent calls with the same key into one: the first caller
 * runs `fn`, later callers share its promise until it settles. This is what
 * keeps a herd of cold pulls down to one upstream fetch.
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  do(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running) return running;
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  get size(): number {
    return this.inflight.size;
  }
}
