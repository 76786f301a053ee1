// JSON shapes as Consul's HTTP API returns them (field names, nesting, empty values as Consul writes
// them), built from the double's records.
import type { CatalogState, CheckRecord, NodeRecord, ServiceRecord } from './state.ts';
import { DEFAULT_NAMESPACE } from './state.ts';

function taggedAddresses(address: string): Record<string, string> {
  const v6 = address.includes(':');
  return v6
    ? { lan: address, lan_ipv6: address, wan: address, wan_ipv6: address }
    : { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address };
}

function withNamespace(ns: string): Record<string, string> {
  // OSS Consul leaves the field out; Enterprise always writes it. Write it only when namespaces are used.
  return ns === DEFAULT_NAMESPACE ? {} : { Namespace: ns };
}

export function nodeJson(node: NodeRecord): Record<string, unknown> {
  return {
    ID: node.id,
    Node: node.name,
    Address: node.address,
    Datacenter: node.datacenter,
    TaggedAddresses: taggedAddresses(node.address),
    Meta: { ...node.meta },
    CreateIndex: node.createIndex,
    ModifyIndex: node.modifyIndex,
  };
}

export function serviceJson(s: ServiceRecord): Record<string, unknown> {
  return {
    ID: s.id,
    Service: s.name,
    Tags: [...s.tags],
    Address: s.address,
    Meta: { ...s.meta },
    Port: s.port,
    Weights: { ...s.weights },
    EnableTagOverride: s.enableTagOverride,
    Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
    Connect: {},
    PeerName: '',
    ...withNamespace(s.namespace),
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

export function checkJson(c: CheckRecord, serviceTags: readonly string[]): Record<string, unknown> {
  const d = c.definition;
  return {
    Node: c.node,
    CheckID: c.checkId,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: c.output,
    ServiceID: c.serviceId,
    ServiceName: c.serviceName,
    ServiceTags: [...serviceTags],
    Type: c.type,
    Interval: d.Interval ?? '',
    Timeout: d.Timeout ?? '',
    ExposedPort: 0,
    Definition: {},
    ...withNamespace(c.namespace),
    CreateIndex: c.createIndex,
    ModifyIndex: c.modifyIndex,
  };
}

/** One element of `GET /v1/health/service/:name`. */
export function healthEntryJson(state: CatalogState, s: ServiceRecord): Record<string, unknown> {
  const node = state.nodes.get(s.node)!;
  return {
    Node: nodeJson(node),
    Service: serviceJson(s),
    Checks: state.checksFor(s).map((c) => checkJson(c, c.serviceId ? s.tags : [])),
  };
}

/** One element of `GET /v1/catalog/service/:name`. */
export function catalogServiceJson(state: CatalogState, s: ServiceRecord): Record<string, unknown> {
  const node = state.nodes.get(s.node)!;
  return {
    ID: node.id,
    Node: node.name,
    Address: node.address,
    Datacenter: node.datacenter,
    TaggedAddresses: taggedAddresses(node.address),
    NodeMeta: { ...node.meta },
    ServiceKind: '',
    ServiceID: s.id,
    ServiceName: s.name,
    ServiceTags: [...s.tags],
    ServiceAddress: s.address,
    ServiceWeights: { ...s.weights },
    ServiceMeta: { ...s.meta },
    ServicePort: s.port,
    ServiceEnableTagOverride: s.enableTagOverride,
    ServiceProxy: { Mode: '', MeshGateway: {}, Expose: {} },
    ServiceConnect: {},
    ...withNamespace(s.namespace),
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}
