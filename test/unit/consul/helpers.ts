// Helpers for the Consul suites: a sink that records every pushed set, a clock whose `now` tests move
// by hand while its timers stay real (and are counted), and a client for an address.
import type { Clock } from '../../../src/consul/blocking.ts';
import type { ConsulHttp } from '../../../src/consul/http.ts';
import { createConsulClient } from '../../../src/consul/http.ts';
import { consulConfigFromEnv } from '../../../src/consul/config.ts';
import type { Endpoint, EndpointSet, EndpointSink } from '../../../src/discovery/endpoints.ts';

export class RecordingSink implements EndpointSink {
  readonly sets: EndpointSet[] = [];

  update(set: EndpointSet): void {
    this.sets.push(set);
  }

  /** The latest set pushed for `service`, if any. */
  last(service: string): EndpointSet | undefined {
    return this.sets.filter((s) => s.service === service).at(-1);
  }

  endpoint(service: string, instance: string): Endpoint | undefined {
    return this.last(service)?.endpoints.find((e) => e.instance === instance);
  }

  count(service: string): number {
    return this.sets.filter((s) => s.service === service).length;
  }
}

/** Real time plus whatever the test adds with `advance`; timers are real, optionally shortened, and tracked. */
export class TestClock implements Clock {
  private offsetMs = 0;
  readonly requested: number[] = [];
  private readonly live = new Set<ReturnType<typeof setTimeout>>();

  constructor(private readonly shorten: (ms: number) => number = (ms) => ms) {}

  now(): number {
    return Date.now() + this.offsetMs;
  }

  advance(ms: number): void {
    this.offsetMs += ms;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.requested.push(ms);
    const handle = setTimeout(() => {
      this.live.delete(handle);
      fn();
    }, this.shorten(ms));
    this.live.add(handle);
    return handle;
  }

  clearTimeout(handle: unknown): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
    this.live.delete(handle as ReturnType<typeof setTimeout>);
  }

  get pendingTimers(): number {
    return this.live.size;
  }
}

export async function clientFor(address: string, token?: string): Promise<ConsulHttp> {
  const config = consulConfigFromEnv({
    CONSUL_HTTP_ADDR: address,
    ...(token ? { CONSUL_HTTP_TOKEN: token } : {}),
  });
  if (!config.ok) throw new Error(`bad test config: ${JSON.stringify(config.errors)}`);
  const client = await createConsulClient(config.value);
  if (!client.ok) throw new Error(`bad test client: ${JSON.stringify(client.errors)}`);
  return client.value;
}

let counter = 0;
/** A service name no other test (or earlier run against a shared Consul) uses. */
export function uniqueName(stem: string): string {
  counter++;
  return `${stem}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
