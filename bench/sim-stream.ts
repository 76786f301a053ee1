// What a simulated sidecar does with its ADS stream whatever the protocol variant, as Envoy does:
// when the stream fails (reset, refused, ended by the server) it waits a jittered, growing delay
// (backoff.ts) and opens a new one on the same channel, sending every subscription again with what
// it holds. Each reopening is reported, so a run says how often the server made sidecars retry.
import type * as grpc from '@grpc/grpc-js';
import { EnvoyBackoff } from './backoff.ts';
import type { SidecarSpec } from './mesh-gen.ts';

export const identity = (b: Buffer): Buffer => b;

export interface SidecarEvents {
  /** The first EDS response in which this sidecar saw `marker`, and when (wall clock) it arrived. */
  marker(nodeId: string, marker: number, at: number): void;
  /** The stream failed and will be opened again after a backoff. */
  reconnect(nodeId: string, reason: string): void;
}

export abstract class SimulatedStream {
  private call: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
  private closing = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly backoff = new EnvoyBackoff();
  /** Whether this stream's first request (which alone carries the node) went out. */
  protected nodeSent = false;
  responses = 0;
  reconnects = 0;

  constructor(
    readonly spec: SidecarSpec,
    private readonly client: grpc.Client,
    protected readonly events: SidecarEvents,
    private readonly method: string,
  ) {}

  open(): void {
    const call = this.client.makeBidiStreamRequest<Buffer, Buffer>(this.method, identity, identity);
    this.call = call;
    this.nodeSent = false;
    let failed = false;
    const fail = (reason: string) => {
      if (this.closing || failed) return;
      failed = true;
      this.reconnects++;
      this.events.reconnect(this.spec.nodeId, reason);
      call.removeAllListeners('data');
      this.retry = setTimeout(() => this.open(), this.backoff.next());
    };
    call.on('data', (bytes: Buffer) => {
      this.backoff.reset();
      this.responses++;
      this.onResponse(bytes);
    });
    call.on('error', (e: Error) => fail(e.message));
    call.on('end', () => fail('stream ended by the server'));
    this.start();
  }

  close(): void {
    this.closing = true;
    clearTimeout(this.retry);
    this.call?.cancel();
  }

  /** Stops reading (and so ACKing): a stalled sidecar, whose HTTP/2 window fills and stays full. */
  stall(): void {
    this.call?.removeAllListeners('data');
    this.call?.pause();
  }

  protected write(bytes: Buffer): void {
    this.call?.write(bytes);
  }

  /** The first requests of a stream: on a reopened one, every subscription with what it holds. */
  protected abstract start(): void;

  protected abstract onResponse(bytes: Buffer): void;
}
