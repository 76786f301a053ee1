// Socket bindings implied by the manifests: each instance's sidecar listens on (address, port) for
// every service port and on (appAddress, localPort) for every upstream, plus (appAddress, base+k) for
// every ordinal k of an upstream port with instancePorts; its application listens on
// (appAddress, targetPort); with the Mesh's `metrics`, each sidecar also listens on (address, port)
// for Prometheus. Two of these on the same socket cannot both bind (CONFLICT).
//
// Addresses identify hosts here (the examples run a whole mesh on 127.0.0.x), with one exception:
// an application socket only collides within its own instance, since `appAddress` defaults to
// 127.0.0.1 and every service on its own host may well listen on 8080.
import type { Problem } from '../errors.ts';
import { problemAt, where } from './problem-at.ts';
import { isExternalUpstream, manifestId, serviceKey, type Mesh, type Origin, type Service } from './types.ts';

interface Socket {
  readonly host: string;
  readonly port: number;
  readonly service: Service;
  readonly instance: string;
  /** The field to blame when this socket is the second to claim an address. */
  readonly field: string;
  readonly what: string;
  readonly appOnly: boolean;
  /** The document to blame instead of `service` (the Mesh, for the metrics listener). */
  readonly owner?: { readonly origin: Origin; readonly id: string };
}

const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

function socketsOf(s: Service, byKey: ReadonlyMap<string, Service>, mesh: Mesh | undefined): Socket[] {
  const id = manifestId(s);
  const exposedOf = (u: Service['upstreams'][number]) =>
    !isExternalUpstream(u) &&
    byKey.get(serviceKey({ name: u.service, namespace: u.namespace }))?.ports.find((p) => p.name === u.port)
      ?.instancePorts;
  return s.instances.flatMap((inst, i) => {
    const base = { service: s, instance: `${id}/${inst.name}` };
    return [
      ...s.ports.map((p) => ({
        ...base,
        host: inst.address,
        port: p.port,
        field: `spec.instances[${i}].address`,
        appOnly: false,
        what: `the inbound ${p.name} listener of ${id} instance ${inst.name}`,
      })),
      ...s.ports.map((p, k) => ({
        ...base,
        host: inst.appAddress,
        port: p.targetPort,
        field: `spec.ports[${k}].targetPort`,
        appOnly: true,
        what: `the application of ${id} instance ${inst.name}`,
      })),
      // Each upstream's local port, then its per-instance range, in the order written: the later
      // upstream is the one blamed.
      ...s.upstreams.flatMap((u, j) => {
        const exposed = exposedOf(u);
        const listener = (port: number, field: string, what: string): Socket => ({
          ...base,
          host: inst.appAddress,
          port,
          field: `spec.upstreams[${j}].${field}`,
          appOnly: false,
          what: `the outbound listener for ${isExternalUpstream(u) ? u.external : u.service}${what} of ${id} instance ${inst.name}`,
        });
        return [
          listener(u.localPort, 'localPort', ''),
          ...(exposed && !isExternalUpstream(u)
            ? Array.from({ length: exposed.count }, (_, k) =>
                listener(exposed.base + k, 'port', ` instance ${k} (instancePorts of port ${u.port})`),
              )
            : []),
        ];
      }),
      ...(mesh?.metrics
        ? [
            {
              ...base,
              host: inst.address,
              port: mesh.metrics.port,
              field: 'spec.metrics.port',
              appOnly: false,
              what: `the metrics listener of ${id} instance ${inst.name}`,
              owner: { origin: mesh.origin, id: manifestId(mesh) },
            },
          ]
        : []),
    ];
  });
}

function collide(a: Socket, b: Socket): boolean {
  if (a.port !== b.port) return false;
  // Two service ports may forward to one application port: the application binds it once.
  if (a.appOnly && b.appOnly) return false;
  if ((a.appOnly || b.appOnly) && a.instance !== b.instance) return false;
  const [ha, hb] = [a.host.toLowerCase(), b.host.toLowerCase()];
  return ha === hb || WILDCARDS.has(ha) || WILDCARDS.has(hb);
}

function ownerOf(s: Socket): { readonly origin: Origin; readonly id: string } {
  return s.owner ?? { origin: s.service.origin, id: manifestId(s.service) };
}

/**
 * Sockets indexed so each new one is compared only with those it could collide with: the same
 * host and port (application sockets only within their instance), and wildcard binds on the port.
 * A mesh of thousands of instances on shared ports stays linear.
 */
class SocketIndex {
  private readonly exact = new Map<string, Socket[]>();
  private readonly byPort = new Map<number, Socket[]>();
  private readonly wildcards = new Map<number, Socket[]>();

  private static key(s: Socket, instance: boolean): string {
    return `${s.port}|${s.host.toLowerCase()}|${instance ? s.instance : ''}`;
  }

  candidates(s: Socket): Socket[] {
    if (WILDCARDS.has(s.host.toLowerCase())) return this.byPort.get(s.port) ?? [];
    return [
      ...(this.exact.get(SocketIndex.key(s, false)) ?? []),
      ...(this.exact.get(SocketIndex.key(s, true)) ?? []),
      ...(this.wildcards.get(s.port) ?? []),
    ];
  }

  add(s: Socket): void {
    const push = <K>(m: Map<K, Socket[]>, k: K) => {
      const list = m.get(k);
      if (list) list.push(s);
      else m.set(k, [s]);
    };
    push(this.exact, SocketIndex.key(s, s.appOnly));
    push(this.byPort, s.port);
    if (WILDCARDS.has(s.host.toLowerCase())) push(this.wildcards, s.port);
  }
}

/**
 * `all`: where upstream targets are looked up (their instancePorts), when `services` is part of the
 * set; `mesh`: the set's Mesh, whose metrics port every instance binds.
 */
export function checkSocketBindings(
  services: readonly Service[],
  all: readonly Service[] = services,
  mesh?: Mesh,
): Problem[] {
  const index = new SocketIndex();
  const problems: Problem[] = [];
  const byKey = new Map(all.map((s) => [serviceKey(s), s]));
  for (const socket of services.flatMap((s) => socketsOf(s, byKey, mesh))) {
    const earlier = index.candidates(socket).find((other) => collide(other, socket));
    if (earlier) {
      const blamed = ownerOf(socket);
      problems.push(
        problemAt(
          blamed.origin,
          blamed.id,
          socket.field,
          'CONFLICT',
          `${socket.host}:${socket.port} for ${socket.what} is already bound by ${earlier.what} (${where(ownerOf(earlier).origin, earlier.field)})`,
        ),
      );
    }
    index.add(socket);
  }
  return problems;
}
