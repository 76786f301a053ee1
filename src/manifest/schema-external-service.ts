// kind: ExternalService — a partner outside the mesh (a reference lab's FHIR API, a national
// e-prescribing gateway, an HL7 feed) that Services may call through their sidecars, as Istio's
// ServiceEntry or Kuma's ExternalService. TLS to the partner is the default and is verified;
// plaintext must be asked for with a reason. Which Services call it is a set check (check-external.ts).
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { absolutePath, hostOrIp, isDnsLabel, portNumber } from './field-values.ts';
import { DEFAULT_NAMESPACE, type KindSchema } from './kind-schema.ts';
import type { ExternalEndpoint, ExternalProtocol, ExternalService, ExternalTls } from './types.ts';
import {
  bool,
  complete,
  listOf,
  mapOf,
  oneOf,
  str,
  stringWhere,
  type DocReader,
  type MapFields,
  type Reader,
} from './yaml-reader.ts';

const readEndpoint: Reader<ExternalEndpoint> = (r, node, path) => {
  const m = mapOf(['address', 'port'])(r, node, path);
  const address = m?.required('address', hostOrIp);
  const port = m?.required('port', portNumber);
  if (address === undefined || port === undefined) return undefined;
  // Host names are case-insensitive; one spelling keeps duplicates and SNI defaults honest.
  return { address: isIP(address) ? address : address.toLowerCase(), port };
};

