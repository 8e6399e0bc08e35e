// The event loop as Node apps see it, on QuickJS's: timers and immediates count as handles that keep the
// process alive (unless unref'ed). When none is left and the pending jobs ran, the process emits 'beforeExit'
// and 'exit' and ends with process.exitCode, as Node does.
import { os } from './quickjs.js';

interface LoopHooks {
  /** Called once nothing keeps the loop alive; returns true when it scheduled more work ('beforeExit'). */
  onIdle(): boolean;
  /** An exception nobody caught, thrown from a callback. */
  onFatal(err: unknown): void;
}

let hooks: LoopHooks | undefined;
let refs = 0;
/** Handles ever created: tells whether a 'beforeExit' listener scheduled more work. */
let created = 0;
let idleScheduled = false;

export function handlesCreated(): number {
  return created;
}

export function setLoopHooks(h: LoopHooks): void {
  hooks = h;
  scheduleIdleCheck();
}

function scheduleIdleCheck(): void {
  if (idleScheduled) return;
  idleScheduled = true;
  // A 0 ms QuickJS timer runs after the pending jobs (promise reactions) queued so far.
  os.setTimeout(() => {
    idleScheduled = false;
    if (refs === 0 && hooks && !hooks.onIdle()) return;
    if (refs === 0) scheduleIdleCheck();
  }, 0);
}

export function ref(): void {
  refs++;
  created++;
}

export function unref(): void {
  refs--;
  if (refs === 0) scheduleIdleCheck();
}

/** Runs a callback the loop calls, routing an uncaught exception to the fatal handler. */
export function invoke(fn: (...args: unknown[]) => unknown, args: readonly unknown[]): void {
  try {
    fn(...args);
  } catch (err) {
    if (hooks) hooks.onFatal(err);
    else throw err;
  }
}

export class Timeout {
  private handle: unknown;
  private refed = true;
  private active = true;
  private static nextId = 1;
  private readonly id = Timeout.nextId++;

  constructor(
    private readonly callback: (...args: unknown[]) => unknown,
    private readonly delay: number,
    private readonly args: readonly unknown[],
    private readonly repeat: boolean,
  ) {
    ref();
    this.handle = this.arm();
  }

  private arm(): unknown {
    return os.setTimeout(() => this.fire(), this.delay);
  }

  private fire(): void {
    if (!this.active) return;
    if (this.repeat) this.handle = this.arm();
    else this.stop();
    invoke(this.callback, this.args);
  }

  private stop(): void {
    if (!this.active) return;
    this.active = false;
    if (this.refed) unref();
  }

  close(): this {
    os.clearTimeout(this.handle);
    this.stop();
    return this;
  }

  ref(): this {
    if (!this.refed && this.active) ref();
    this.refed = true;
    return this;
  }

  unref(): this {
    if (this.refed && this.active) unref();
    this.refed = false;
    return this;
  }

  hasRef(): boolean {
    return this.refed;
  }

  refresh(): this {
    if (this.active) {
      os.clearTimeout(this.handle);
      this.handle = this.arm();
    }
    return this;
  }

  [Symbol.toPrimitive](): number {
    return this.id;
  }
}

export class Immediate {
  private active = true;
  private refed = true;
  private readonly handle: unknown;

  constructor(callback: (...args: unknown[]) => unknown, args: readonly unknown[]) {
    ref();
    this.handle = os.setTimeout(() => {
      if (!this.active) return;
      this.clear();
      invoke(callback, args);
    }, 0);
  }

  clear(): void {
    if (!this.active) return;
    this.active = false;
    os.clearTimeout(this.handle);
    if (this.refed) unref();
  }

  ref(): this {
    if (!this.refed && this.active) ref();
    this.refed = true;
    return this;
  }

  unref(): this {
    if (this.refed && this.active) unref();
    this.refed = false;
    return this;
  }

  hasRef(): boolean {
    return this.refed;
  }
}

/** Runs `work` on a later turn, keeping the loop alive until then (the async forms of fs). */
export function defer(work: () => void): void {
  new Immediate(work, []);
}
