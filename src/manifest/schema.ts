// The manifest schema: the envelope every document shares (apiVersion, kind, metadata) and the table
// of kind validators. A new kind (AccessPolicy, TrafficPolicy) is a new schema-<kind>.ts and one row
// in KIND_SCHEMAS; the envelope and the other kinds do not change.
import { isMap } from 'yaml';
import type { Problem } from '../errors.ts';
import { didYouMean } from './did-you-mean.ts';
import { packFieldPositions } from './field-positions.ts';
import { dnsLabel } from './field-values.ts';
import { DEFAULT_NAMESPACE, type KindSchema } from './kind-schema.ts';
import type { RawDocument } from './parse.ts';
import { accessPolicySchema } from './schema-access-policy.ts';
import { externalServiceSchema } from './schema-external-service.ts';
import { meshSchema } from './schema-mesh.ts';
import { serviceSchema } from './schema-service.ts';
import { trafficPolicySchema } from './schema-traffic-policy.ts';
import { API_VERSION, manifestId, type Manifest, type ManifestKind } from './types.ts';
import { DocReader, MapFields, mapOf, str, type Reader } from './yaml-reader.ts';

/** One validator per kind; the mapped type makes a kind added to `Manifest` without a row a compile error. */
const KIND_SCHEMAS: { readonly [K in ManifestKind]: KindSchema<Extract<Manifest, { kind: K }>> } = {
  Mesh: meshSchema,
  Service: serviceSchema,
  AccessPolicy: accessPolicySchema,
  TrafficPolicy: trafficPolicySchema,
  ExternalService: externalServiceSchema,
};

const KINDS = Object.keys(KIND_SCHEMAS) as ManifestKind[];
const isKind = (s: string): s is ManifestKind => (KINDS as string[]).includes(s);

const apiVersion: Reader<string> = (r, node, path) => {
  const v = str(r, node, path);
  if (v !== undefined && v !== API_VERSION)
    r.report(node, path, `unsupported apiVersion "${v}", expected "${API_VERSION}"`, 'UNKNOWN_KIND');
  return v;
};

const kind: Reader<ManifestKind> = (r, node, path) => {
  const v = str(r, node, path);
  if (v === undefined || isKind(v)) return v;
  r.report(
    node,
    path,
    `unknown kind "${v}"; known kinds: ${KINDS.join(', ')}${didYouMean(v, KINDS)}`,
    'UNKNOWN_KIND',
  );
  return undefined;
};

export interface DocumentResult {
  /** Present only when the document had no problems at all. */
  readonly manifest?: Manifest;
  readonly problems: readonly Problem[];
}

/** Validates one raw document into a manifest, collecting every problem it has. */
export function validateDocument(raw: RawDocument): DocumentResult {
  const r = new DocReader(raw);
  const contents = raw.doc.contents;
  if (!isMap(contents)) {
    if (contents) r.expected(contents, '', 'a manifest: a map with apiVersion, kind, metadata and spec');
    return { problems: r.problems };
  }
  const doc = new MapFields(r, contents, '', ['apiVersion', 'kind', 'metadata', 'spec']);
  doc.required('apiVersion', apiVersion);
  const k = doc.required('kind', kind);
  // Without a known kind the fields cannot be judged; the kind error says enough.
  if (k === undefined) return { problems: r.problems };
  const schema: KindSchema = KIND_SCHEMAS[k];

  const envelopeFields = schema.namespaced ? ['name', 'namespace'] : ['name'];
  const metadata = doc.required('metadata', mapOf([...envelopeFields, ...(schema.metadataFields ?? [])]));
  const name = metadata?.required('name', dnsLabel);
  const namespace = schema.namespaced
    ? (metadata?.optional('namespace', dnsLabel) ?? DEFAULT_NAMESPACE)
    : undefined;
  const origin = { file: raw.file, pos: raw.pos, fieldPos: r.fieldPos };
  // The spec is read even when the name is bad, so all of a document's problems come out at once.
  const manifest = schema.read(doc, {
    name: name ?? '',
    ...(namespace !== undefined && { namespace }),
    ...(metadata !== undefined && { metadata }),
    origin,
  });

  // Read with the reader's map; kept packed (see field-positions.ts) once every field is read.
  if (manifest && r.problems.length === 0)
    return {
      manifest: { ...manifest, origin: { ...origin, fieldPos: packFieldPositions(r.fieldPos) } },
      problems: [],
    };
  const resource =
    name === undefined
      ? undefined
      : manifestId({ kind: k, name, ...(namespace !== undefined && { namespace }) });
  return { problems: resource ? r.problems.map((p) => (p.resource ? p : { ...p, resource })) : r.problems };
}