function duplicateEndpoints(r: DocReader, endpoints: readonly (ExternalEndpoint | undefined)[]): void {
  const seen = new Map<string, number>();
  endpoints.forEach((e, i) => {
    if (!e) return;
    const key = `${e.address}|${e.port}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else
      r.reportAt(
        `spec.endpoints[${i}].address`,
        `endpoint ${e.address}:${e.port} is already spec.endpoints[${first}]`,
        'DUPLICATE',
      );
  });
}

/** The one host name the endpoints share, the SNI a partner behind it expects; else why there is none. */
function defaultSni(endpoints: readonly ExternalEndpoint[]): { sni?: string; why?: string } {
  const names = [...new Set(endpoints.filter((e) => isIP(e.address) === 0).map((e) => e.address))];
  if (names.length === 1 && names[0] !== undefined) return { sni: names[0] };
  return {
    why: names.length === 0 ? 'the endpoints are IP addresses' : 'the endpoints have different names',
  };
}

const nonEmptyText: Reader<string> = (r, node, path) => {
  const v = str(r, node, path);
  if (v !== undefined && v.trim() === '') r.report(node, path, 'must not be empty');
  return v?.trim() ? v : undefined;
};

const ORIGINATE_ONLY = ['sni', 'caFile', 'caCertificates', 'subjectAltNames'] as const;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * The partner's CA certificates as PEM, kept whole: each block must be a certificate X.509 can read,
 * and a private key is refused outright (it would be stored and served to every caller).
 */
const pemCertificates: Reader<string> = (r, node, path) => {
  const text = str(r, node, path);
  if (text === undefined) return undefined;
  const blocks = [...text.matchAll(PEM_BLOCK)];
  const why = blocks.some((b) => b[1]!.includes('PRIVATE KEY'))
    ? 'holds a private key: give only the CA certificates (a key must never be in a manifest)'
    : blocks.length === 0
      ? 'holds no PEM certificate ("-----BEGIN CERTIFICATE-----")'
      : blocks.find((b) => b[1] !== 'CERTIFICATE' || !readsAsCertificate(b[0]))
        ? 'holds a PEM block that is not a readable X.509 certificate'
        : undefined;
  if (why === undefined) return text;
  r.report(node, path, why);
  return undefined;
};

function readsAsCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/** SNI is a host name: RFC 6066 forbids IP literals in it. */
const sniName = stringWhere(
  (s) => isIP(s) === 0 && s.length <= 253 && s.split('.').every(isDnsLabel),
  'a host name (lowercase DNS labels separated by "."; SNI cannot carry an IP address)',
);

type TlsMode = ExternalTls['mode'];

function readTls(
  spec: MapFields,
  endpoints: readonly ExternalEndpoint[] | undefined,
): { mode?: TlsMode; tls?: ExternalTls } {
  const r = spec.r;
  const m = spec.required('tls', mapOf(['mode', ...ORIGINATE_ONLY]));
  const mode = m?.required('mode', oneOf<TlsMode>(['ORIGINATE', 'NONE']));
  if (m === undefined || mode === undefined) return {};
  if (mode === 'NONE') {
    for (const key of ORIGINATE_ONLY)
      if (m.has(key)) r.reportAt(`spec.tls.${key}`, `${key} applies only to mode ORIGINATE`);
    return { mode, tls: { mode } };
  }
  return { mode, tls: readOriginate(m, endpoints) };
}

function readOriginate(
  m: MapFields,
  endpoints: readonly ExternalEndpoint[] | undefined,
): ExternalTls | undefined {
  const r = m.r;
  const sni = m.optional('sni', sniName);
  const caFile = m.optional('caFile', absolutePath);
  const caCertificates = m.optional('caCertificates', pemCertificates);
  if (m.has('caFile') && m.has('caCertificates'))
    r.reportAt('spec.tls.caCertificates', 'give the partner CA once: caCertificates or caFile, not both');
  const sans = m.optional('subjectAltNames', listOf(hostOrIp));
  if (sans?.length === 0)
    r.reportAt('spec.tls.subjectAltNames', 'an empty list; leave it out to verify the SNI name');
  if (endpoints === undefined) return undefined;
  const fallback = sni === undefined && sans === undefined ? defaultSni(endpoints) : {};
  const serverName = sni ?? fallback.sni;
  const names = complete(sans) ?? (serverName === undefined ? undefined : [serverName]);
  if (fallback.why !== undefined && names === undefined) {
    r.reportAt(
      'spec.tls',
      `ORIGINATE needs a name to verify the partner by (${fallback.why}): set sni or subjectAltNames`,
    );
    return undefined;
  }
  if (names === undefined || names.length === 0) return undefined;
  return {
    mode: 'ORIGINATE',
    ...(serverName !== undefined && { sni: serverName }),
    ...(caFile !== undefined && { caFile }),
    ...(caCertificates !== undefined && { caCertificates }),
    subjectAltNames: names,
  };
}

/** Plaintext to a partner is a decision someone signs: `allowPlaintext: true` and why. */
function readPlaintext(spec: MapFields, mode: TlsMode | undefined): string | undefined {
  const r = spec.r;
  const allow = spec.optional('allowPlaintext', bool);
  const reason = spec.optional('plaintextReason', nonEmptyText);
  if (mode === 'ORIGINATE') {
    if (spec.has('allowPlaintext')) r.reportAt('spec.allowPlaintext', 'applies only to tls.mode NONE');
    if (spec.has('plaintextReason')) r.reportAt('spec.plaintextReason', 'applies only to tls.mode NONE');
    return undefined;
  }
  if (mode !== 'NONE') return undefined;
  if (allow !== true || reason === undefined)
    r.reportAt(
      'spec.tls.mode',
      'tls.mode NONE sends patient data in the clear: refused unless spec.allowPlaintext is true and spec.plaintextReason says why',
    );
  return reason;
}

export const externalServiceSchema: KindSchema<ExternalService> = {
  namespaced: true,
  read(doc, { name, namespace = DEFAULT_NAMESPACE, origin }) {
    const r = doc.r;
    const spec = doc.required(
      'spec',
      mapOf(['endpoints', 'protocol', 'tls', 'allowPlaintext', 'plaintextReason']),
    );
    if (spec === undefined) return undefined;
    const endpoints = spec.required('endpoints', listOf(readEndpoint));
    if (endpoints?.length === 0)
      r.reportAt('spec.endpoints', 'an external service needs at least one endpoint');
    if (endpoints) duplicateEndpoints(r, endpoints);
    const protocol = spec.required('protocol', oneOf<ExternalProtocol>(['http', 'grpc', 'tcp']));
    const valid = complete(endpoints);
    const { mode, tls } = readTls(spec, valid);
    const plaintextReason = readPlaintext(spec, mode);
    if (!valid?.length || protocol === undefined || tls === undefined) return undefined;
    return {
      kind: 'ExternalService',
      name,
      namespace,
      endpoints: valid,
      protocol,
      tls,
      ...(plaintextReason !== undefined && { plaintextReason }),
      origin,
    };
  },
};
