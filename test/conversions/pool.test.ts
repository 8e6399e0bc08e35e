import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TaskPool } from '../../src/conversions/pool.js';

/** A task the test finishes by hand. */
function gate<T>(value: T): { task: () => Promise<T>; started: boolean; open(): void; fail(err: Error): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const g = {
    started: false,
    task: () => {
      g.started = true;
      return done;
    },
    open: () => resolve(value),
    fail: (err: Error) => reject(err),
  };
  return g;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('TaskPool', () => {
  it('runs at most `size` tasks at once; the rest start in arrival order as slots free up', async () => {
    const pool = new TaskPool(2);
    const gates = [gate(1), gate(2), gate(3), gate(4)];
    const results = gates.map((g) => pool.run(g.task));
    await tick();
    assert.deepEqual(gates.map((g) => g.started), [true, true, false, false]);
    assert.equal(pool.active, 2);
    assert.equal(pool.waiting, 2);
    gates[1]?.open();
    await results[1];
    await tick();
    assert.deepEqual(gates.map((g) => g.started), [true, true, true, false], 'the first waiter took the free slot');
    gates[0]?.open();
    gates[2]?.open();
    await tick();
    assert.equal(gates[3]?.started, true);
    gates[3]?.open();
    assert.deepEqual(await Promise.all(results), [1, 2, 3, 4]);
    assert.equal(pool.active, 0);
    assert.equal(pool.waiting, 0);
  });

  it('a failing task frees its slot and its error reaches only its caller', async () => {
    const pool = new TaskPool(1);
    const bad = gate(0);
    const good = gate('ok');
    const first = pool.run(bad.task);
    const second = pool.run(good.task);
    await tick();
    assert.equal(good.started, false);
    bad.fail(new Error('boom'));
    await assert.rejects(first, /boom/);
    await tick();
    assert.equal(good.started, true);
    good.open();
    assert.equal(await second, 'ok');
    assert.equal(pool.active, 0);
  });

  it('a task that throws synchronously frees its slot too', async () => {
    const pool = new TaskPool(1);
    await assert.rejects(pool.run(() => {
      throw new Error('sync');
    }), /sync/);
    assert.equal(await pool.run(async () => 5), 5);
    assert.equal(pool.active, 0);
  });
});
