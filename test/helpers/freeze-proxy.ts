import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of `target` that can freeze: bytes stop flowing both ways
 * and nothing is closed (no FIN, no RST), as on a network that silently drops packets. New
 * connections are accepted meanwhile but get nothing through either. `thaw()` lets it all flow again.
 */
export class FreezeProxy {
  /** Each direction of each connection: where its bytes go, and what froze on its way. */
  private readonly links = new Set<{ to: Socket; held: Buffer[] }>();
  private readonly sockets = new Set<Socket>();
  private frozen = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<FreezeProxy> {
    const proxy: { current: FreezeProxy | null } = { current: null };
    const server = createServer((inbound) => proxy.current?.relay(inbound, connect(target)));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    proxy.current = new FreezeProxy(
      server,
      typeof address === 'object' && address ? address.port : 0,
    );
    return proxy.current;
  }

  /** Holds every byte, in both directions, on every connection (and on new ones). */
  freeze(): void {
    this.frozen = true;
  }

  /** Delivers what was held, in order, and lets bytes flow again. */
  thaw(): void {
    this.frozen = false;
    for (const link of this.links) {
      for (const chunk of link.held.splice(0)) link.to.write(chunk);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private relay(inbound: Socket, outbound: Socket): void {
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      const link = { to, held: [] as Buffer[] };
      this.links.add(link);
      this.sockets.add(from);
      from.on('data', (chunk: Buffer) => {
        if (this.frozen) link.held.push(chunk);
        else to.write(chunk);
      });
      from.on('error', () => {});
      from.on('close', () => {
        this.links.delete(link);
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }
}
