// Host and Origin checks against DNS rebinding and cross-site requests. A browser tricked into
// sending a request here names the attacker's host in `Host` (rebinding) or its page in `Origin`
// (cross-site POST); neither is one of ours, so the request is refused before authentication.
//
// Allowed `Host` values:
// - the address and port the request actually arrived on (the listener's own host:port);
// - `localhost`, `127.0.0.1` and `[::1]` on any port (port-forwards and tunnels change the port, and
//   a browser only sends a loopback name when the page itself is on loopback);
// - each `--admin-allowed-host`: `name` matches that name on any port, `name:port` only that port.
// An `Origin`, when present, must be `https://<an allowed host>`.
import type { IncomingMessage } from 'node:http';
import type { Problem } from '../errors.ts';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

interface HostPort {
  readonly name: string;
  readonly port: string | undefined;
}

function splitHost(value: string): HostPort | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value.trim().toLowerCase());
  return m ? { name: m[1]!, port: m[2] } : undefined;
}

function localHostPort(req: IncomingMessage): HostPort | undefined {
  const address = req.socket.localAddress?.replace(/^::ffff:/, '');
  if (!address) return undefined;
  return { name: address.includes(':') ? `[${address}]` : address, port: String(req.socket.localPort) };
}

export function hostAllowed(host: HostPort, req: IncomingMessage, allowedHosts: readonly string[]): boolean {
  if (LOOPBACK.has(host.name)) return true;
  const local = localHostPort(req);
  if (local && local.name === host.name && (host.port ?? '443') === local.port) return true;
  return allowedHosts.some((a) => {
    const allowed = splitHost(a);
    return (
      allowed !== undefined &&
      allowed.name === host.name &&
      (allowed.port === undefined || allowed.port === (host.port ?? '443'))
    );
  });
}

/** A problem when the request's Host or Origin is not ours; undefined when it may proceed. */
export function checkHostAndOrigin(
  req: IncomingMessage,
  allowedHosts: readonly string[],
): { status: number; problem: Problem } | undefined {
  const host = splitHost(req.headers.host ?? '');
  if (!host || !hostAllowed(host, req, allowedHosts)) {
    return {
      status: 421,
      problem: {
        code: 'PERMISSION_DENIED',
        field: 'Host',
        message: `Host "${req.headers.host ?? ''}" is not served here (see --admin-allowed-host)`,
      },
    };
  }
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(origin);
  } catch {
    url = undefined;
  }
  const originHost =
    url && url.protocol === 'https:' && url.origin === origin.toLowerCase() ? splitHost(url.host) : undefined;
  if (!originHost || !hostAllowed(originHost, req, allowedHosts)) {
    return {
      status: 403,
      problem: {
        code: 'PERMISSION_DENIED',
        field: 'Origin',
        message: `requests from Origin "${origin}" are not accepted`,
      },
    };
  }
  return undefined;
}
