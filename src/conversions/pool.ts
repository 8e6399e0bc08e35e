/** At most `size` tasks at once; the rest wait in arrival order. */
export class TaskPool {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  get active(): number {
    return this.running;
  }
  get waiting(): number {
    return this.queue.length;
  }
}
