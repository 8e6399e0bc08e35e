import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

const CHUNK = 1 << 20;
const BUFFERS = 4;

/**
 * Writes bytes [start, end] of a file to the response through a few reused
 * buffers. A read stream allocates a fresh buffer per chunk, and a 256 MiB
 * blob then costs hundreds of MiB of external memory for the GC to chase;
 * here a buffer goes back to the pool when the socket is done with it.
 */
export async function sendFile(res: ServerResponse, path: string, start: number, end: number): Promise<void> {
  const fh = await open(path, 'r');
  const free: Buffer[] = Array.from({ length: BUFFERS }, () => Buffer.allocUnsafeSlow(CHUNK));
  let wake: (() => void) | undefined;
  let closed = false;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  res.once('close', onClose);
  try {
    for (let pos = start; pos <= end && !closed; ) {
      while (free.length === 0 && !closed) await new Promise<void>((resolve) => (wake = resolve));
      if (closed) break;
      const buf = free.pop() as Buffer;
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, end + 1 - pos), pos);
      if (bytesRead === 0) throw new Error(`${path} ended at ${pos}, before byte ${end}`);
      pos += bytesRead;
      // No wait for 'drain': the pool is the back-pressure (at most BUFFERS chunks queued), and reading
      // the next chunk while the socket sends this one keeps both busy.
      res.write(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead), () => {
        free.push(buf);
        wake?.();
      });
    }
    if (!closed) res.end();
  } finally {
    res.off('close', onClose);
    await fh.close();
  }
}
