// kind: Service — a clinical service: its ports, how its instances are discovered (listed here or
// found in Consul), the instances themselves, and the upstream services it calls.
import { isMap, isScalar } from 'yaml';
import { checkServiceEntries } from './check-service.ts';
import { dnsLabel, ipAddress, portNumber } from './field-values.ts';
import { DEFAULT_NAMESPACE, type KindSchema } from './kind-schema.ts';
import type {
  DiscoveryMode,
  Instance,
  InstancePorts,
  Locality,
  Protocol,
  Service,
  ServicePort,
  Upstream,
} from './types.ts';
import {
  bool,
  childPath,
  complete,
  intIn,
  listOf,
  mapOf,
  oneOf,
  str,
  stringMap,
  stringWhere,
  type MapFields,
  type Reader,
} from './yaml-reader.ts';

export const SERVICE_DEFAULTS = {
  namespace: DEFAULT_NAMESPACE,
  discoveryMode: 'static' as DiscoveryMode,
  appAddress: '127.0.0.1',
  weight: 1,
} as const;

/** At most this many instances per port: a caller binds one listener per ordinal. */
export const MAX_INSTANCE_PORTS = 256;

const readInstancePorts: Reader<InstancePorts> = (r, node, path) => {
  const m = mapOf(['base', 'count'])(r, node, path);
  const base = m?.required('base', portNumber);
  const count = m?.required('count', intIn(1, MAX_INSTANCE_PORTS));
  if (base === undefined || count === undefined) return undefined;
  if (base + count - 1 > 65535) {
    r.reportAt(
      childPath(path, 'count'),
      `base ${base} + count ${count} runs past port 65535 (the last ordinal would be ${base + count - 1})`,
    );
    return undefined;
  }
  return { base, count };
};

const readPort: Reader<ServicePort> = (r, node, path) => {
  const m = mapOf(['name', 'port', 'targetPort', 'protocol', 'instancePorts'])(r, node, path);
  const name = m?.required('name', dnsLabel);
  const port = m?.required('port', portNumber);
  const targetPort = m?.optional('targetPort', portNumber);
  const protocol = m?.required('protocol', oneOf<Protocol>(['http', 'grpc', 'tcp']));
  const instancePorts = m?.optional('instancePorts', readInstancePorts);
  // Per-instance listeners are plain TCP proxies; HTTP would need a route table per instance.
  if (instancePorts !== undefined && protocol !== undefined && protocol !== 'tcp')
    r.reportAt(
      childPath(path, 'instancePorts'),
      `instancePorts needs protocol tcp (this port is ${protocol})`,
    );
  if (name === undefined || port === undefined || protocol === undefined) return undefined;
  return { name, port, targetPort: targetPort ?? port, protocol, ...(instancePorts && { instancePorts }) };
};

const readLocality: Reader<Locality> = (r, node, path) => {
  const m = mapOf(['region', 'zone', 'subZone'])(r, node, path);
  const region = m?.optional('region', str);
  const zone = m?.optional('zone', str);
  const subZone = m?.optional('subZone', str);
  // Only the levels given, so `{}` means "no locality" everywhere downstream.
  return {
    ...(region !== undefined && { region }),
    ...(zone !== undefined && { zone }),
    ...(subZone !== undefined && { subZone }),
  };
};

const readInstance: Reader<Instance> = (r, node, path) => {
  const m = mapOf(['name', 'address', 'appAddress', 'locality', 'weight', 'meta'])(r, node, path);
  const name = m?.required('name', dnsLabel);
  // Peers reach the instance here through EDS, which takes IP literals only (one host name would make
  // Envoy reject the service's whole endpoint list), and its sidecar binds it: an IP, not a name.
  const address = m?.required('address', ipAddress);
  // The sidecar binds outbound listeners here, so it must be an IP, not a name.
  const appAddress = m?.optional('appAddress', ipAddress) ?? SERVICE_DEFAULTS.appAddress;
  const locality = m?.optional('locality', readLocality) ?? {};
  const weight = m?.optional('weight', intIn(1, 128)) ?? SERVICE_DEFAULTS.weight;
  const meta = m?.optional('meta', stringMap) ?? {};
  if (name === undefined || address === undefined) return undefined;
  return { name, address, appAddress, locality, weight, meta };
};

/**
 * `port` names a port of the upstream service and is required even when that service has only one:
 * a default would silently change meaning the day the upstream gains a second port. An entry naming
 * `external` instead calls an ExternalService, which has no ports to choose from.
 */
