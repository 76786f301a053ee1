// kind: AccessPolicy — which services may call a destination service, on which of its ports and,
// for its HTTP and gRPC ports, with which methods and paths. Whether the services named exist is a set check
// (check-policies.ts); this file reads one document.
import { isMap, isScalar } from 'yaml';
import { dnsLabel } from './field-values.ts';
import { DEFAULT_NAMESPACE, type KindSchema } from './kind-schema.ts';
import type { AccessPolicy, AccessRule, PathMatch, ServiceRef } from './types.ts';
import {
  childPath,
  complete,
  listOf,
  mapOf,
  oneOf,
  str,
  type MapFields,
  type Reader,
} from './yaml-reader.ts';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

type HttpRule = NonNullable<AccessRule['http']>;

/** `{ service, namespace? }`, the namespace defaulting to the policy's own. */
function serviceRefReader(ownNamespace: string): Reader<ServiceRef> {
  return (r, node, path) => {
    const m = mapOf(['service', 'namespace'])(r, node, path);
    const service = m?.required('service', dnsLabel);
    const namespace = m?.optional('namespace', dnsLabel) ?? ownNamespace;
    return service === undefined ? undefined : { service, namespace };
  };
}

/** The destination may also be written as a bare service name in the policy's namespace. */
function destinationReader(ownNamespace: string): Reader<ServiceRef> {
  return (r, node, path) => {
    if (isMap(node)) return serviceRefReader(ownNamespace)(r, node, path);
    if (!isScalar(node) || typeof node.value !== 'string')
      return r.expected(node, path, 'a service name or a map with service and namespace');
    const service = dnsLabel(r, node, path);
    return service === undefined ? undefined : { service, namespace: ownNamespace };
  };
}

const PATH_RULE =
  'an HTTP path starting with "/", without query string or fragment, with "*" only at its end (a prefix match)';

/** `/orders` matches exactly; `/patients/*` matches every path starting with `/patients/`. */
const pathMatch: Reader<PathMatch> = (r, node, path) => {
  const v = str(r, node, path);
  if (v === undefined) return undefined;
  const body = v.endsWith('*') ? v.slice(0, -1) : v;
  // Envoy matches the path without its query, so a `?` could never match; say so now.
  if (!body.startsWith('/') || /[*?#\s]/.test(body)) {
    r.report(node, path, `${JSON.stringify(v)} is not ${PATH_RULE}`);
    return undefined;
  }
  return v.endsWith('*') ? { prefix: body } : { exact: body };
};

/**
 * An optional list that must not be empty: `methods: []` reads as "no method" to a person but would
 * mean "any method", so it is refused in favour of leaving the field out.
 */
function nonEmptyOptionalList<T>(m: MapFields, key: string, item: Reader<T>): (T | undefined)[] {
  const list = m.optional(key, listOf(item));
  if (list?.length === 0)
    m.r.reportAt(childPath(m.path, key), `an empty ${key} list; leave "${key}" out to allow any`);
  return list ?? [];
}

const httpRule: Reader<HttpRule> = (r, node, path) => {
  const m = mapOf(['methods', 'paths'])(r, node, path);
  if (m === undefined) return undefined;
  const methods = complete(nonEmptyOptionalList(m, 'methods', oneOf(HTTP_METHODS)));
  const paths = complete(nonEmptyOptionalList(m, 'paths', pathMatch));
  return methods && paths ? { methods, paths } : undefined;
};

function ruleReader(ownNamespace: string): Reader<AccessRule> {
  return (r, node, path) => {
    const m = mapOf(['from', 'ports', 'http'])(r, node, path);
    const from = m?.required('from', listOf(serviceRefReader(ownNamespace)));
    if (from?.length === 0) r.reportAt(childPath(path, 'from'), 'a rule needs at least one caller');
    // Port names of the destination; whether it has them is a set check (check-policies.ts).
    const ports = m?.has('ports') ? complete(nonEmptyOptionalList(m, 'ports', dnsLabel)) : undefined;
    const http = m?.optional('http', httpRule);
    const callers = complete(from);
    if (callers === undefined || (m?.has('http') && http === undefined)) return undefined;
    if (m?.has('ports') && !ports?.length) return undefined;
    return { from: callers, ...(ports && { ports }), ...(http && { http }) };
  };
}

export const accessPolicySchema: KindSchema<AccessPolicy> = {
  namespaced: true,
  read(doc, { name, namespace = DEFAULT_NAMESPACE, origin }) {
    const spec = doc.required('spec', mapOf(['destination', 'rules']));
    const destination = spec?.required('destination', destinationReader(namespace));
    const rules = spec?.required('rules', listOf(ruleReader(namespace)));
    // No rules would deny everyone; that is the mesh's deny-all, not a policy to write by accident.
    if (rules?.length === 0) doc.r.reportAt('spec.rules', 'a policy needs at least one rule');
    const validRules = complete(rules);
    if (destination === undefined || validRules === undefined) return undefined;
    return { kind: 'AccessPolicy', name, namespace, destination, rules: validRules, origin };
  },
};
