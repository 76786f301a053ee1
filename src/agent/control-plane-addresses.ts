// The control plane's replicas as the node agent sees them: an ordered list of `host:port` (or one
// Kubernetes Service name in front of them). A call goes to the replica that answered last; when it
// cannot be reached (no answer at all, not a refusal), the next is tried, so attestation, renewals
// and bundle polls survive a replica dying. Replicas share the CA, so any of them will do.
import { fail, type Result } from '../errors.ts';
import { callControlPlane, splitHostPort, type ClientTls } from './control-plane-client.ts';

export type Call = <T>(
  method: 'GET' | 'POST',
  path: string,
  tls: ClientTls,
  body?: unknown,
) => Promise<Result<T> & { status?: number }>;

/** `a:1,b:2` and repeated flags alike → a de-duplicated list without blanks. */
export function parseAddresses(input: string | readonly string[]): string[] {
  const items = (typeof input === 'string' ? [input] : input).flatMap((s) => s.split(','));
  return [...new Set(items.map((s) => s.trim()).filter(Boolean))];
}

const unavailable = (status: number | undefined): boolean =>
  status === undefined || status === 502 || status === 503 || status === 504;

export class ControlPlaneAddresses {
  readonly all: readonly string[];
  #current = 0;

  constructor(input: string | readonly string[]) {
    this.all = parseAddresses(input);
    if (this.all.length === 0) throw new TypeError('no control-plane address');
  }

  /** The replica calls go to first: the last one that answered. */
  get current(): string {
    return this.all[this.#current]!;
  }

  /** Hosts and ports, for a bootstrap that must list every replica; `port` replaces each one's. */
  endpoints(port?: number): { host: string; port: number }[] {
    return this.all.map((a) => {
      const [host, own] = splitHostPort(a);
      return { host, port: port ?? own };
    });
  }

  /**
   * One JSON call, on the current replica and then on each other in turn while the failure is a
   * transport one (no HTTP status) or the replica says it is unavailable (502–504). Any other answer,
   * even a refusal, ends the search: replicas share state, so another would say the same.
   */
  readonly call: Call = async <T>(method: 'GET' | 'POST', path: string, tls: ClientTls, body?: unknown) => {
    let last: (Result<T> & { status?: number }) | undefined;
    for (let i = 0; i < this.all.length; i++) {
      const index = (this.#current + i) % this.all.length;
      const result = await callControlPlane<T>(this.all[index]!, method, path, tls, body);
      if (result.ok || !unavailable(result.status)) {
        this.#current = index;
        return result;
      }
      last = result;
    }
    return last ?? fail([{ code: 'IO', message: 'no control-plane address' }]);
  };
}