function upstreamReader(ownNamespace: string): Reader<Upstream> {
  return (r, node, path) => {
    const external = isMap(node) && node.has('external') && !node.has('service');
    if (external) {
      const m = mapOf(['external', 'namespace', 'localPort'])(r, node, path);
      const name = m?.required('external', dnsLabel);
      const namespace = m?.optional('namespace', dnsLabel) ?? ownNamespace;
      const localPort = m?.required('localPort', portNumber);
      if (name === undefined || localPort === undefined) return undefined;
      return { external: name, namespace, localPort };
    }
    const m = mapOf(['service', 'namespace', 'port', 'localPort'])(r, node, path);
    const service = m?.required('service', dnsLabel);
    const namespace = m?.optional('namespace', dnsLabel) ?? ownNamespace;
    const port = m?.required('port', dnsLabel);
    const localPort = m?.required('localPort', portNumber);
    if (service === undefined || port === undefined || localPort === undefined) return undefined;
    return { service, namespace, port, localPort };
  };
}

// Kubernetes label syntax, so labels can be copied between the two: an optional DNS-subdomain
// prefix and "/", then a name of at most 63 characters; values the same, or empty.
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = key.slice(slash + 1);
  return (
    LABEL_NAME.test(name) && (prefix === undefined || (prefix.length <= 253 && LABEL_PREFIX.test(prefix)))
  );
}

const readLabels: Reader<Record<string, string>> = (r, node, path) => {
  const labels = stringMap(r, node, path);
  if (labels === undefined || !isMap(node)) return labels;
  for (const { key, value } of node.items) {
    if (!isScalar(key) || !isScalar(value)) continue;
    const name = String(key.value);
    const text = labels[name];
    if (text === undefined) continue;
    if (!isLabelKey(name))
      r.report(
        key,
        childPath(path, name),
        `${JSON.stringify(name)} is not a label key ([prefix/]name, name of at most 63 letters, digits, "-", "_", ".")`,
      );
    if (text !== '' && !LABEL_NAME.test(text))
      r.report(
        value,
        childPath(path, name),
        `${JSON.stringify(text)} is not a label value (at most 63 letters, digits, "-", "_", ".")`,
      );
  }
  return labels;
};

const consulServiceName = stringWhere((s) => /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s), 'a Consul service name');

function readDiscovery(spec: MapFields | undefined, name: string): Service['discovery'] {
  const m = spec?.optional('discovery', mapOf(['mode', 'consulName', 'register']));
  return {
    mode: m?.optional('mode', oneOf<DiscoveryMode>(['static', 'consul'])) ?? SERVICE_DEFAULTS.discoveryMode,
    consulName: m?.optional('consulName', consulServiceName) ?? name,
    register: m?.optional('register', bool) ?? false,
  };
}

export const serviceSchema: KindSchema<Service> = {
  namespaced: true,
  metadataFields: ['labels'],
  read(doc, { name, namespace = SERVICE_DEFAULTS.namespace, origin, metadata }) {
    const r = doc.r;
    const labels = metadata?.optional('labels', readLabels);
    const spec = doc.required('spec', mapOf(['ports', 'discovery', 'instances', 'upstreams']));
    const ports = spec?.required('ports', listOf(readPort));
    if (ports?.length === 0) r.reportAt('spec.ports', 'a service needs at least one port');
    const discovery = readDiscovery(spec, name);
    // Static services are only reachable through the instances listed; Consul supplies its own.
    const instances =
      discovery.mode === 'static'
        ? spec?.required('instances', listOf(readInstance))
        : spec?.optional('instances', listOf(readInstance));
    if (discovery.mode === 'static' && instances?.length === 0)
      r.reportAt('spec.instances', 'static discovery needs at least one instance');
    const upstreams = spec?.optional('upstreams', listOf(upstreamReader(namespace))) ?? [];
    r.problems.push(
      ...checkServiceEntries({
        name,
        namespace,
        ports: ports ?? [],
        instances: instances ?? [],
        upstreams,
        origin,
      }),
    );

    const validPorts = complete(ports);
    const validInstances = complete(instances ?? []);
    const validUpstreams = complete(upstreams);
    if (!validPorts || !validInstances || !validUpstreams) return undefined;
    return {
      kind: 'Service',
      name,
      namespace,
      ...(labels !== undefined && { labels }),
      ports: validPorts,
      discovery,
      instances: validInstances,
      upstreams: validUpstreams,
      origin,
    };
  },
};
