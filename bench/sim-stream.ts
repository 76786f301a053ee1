// What a simulated sidecar does with its ADS stream whatever the protocol variant, as Envoy does:
// when the stream fails (reset, refused, ended by the server) it waits a jittered, growing delay
// (backoff.ts) and opens a new one on the same channel, sending every subscription again with what
// it holds. Each reopening is reported, so a run says how often the server made sidecars retry.
import { EnvoyBackoff } from './backoff.ts';
import type { GrpcCall, H2Channel } from './grpc-h2.ts';
import type { SidecarSpec } from './mesh-gen.ts';

export interface SidecarEvents {
  /** The first EDS response in which this sidecar saw `marker`, and when (wall clock) it arrived. */
  marker(nodeId: string, marker: number, at: number): void;
  /** The stream failed and will be opened again after a backoff. */
  reconnect(nodeId: string, reason: string): void;
}

export abstract class SimulatedStream {
  private call: GrpcCall | undefined;
  private closing = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly backoff = new EnvoyBackoff();
  /** Whether this stream's first request (which alone carries the node) went out. */
  protected nodeSent = false;
  responses = 0;
  reconnects = 0;

  constructor(
    readonly spec: SidecarSpec,
    private readonly channel: H2Channel,
    protected readonly events: SidecarEvents,
    private readonly method: string,
  ) {}

  open(): void {
    this.nodeSent = false;
    this.call = this.channel.call(this.method, {
      message: (bytes) => {
        this.backoff.reset();
        this.responses++;
        this.onResponse(bytes);
      },
      failed: (reason) => {
        if (this.closing) return;
        this.reconnects++;
        this.events.reconnect(this.spec.nodeId, reason);
        this.retry = setTimeout(() => this.open(), this.backoff.next());
      },
    });
    this.start();
  }

  close(): void {
    this.closing = true;
    clearTimeout(this.retry);
    this.call?.cancel();
  }

  /** Stops reading (and so ACKing): a stalled sidecar, whose HTTP/2 window fills and stays full. */
  stall(): void {
    this.call?.pause();
  }

  protected write(bytes: Buffer): void {
    this.call?.write(bytes);
  }

  /** The first requests of a stream: on a reopened one, every subscription with what it holds. */
  protected abstract start(): void;

  protected abstract onResponse(bytes: Buffer): void;
}
