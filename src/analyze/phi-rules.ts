// Rules for services that handle patient data (label `clinical.data: phi`): someone must have said
// who may call them (CM0002), their traffic must be mutual TLS only (CM0003), every request to them
// must be audited (CM0004), and the mesh should deny by default around them (CM0005).
import { where } from '../manifest/problem-at.ts';
import { manifestId, type Service } from '../manifest/types.ts';
import { handlesPhi, isBuiltIn, PHI_LABEL, PHI_LABEL_FIELD, type AnalysisContext } from './context.ts';
import { finding, locate, type Finding } from './finding.ts';

const phiLabel = `${PHI_LABEL.key}: ${PHI_LABEL.value}`;

function withoutPolicy(ctx: AnalysisContext, s: Service): Finding[] {
  if (ctx.policiesFor(s).length > 0) return [];
  const fallback =
    ctx.mesh.authorization.defaultAction === 'ALLOW'
      ? 'so every service in the mesh may call it'
      : 'so it relies on the mesh-wide deny-all alone';
  return [
    finding(
      'CM0002',
      locate(s.origin, PHI_LABEL_FIELD),
      manifestId(s),
      `handles patient data (${phiLabel}) but no AccessPolicy has it as destination, ${fallback}`,
      `add an AccessPolicy with destination ${s.name} (namespace ${s.namespace}) listing the services that may call it`,
    ),
  ];
}

/** A Mesh setting that a PHI service may not live with, reported at that setting (one per service). */
function meshSetting(
  ctx: AnalysisContext,
  s: Service,
  code: 'CM0003' | 'CM0004' | 'CM0005',
  field: string,
  problem: string,
  fix: string,
): Finding {
  const { mesh } = ctx;
  const service = `${manifestId(s)} (${where(s.origin, PHI_LABEL_FIELD)})`;
  // Without a Mesh manifest the built-in defaults are in force: point at the service instead.
  if (isBuiltIn(mesh))
    return finding(
      code,
      locate(s.origin, PHI_LABEL_FIELD),
      manifestId(s),
      `handles patient data, but in the built-in mesh (no Mesh manifest) ${problem}`,
      `add a Mesh manifest that sets ${field}: ${fix}`,
    );
  return finding(
    code,
    locate(mesh.origin, field),
    manifestId(mesh),
    `${problem}, while ${service} handles patient data`,
    `set ${field}: ${fix}`,
  );
}

function meshRules(ctx: AnalysisContext, s: Service): Finding[] {
  const { mesh } = ctx;
  const found: Finding[] = [];
  if (mesh.mtls.mode === 'PERMISSIVE')
    found.push(
      meshSetting(
        ctx,
        s,
        'CM0003',
        'spec.mtls.mode',
        'mTLS is PERMISSIVE (plaintext is accepted too)',
        'STRICT',
      ),
    );
  if (!mesh.audit.enabled)
    found.push(
      meshSetting(
        ctx,
        s,
        'CM0004',
        'spec.audit.enabled',
        'auditing is off (no trail of who read patient records)',
        'true',
      ),
    );
  if (mesh.authorization.defaultAction === 'ALLOW')
    found.push(
      meshSetting(
        ctx,
        s,
        'CM0005',
        'spec.authorization.defaultAction',
        'authorization defaults to ALLOW (a forgotten or deleted policy opens a service to every caller)',
        'DENY (and give every service its AccessPolicy)',
      ),
    );
  return found;
}

export function phiFindings(ctx: AnalysisContext): Finding[] {
  return ctx.services.filter(handlesPhi).flatMap((s) => [...withoutPolicy(ctx, s), ...meshRules(ctx, s)]);
}
