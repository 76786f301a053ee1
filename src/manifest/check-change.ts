// The cross-document check of a change, costing what the change touches: the documents it added,
// changed or removed, and the documents whose references reach them, instead of the whole set. It
// reports exactly what checkManifestSet would for the new set, provided the set before the change
// passed that check (every committed set did): a problem in the new set then involves a touched
// document, either as the one at fault or as the one it names. What is checked per rule:
// - identity (duplicates, one Mesh): the whole set, a map lookup per document;
// - a Service's own entries: touched Services;
// - upstream references: touched Services and the Services that call one that came, went or
//   renamed its ports: a caller's upstream reads nothing else of its target (none at all when no
//   touched Service changed its upstreams and none of them came, went or renamed its ports);
// - socket bindings: touched Services and the callers of those that came, went or changed their
//   ports' instancePorts (which decide sockets of their callers), with every Service sharing a host
//   with them (and those binding a wildcard), in the set's order, so the one blamed is the one the
//   full check blames (none at all when no touched Service changed what it binds, and none came,
//   went or changed instancePorts); every Service when the Mesh is touched (its metrics port is
//   bound on every instance);
// - Consul names: touched Services and those using a Consul name a touched Service uses (none at
//   all when no touched Service uses Consul);
// - AccessPolicies and TrafficPolicies: touched ones and those naming a touched Service; for
//   TrafficPolicies also every policy on the destination of a touched one (who governs whom).
import type { Problem } from '../errors.ts';
import { checkSocketBindings } from './check-bindings.ts';
import { checkConsulNames, consulNameKey, usesConsul } from './check-consul-names.ts';
import { indexDocuments } from './check-identity.ts';
import { callsExternal, checkExternalReferences, checkExternalServices } from './check-external.ts';
import { checkAccessPolicies } from './check-policies.ts';
import { checkUpstreamReferences } from './check-references.ts';
import { checkServiceEntries } from './check-service.ts';
import { checkTrafficPolicies } from './check-traffic.ts';
import {
  externalKeyOfId,
  isExternalUpstream,
  manifestId,
  serviceKey,
  serviceKeyOfId,
  serviceUpstreams,
  type AccessPolicy,
  type Manifest,
  type Service,
  type ServiceRef,
  type TrafficPolicy,
} from './types.ts';

const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);

const refKey = (r: ServiceRef) => serviceKey({ name: r.service, namespace: r.namespace });

/**
 * Every problem checkManifestSet(ms) has, given that the set before the change to `touched` had
 * none. With `previous` (that set, by manifest id), callers of a touched Service are checked again
 * only when its face changed; without it, always.
 */
export function checkManifestChange(
  ms: readonly Manifest[],
  touched: readonly string[],
  previous?: ReadonlyMap<string, Manifest>,
): Problem[] {
  if (touched.length === 0) return [];
  const keys = new Set(touched.flatMap((id) => serviceKeyOfId(id) ?? []));
  const externals = new Set(touched.flatMap((id) => externalKeyOfId(id) ?? []));
  // One pass names every document (the checks below compare objects, not ids).
  const { problems: identity, first } = indexDocuments(ms);
  const ofKind = <K extends Manifest['kind']>(kind: K) =>
    [...first.values()].filter((m): m is Extract<Manifest, { kind: K }> => m.kind === kind);
  const mine = new Set(touched.flatMap((id) => first.get(id) ?? []));
  const services = ofKind('Service');
  const changed = services.filter((s) => mine.has(s));
  // Undefined: no caller to check again, and every touched Service's `own` part is as it was (so
  // it cannot bring a new problem of that kind: the set before the change had none).
  const subjects = (face: (s: Service) => string, own: (s: Service) => string) => {
    const faces = previous ? faceChanges(touched, changed, previous, face) : keys;
    if (faces.size === 0 && previous && unchanged(changed, previous, own)) return undefined;
    if (faces.size === 0) return changed;
    return services.filter((s) => mine.has(s) || serviceUpstreams(s).some((u) => faces.has(refKey(u))));
  };
  const referring = subjects(portNames, (s) => JSON.stringify(s.upstreams));
  const mesh = ofKind('Mesh')[0];
  const binding = mesh && mine.has(mesh) ? services : subjects(portSockets, sockets);
  return [
    ...identity,
    ...changed.flatMap(checkServiceEntries),
    ...(referring ? checkUpstreamReferences(services, referring) : []),
    ...(binding ? checkSocketBindings(neighbours(services, binding), services, mesh) : []),
    ...checkConsulNames(services, sharingConsulNames(services, changed)),
    ...checkAccessPolicies(
      ofKind('AccessPolicy').filter((p) => mine.has(p) || namesAny(p, keys)),
      services,
    ),
    ...checkTrafficPolicies(trafficSubjects(ofKind('TrafficPolicy'), mine, keys), services),
    ...checkExternalServices(ofKind('ExternalService').filter((e) => mine.has(e))),
    // Touched Services, and the callers of an ExternalService that came or went.
    ...checkExternalReferences(
      ofKind('ExternalService'),
      services.filter((s) => mine.has(s) || callsExternal(s, externals)),
    ),
  ];
}

