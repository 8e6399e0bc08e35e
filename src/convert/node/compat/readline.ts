// node:readline for input that is not a terminal (files, pipes, stdin in a Box): 'line' and 'close' events,
// `for await (const line of rl)`, question() and the promise form. No cursor control: WASI has no terminal.
import { EventEmitter } from 'events';

interface Input {
  on(event: string, fn: (...args: unknown[]) => void): unknown;
  setEncoding?(encoding: BufferEncoding): unknown;
  resume?(): unknown;
}
interface Output {
  write(chunk: string): unknown;
}

export class Interface extends EventEmitter {
  terminal = false;
  line = '';
  closed = false;
  private buffered = '';
  private readonly pending: string[] = [];
  private waiting: Array<(r: IteratorResult<string>) => void> = [];
  private questionCb: ((answer: string) => void) | undefined;
  private paused = false;

  constructor(
    readonly input: Input,
    readonly output?: Output,
    private prompt_ = '> ',
  ) {
    super();
    input.setEncoding?.('utf8');
    input.on('data', (chunk) => this.feed(String(chunk)));
    input.on('end', () => this.finish());
    input.resume?.();
  }

  private feed(text: string): void {
    this.buffered += text;
    let nl: number;
    while ((nl = this.buffered.search(/\r?\n/)) !== -1) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(this.buffered[nl] === '\r' ? nl + 2 : nl + 1);
      this.deliver(line);
    }
  }

  private deliver(line: string): void {
    if (this.questionCb) {
      const cb = this.questionCb;
      this.questionCb = undefined;
      cb(line);
      return;
    }
    const next = this.waiting.shift();
    if (next) next({ value: line, done: false });
    else if (this.listenerCount('line') === 0 && this.iterating) this.pending.push(line);
    this.emit('line', line);
  }

  private iterating = false;

  private finish(): void {
    if (this.buffered.length > 0) this.deliver(this.buffered);
    this.buffered = '';
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting) w({ value: undefined, done: true });
    this.waiting = [];
    this.emit('close');
  }

  setPrompt(prompt: string): void {
    this.prompt_ = prompt;
  }
  getPrompt(): string {
    return this.prompt_;
  }
  prompt(): void {
    this.output?.write(this.prompt_);
  }
  question(query: string, optsOrCb: object | ((answer: string) => void), cb?: (answer: string) => void): void {
    this.output?.write(query);
    this.questionCb = typeof optsOrCb === 'function' ? (optsOrCb as (answer: string) => void) : cb;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  write(data: string): void {
    this.feed(data);
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    this.iterating = true;
    return {
      next: () => {
        const line = this.pending.shift();
        if (line !== undefined) return Promise.resolve({ value: line, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiting.push(resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

type CreateOptions = { input: Input; output?: Output; prompt?: string; terminal?: boolean; crlfDelay?: number };

export function createInterface(inputOrOptions: Input | CreateOptions, output?: Output): Interface {
  const opts: CreateOptions = 'input' in inputOrOptions ? (inputOrOptions as CreateOptions) : { input: inputOrOptions as Input, ...(output ? { output } : {}) };
  return new Interface(opts.input, opts.output, opts.prompt ?? '> ');
}

export const clearLine = (_stream: unknown, _dir: number, cb?: () => void): boolean => (cb?.(), true);
export const clearScreenDown = (_stream: unknown, cb?: () => void): boolean => (cb?.(), true);
export const cursorTo = (_stream: unknown, _x: number, _y?: number | (() => void), cb?: () => void): boolean => (cb?.(), true);
export const moveCursor = (_stream: unknown, _dx: number, _dy: number, cb?: () => void): boolean => (cb?.(), true);
export const emitKeypressEvents = (): void => {};

export const promises = {
  Interface,
  createInterface(inputOrOptions: Input | CreateOptions, output?: Output) {
    const rl = createInterface(inputOrOptions, output);
    return Object.assign(rl, {
      question: (query: string): Promise<string> => new Promise((resolve) => Interface.prototype.question.call(rl, query, resolve)),
    });
  },
};

export default { Interface, createInterface, clearLine, clearScreenDown, cursorTo, moveCursor, emitKeypressEvents, promises };
