// A TCP relay in front of an upstream registry that counts what a proxy asks
// of it: request lines (method and path) and bytes each way. It sits at the
// TCP level so it sees exactly the requests a proxy sends, whatever its
// client library, connection reuse or retries.
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface RelayedRequest {
  method: string;
  path: string;
}

const REQUEST_LINE = /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+) HTTP\/1\.[01]$/;
// Header lines are short; a longer run without CRLF is a body, not worth keeping.
const MAX_PENDING = 64 * 1024;

export class CountingRelay {
  readonly requests: RelayedRequest[] = [];
  bytesToUpstream = 0;
  bytesFromUpstream = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly target: { host: string; port: number },
    readonly port: number,
    server: Server,
  ) {
    this.server = server;
  }

  static async start(target: { host: string; port: number }): Promise<CountingRelay> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('relay has no port');
    const relay = new CountingRelay(target, address.port, server);
    server.on('connection', (client) => relay.relay(client));
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests whose path matches, e.g. count('GET', '/blobs/sha256:…'). */
  count(method: string, pathIncludes: string): number {
    return this.requests.filter((r) => r.method === method && r.path.includes(pathIncludes)).length;
  }

  reset(): void {
    this.requests.length = 0;
    this.bytesToUpstream = 0;
    this.bytesFromUpstream = 0;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(upstream);
    let pending = '';
    client.on('data', (chunk: Buffer) => {
      this.bytesToUpstream += chunk.length;
      pending += chunk.toString('latin1');
      const lines = pending.split('\r\n');
      pending = lines.pop() ?? '';
      if (pending.length > MAX_PENDING) pending = '';
      for (const line of lines) {
        const m = REQUEST_LINE.exec(line);
        if (m) this.requests.push({ method: m[1] as string, path: m[2] as string });
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      this.bytesFromUpstream += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  }
}
