// `clinimesh describe KIND NS/NAME`: the manifest and what the control plane derives from it.
import type { Manifest } from '../manifest/types.ts';
import { CONNECTION_OPTIONS, UsageError, callAdmin, credentialFor, parseCommandLine } from './cli-support.ts';
import { outputOption } from './get.ts';
import { parseKind, parseName } from './kinds.ts';
import { toYaml } from './manifest-document.ts';
import { proxyStatusTable } from './proxy-status.ts';
import type { SidecarSync } from './wait.ts';

interface Described {
  manifest: Manifest;
  instances?: Array<{ name: string; address: string; node: string }>;
  endpoints?: Array<{ instance?: string; address: string; health?: string }>;
  calledBy?: string[];
  policies?: string[];
  sidecars?: SidecarSync[];
  destination?: string;
  destinationExists?: boolean;
  allows?: string[];
}

const indent = (text: string): string =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

const list = (items: readonly string[] | undefined): string => (items?.length ? items.join(', ') : '<none>');

function render(d: Described): string {
  const m = d.manifest;
  const out = [`Kind:       ${m.kind}`, `Name:       ${m.name}`];
  if ('namespace' in m) out.push(`Namespace:  ${m.namespace}`);
  out.push(`Source:     ${m.origin.file}`, 'Manifest:', indent(toYaml(m)));
  if (d.instances)
    out.push(
      'Instances:',
      ...(d.instances.length
        ? d.instances.map((i) => `  ${i.name}  ${i.address}  node ${i.node}`)
        : ['  <none>']),
    );
  if (d.endpoints)
    out.push(
      'Endpoints:',
      ...(d.endpoints.length
        ? d.endpoints.map(
            (e) => `  ${e.instance ? `${e.instance}  ` : ''}${e.address}${e.health ? `  ${e.health}` : ''}`,
          )
        : ['  <none>']),
    );
  if (d.calledBy) out.push(`Called by:  ${list(d.calledBy)}`);
  if (d.policies) out.push(`Policies:   ${list(d.policies)}`);
  if (d.destination)
    out.push(
      `Destination: ${d.destination}${d.destinationExists ? '' : '  (no such Service)'}`,
      `Allows:     ${list(d.allows)}`,
    );
  if (d.sidecars)
    out.push('Sidecars:', d.sidecars.length ? indent(proxyStatusTable(d.sidecars)) : '  <none connected>');
  return out.join('\n');
}

export async function describeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    ...CONNECTION_OPTIONS,
    namespace: { type: 'string', short: 'n' },
    output: { type: 'string', short: 'o' },
  });
  const output = outputOption(values.output, ['table', 'json']);
  const kind = parseKind(positionals[0]);
  if (positionals.length < 2)
    throw new UsageError(`describe ${positionals[0]} needs a name: ${kind === 'Mesh' ? 'NAME' : 'NS/NAME'}`);
  if (positionals.length > 2) throw new UsageError(`unexpected argument "${positionals[2]}"`);
  const ref = parseName(kind, positionals[1]!, values.namespace);
  if (kind !== 'Mesh' && !ref.namespace)
    throw new UsageError(`name the namespace: ${positionals[0]} NS/${ref.name} or -n NS`);
  const res = await callAdmin(
    credentialFor(values),
    'GET',
    `/v1/describe/${kind}/${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`,
  );
  if (!res) return 1;
  console.log(output === 'json' ? JSON.stringify(res.json, null, 2) : render(res.json as Described));
  return 0;
}