/** Touched Services and those using a Consul name one of them uses; none when none uses Consul. */
function sharingConsulNames(services: readonly Service[], changed: readonly Service[]): Service[] {
  const names = new Set(changed.filter(usesConsul).map(consulNameKey));
  if (names.size === 0) return [];
  const mine = new Set(changed);
  return services.filter((s) => mine.has(s) || (usesConsul(s) && names.has(consulNameKey(s))));
}

const portNames = (s: Service) => JSON.stringify(s.ports.map((p) => p.name));
const portSockets = (s: Service) => JSON.stringify(s.ports.map((p) => [p.name, p.instancePorts]));

/** What decides the sockets a Service's own instances bind. */
function sockets(s: Service): string {
  return JSON.stringify([
    s.instances.map((i) => [i.name, i.address, i.appAddress]),
    s.ports,
    s.upstreams.map((u) =>
      isExternalUpstream(u)
        ? [u.external, u.namespace, u.localPort]
        : [u.service, u.namespace, u.port, u.localPort],
    ),
  ]);
}

/** Whether every Service in `changed` has the same `part` as in `previous`. */
function unchanged(
  changed: readonly Service[],
  previous: ReadonlyMap<string, Manifest>,
  part: (s: Service) => string,
): boolean {
  return changed.every((s) => {
    const was = previous.get(manifestId(s));
    return was?.kind === 'Service' && part(was) === part(s);
  });
}

/** The hosts a Service's sidecars and applications bind, once per Service object (they never change). */
const hostsMemo = new WeakMap<Service, readonly string[]>();

function hostsOf(s: Service): readonly string[] {
  let hosts = hostsMemo.get(s);
  if (!hosts)
    hostsMemo.set(
      s,
      (hosts = s.instances.flatMap((i) => [i.address.toLowerCase(), i.appAddress.toLowerCase()])),
    );
  return hosts;
}

/** Services that could bind a socket one of `changed` binds: same host, or a wildcard anywhere. */
function neighbours(services: readonly Service[], changed: readonly Service[]): Service[] {
  const hosts = new Set(changed.flatMap(hostsOf));
  const mine = new Set(changed);
  const wildcard = [...hosts].some((h) => WILDCARDS.has(h));
  return services.filter(
    (s) => mine.has(s) || hostsOf(s).some((h) => wildcard || hosts.has(h) || WILDCARDS.has(h)),
  );
}

/** Keys of touched Services added, removed, or whose `face` (what a check of their callers reads) changed. */
function faceChanges(
  touched: readonly string[],
  changed: readonly Service[],
  previous: ReadonlyMap<string, Manifest>,
  face: (s: Service) => string,
): Set<string> {
  const now = new Map(changed.map((s) => [manifestId(s), s]));
  const out = new Set<string>();
  for (const id of touched) {
    const key = serviceKeyOfId(id);
    const was = previous.get(id);
    const is = now.get(id);
    if (!key) continue;
    if (was?.kind !== 'Service' || !is || face(was) !== face(is)) out.add(key);
  }
  return out;
}

/** The services a policy names (destination first), once per policy object: committed ones persist. */
const named = new WeakMap<AccessPolicy | TrafficPolicy, readonly string[]>();

function namesOf(p: AccessPolicy | TrafficPolicy): readonly string[] {
  let keys = named.get(p);
  if (!keys) {
    const refs =
      p.kind === 'AccessPolicy'
        ? [p.destination, ...p.rules.flatMap((r) => r.from)]
        : [
            p.destination,
            ...(p.from ?? []),
            ...p.routes.flatMap((r) => r.to.flatMap((t) => (t.service ? [t.service] : []))),
          ];
    named.set(p, (keys = refs.map(refKey)));
  }
  return keys;
}

function namesAny(p: AccessPolicy | TrafficPolicy, keys: ReadonlySet<string>): boolean {
  return namesOf(p).some((k) => keys.has(k));
}

function trafficSubjects(
  policies: readonly TrafficPolicy[],
  mine: ReadonlySet<Manifest>,
  keys: ReadonlySet<string>,
): TrafficPolicy[] {
  const destinations = new Set(policies.filter((p) => mine.has(p)).map((p) => namesOf(p)[0]));
  return policies.filter((p) => mine.has(p) || destinations.has(namesOf(p)[0]) || namesAny(p, keys));
}
