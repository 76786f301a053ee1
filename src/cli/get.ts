// `clinimesh get KIND [NAME|NS/NAME] [-n NS] [-o table|yaml|json]`: the manifests in force, as a
// table or as the documents an operator would write.
import { isExternalUpstream, type Manifest, type ManifestKind } from '../manifest/types.ts';
import {
  AlreadyReported,
  CONNECTION_OPTIONS,
  CommandError,
  UsageError,
  callAdmin,
  credentialFor,
  parseCommandLine,
  table,
} from './cli-support.ts';
import type { OperatorCredential } from './credential.ts';
import { parseKind, parseName, refText, type NameRef } from './kinds.ts';
import { toDocument, toYaml } from './manifest-document.ts';

const OUTPUTS = ['table', 'yaml', 'json'] as const;
type Output = (typeof OUTPUTS)[number];

export function outputOption(text: string | undefined, allowed: readonly string[] = OUTPUTS): Output {
  const o = text ?? 'table';
  if (!allowed.includes(o)) throw new UsageError(`-o ${o}: one of ${allowed.join(', ')}`);
  return o as Output;
}

export async function fetchManifests(cred: OperatorCredential): Promise<Manifest[]> {
  const res = await callAdmin(cred, 'GET', '/v1/manifests');
  if (!res) throw new AlreadyReported();
  return (res.json as { manifests: Manifest[] }).manifests;
}

export function matches(m: Manifest, kind: ManifestKind, ref: Partial<NameRef>): boolean {
  if (m.kind !== kind) return false;
  if (ref.name !== undefined && m.name !== ref.name) return false;
  return ref.namespace === undefined || !('namespace' in m) || m.namespace === ref.namespace;
}

function rowsOf(kind: ManifestKind, list: readonly Manifest[]): string {
  if (kind === 'Mesh') {
    const rows = list.flatMap((m) =>
      m.kind === 'Mesh'
        ? [
            [
              m.name,
              m.trustDomain,
              m.mtls.mode,
              m.authorization.defaultAction,
              m.audit.enabled ? 'on' : 'off',
            ],
          ]
        : [],
    );
    return table(['NAME', 'TRUST DOMAIN', 'MTLS', 'DEFAULT ACTION', 'AUDIT'], rows);
  }
  if (kind === 'Service') {
    const rows = list.flatMap((s) =>
      s.kind === 'Service'
        ? [
            [
              s.namespace,
              s.name,
              s.ports.map((p) => `${p.name}:${p.port}/${p.protocol}`).join(','),
              String(s.instances.length),
              s.discovery.mode,
              s.upstreams
                .map(
                  (u) => `${u.namespace}/${isExternalUpstream(u) ? `${u.external} (external)` : u.service}`,
                )
                .join(',') || '-',
            ],
          ]
        : [],
    );
    return table(['NAMESPACE', 'NAME', 'PORTS', 'INSTANCES', 'DISCOVERY', 'UPSTREAMS'], rows);
  }
  if (kind === 'ExternalService') {
    const rows = list.flatMap((e) =>
      e.kind === 'ExternalService'
        ? [
            [
              e.namespace,
              e.name,
              e.protocol,
              e.endpoints.map((p) => `${p.address}:${p.port}`).join(','),
              e.tls.mode === 'ORIGINATE' ? `ORIGINATE ${e.tls.subjectAltNames.join(',')}` : 'NONE',
            ],
          ]
        : [],
    );
    return table(['NAMESPACE', 'NAME', 'PROTOCOL', 'ENDPOINTS', 'TLS'], rows);
  }
  if (kind !== 'AccessPolicy')
    return table(
      ['NAMESPACE', 'NAME'],
      list.map((m) => ['namespace' in m ? m.namespace : '-', m.name]),
    );
  const rows = list.flatMap((p) =>
    p.kind === 'AccessPolicy'
      ? [
          [
            p.namespace,
            p.name,
            `${p.destination.namespace}/${p.destination.service}`,
            [...new Set(p.rules.flatMap((r) => r.from.map((f) => `${f.namespace}/${f.service}`)))].join(','),
          ],
        ]
      : [],
  );
  return table(['NAMESPACE', 'NAME', 'DESTINATION', 'FROM'], rows);
}

export async function getCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    ...CONNECTION_OPTIONS,
    namespace: { type: 'string', short: 'n' },
    output: { type: 'string', short: 'o' },
  });
  const output = outputOption(values.output);
  if (positionals.length > 2) throw new UsageError(`unexpected argument "${positionals[2]}"`);
  const kind = parseKind(positionals[0]);
  const ref: Partial<NameRef> =
    positionals[1] === undefined
      ? { namespace: values.namespace }
      : parseName(kind, positionals[1], values.namespace);
  const found = (await fetchManifests(credentialFor(values)))
    .filter((m) => matches(m, kind, ref))
    .sort((a, b) => refText(a.kind, a).localeCompare(refText(b.kind, b)));
  if (ref.name !== undefined && found.length === 0)
    throw new CommandError(`${refText(kind, { name: ref.name, namespace: ref.namespace })} not found`);
  if (output === 'json')
    console.log(
      JSON.stringify(
        ref.name !== undefined && found.length === 1
          ? toDocument(found[0]!)
          : { items: found.map(toDocument) },
        null,
        2,
      ),
    );
  else if (output === 'yaml') console.log(found.map(toYaml).join('---\n').trimEnd());
  else if (found.length === 0)
    console.error(`no ${kind} manifests${ref.namespace ? ` in namespace ${ref.namespace}` : ''}`);
  else console.log(rowsOf(kind, found));
  return 0;
}
