// Authorization as Envoy RBAC. Principals are SPIFFE IDs from verified client certificates; a
// destination with AccessPolicies (or a mesh that denies by default) gets an ALLOW-list, so anything
// not allowed is denied. The same rules run as shadow rules so the audit log can record the decision
// of every request, allowed or not. Each inbound listener serves one port and carries only the rules
// that apply to it (a rule's `ports`, or all ports when it names none). On a TCP port, rules with
// `http` conditions do not apply, and the rest open the connection.
import { spiffeId } from '../../ca/spiffe.ts';
import { ruleAppliesTo, type RulePort } from '../../manifest/access-rules.ts';
import type { AccessPolicy, AccessRule, Mesh, PathMatch } from '../../manifest/types.ts';
import { anyJson } from '../resources/any-json.ts';
import type {
  PermissionJson,
  PolicyJson,
  PrincipalJson,
  RBACJson,
} from '../resources/gen/envoy/config/rbac/v3/rbac_pb.ts';
import type { FilterJson } from '../resources/gen/envoy/config/listener/v3/listener_components_pb.ts';
import type { HttpFilterJson } from '../resources/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts';
import type { StringMatcherJson } from '../resources/gen/envoy/type/matcher/v3/string_pb.ts';

export const HTTP_RBAC = 'envoy.filters.http.rbac';
export const NETWORK_RBAC = 'envoy.filters.network.rbac';

/** Whether this destination needs RBAC at all: not when the mesh allows by default and no policy names it. */
export function needsRbac(mesh: Mesh, policies: readonly AccessPolicy[]): boolean {
  return policies.length > 0 || mesh.authorization.defaultAction === 'DENY';
}

function principals(mesh: Mesh, rule: AccessRule): PrincipalJson[] {
  return rule.from.map((ref) => ({
    authenticated: {
      principal_name: {
        exact: spiffeId(mesh.trustDomain, { namespace: ref.namespace, service: ref.service }),
      },
    },
  }));
}

function httpPermissions(rule: AccessRule): PermissionJson[] {
  if (!rule.http) return [{ any: true }];
  const parts: PermissionJson[] = [];
  if (rule.http.methods.length) {
    parts.push({
      or_rules: {
        rules: rule.http.methods.map((m) => ({ header: { name: ':method', string_match: { exact: m } } })),
      },
    });
  }
  if (rule.http.paths.length) {
    const path = (p: PathMatch): StringMatcherJson =>
      'exact' in p ? { exact: p.exact } : { prefix: p.prefix };
    parts.push({ or_rules: { rules: rule.http.paths.map((p) => ({ url_path: { path: path(p) } })) } });
  }
  return parts.length ? [{ and_rules: { rules: parts } }] : [{ any: true }];
}

/** The RBAC policy set of one port's listener. */
export function rbacRules(mesh: Mesh, policies: readonly AccessPolicy[], port: RulePort): RBACJson {
  const http = port.protocol !== 'tcp';
  const out: { [name: string]: PolicyJson } = {};
  for (const policy of [...policies].sort((a, b) => a.name.localeCompare(b.name))) {
    policy.rules.forEach((rule, i) => {
      if (!ruleAppliesTo(rule, port)) return;
      out[`${policy.namespace}/${policy.name}#${i}`] = {
        permissions: http ? httpPermissions(rule) : [{ any: true }],
        principals: principals(mesh, rule),
      };
    });
  }
  return { action: 'ALLOW', policies: out };
}

/**
 * HTTP RBAC for an HTTP or gRPC port, and for a TCP port whose mesh callers come through a CONNECT
 * tunnel (tcp-tunnel.ts): there it decides on the CONNECT, before the application is connected.
 */
export function httpRbacFilter(
  mesh: Mesh,
  policies: readonly AccessPolicy[],
  port: RulePort,
): HttpFilterJson {
  const rules = rbacRules(mesh, policies, port);
  return {
    name: HTTP_RBAC,
    typed_config: anyJson({
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
      rules,
      shadow_rules: rules,
    }),
  };
}

/**
 * Network RBAC, only for a TCP port's plaintext chain (PERMISSIVE, callers outside the mesh). It
 * decides on the caller's first bytes, after tcp_proxy has connected the application, so it cannot
 * keep a server-first application from greeting a denied caller: that is what PERMISSIVE accepts.
 */
export function networkRbacFilter(
  mesh: Mesh,
  policies: readonly AccessPolicy[],
  port: RulePort,
  statPrefix: string,
): FilterJson {
  const rules = rbacRules(mesh, policies, port);
  return {
    name: NETWORK_RBAC,
    typed_config: anyJson({
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
      stat_prefix: statPrefix,
      rules,
      shadow_rules: rules,
    }),
  };
}
