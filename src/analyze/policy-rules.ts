// Rules over AccessPolicies: every service a policy names exists (CM0006), and every upstream a
// Service declares is one its destination's policies let it call (CM0007), else the call is denied.
import { ruleAppliesTo } from '../manifest/access-rules.ts';
import { noSuchService } from '../manifest/check-references.ts';
import { fieldAt } from '../manifest/field-positions.ts';
import { where } from '../manifest/problem-at.ts';
import {
  isExternalUpstream,
  manifestId,
  type AccessPolicy,
  type Service,
  type ServiceRef,
  type Upstream,
} from '../manifest/types.ts';
import type { AnalysisContext } from './context.ts';
import { finding, locate, type Finding } from './finding.ts';

function unknownService(ctx: AnalysisContext, p: AccessPolicy, ref: ServiceRef, field: string): Finding[] {
  if (ctx.findService(ref)) return [];
  return [
    finding(
      'CM0006',
      locate(p.origin, field),
      manifestId(p),
      noSuchService(ref, ctx.services),
      `correct the name, or create Service ${ref.namespace}/${ref.service} before this policy`,
    ),
  ];
}

/** The destination is written either as a bare name or as `{ service, namespace }`. */
const destinationField = (p: AccessPolicy): string =>
  fieldAt(p.origin.fieldPos, 'spec.destination.service') ? 'spec.destination.service' : 'spec.destination';

export function policyReferenceFindings(ctx: AnalysisContext): Finding[] {
  return ctx.policies.flatMap((p) => [
    ...unknownService(ctx, p, p.destination, destinationField(p)),
    ...p.rules.flatMap((rule, i) =>
      rule.from.flatMap((ref, j) => unknownService(ctx, p, ref, `spec.rules[${i}].from[${j}].service`)),
    ),
  ]);
}

const names = (caller: Service) => (ref: ServiceRef) =>
  ref.service === caller.name && ref.namespace === caller.namespace;

function deniedUpstream(ctx: AnalysisContext, caller: Service, u: Upstream, i: number): Finding[] {
  // A partner outside the mesh has no AccessPolicy to deny the call.
  if (isExternalUpstream(u)) return [];
  const target = ctx.findService(u);
  const port = target?.ports.find((p) => p.name === u.port);
  // An upstream to nothing is a validation problem (REFERENCE), reported as such.
  if (!target || !port) return [];
  const policies = ctx.policiesFor(target);
  const denied = (message: string, fix: string): Finding[] => [
    finding(
      'CM0007',
      locate(caller.origin, `spec.upstreams[${i}].service`),
      manifestId(caller),
      message,
      fix,
    ),
  ];
  const callerRef = `{ service: ${caller.name}, namespace: ${caller.namespace} }`;
  if (policies.length === 0) {
    if (ctx.mesh.authorization.defaultAction === 'ALLOW') return [];
    return denied(
      `calls ${manifestId(target)}, which has no AccessPolicy in a mesh that denies by default: every call will be denied`,
      `add an AccessPolicy with destination ${target.name} and a rule from ${callerRef}`,
    );
  }
  const listing = policies.flatMap((p) => p.rules.filter((r) => r.from.some(names(caller))));
  if (listing.some((r) => ruleAppliesTo(r, port))) return [];
  const first = policies[0]!;
  const rules = where(first.origin, 'spec.rules');
  if (listing.length === 0) {
    return denied(
      `calls ${manifestId(target)}, but no AccessPolicy of that service lets ${manifestId(caller)} call it: every call will be denied`,
      `add ${callerRef} to the from list of a rule in ${manifestId(first)} (${rules}), or remove the upstream`,
    );
  }
  // Listed, but not for this port: the rules name other ports, or hold http conditions a tcp port cannot.
  const onPort = listing.filter((r) => !r.ports || r.ports.includes(port.name));
  if (onPort.length > 0) {
    return denied(
      `calls ${manifestId(target)} on tcp port ${port.name}, but only rules with http conditions list it, and those do not open tcp ports: every connection will be closed`,
      `add ${callerRef} to the from list of a rule without http conditions in ${manifestId(first)} (${rules}), or remove the upstream`,
    );
  }
  return denied(
    `calls ${manifestId(target)} on port ${port.name}, but the rules that list ${manifestId(caller)} name only other ports: every call will be denied`,
    `add ${port.name} to the ports of a rule that lists ${callerRef} in ${manifestId(first)} (${rules}), or remove the upstream`,
  );
}

export function deniedUpstreamFindings(ctx: AnalysisContext): Finding[] {
  return ctx.services.flatMap((s) => s.upstreams.flatMap((u, i) => deniedUpstream(ctx, s, u, i)));
}
