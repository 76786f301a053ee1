// The value rules manifests share: names, addresses, ports and durations. Names end up in Envoy
// resource names and SPIFFE IDs, addresses in socket binds, so each is checked as strictly as the
// place it lands requires.
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { isScalar } from 'yaml';
import { intIn, stringWhere, str, type Reader } from './yaml-reader.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

/** DNS-1123 label: what Kubernetes accepts as a name, and safe inside `his.clinical|http`. */
export const dnsLabel: Reader<string> = stringWhere(
  isDnsLabel,
  'a DNS-1123 label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)',
);

/** Dot-separated DNS labels, e.g. a SPIFFE trust domain `hospital.local`. */
export const dnsName: Reader<string> = stringWhere(
  (s) => s.length <= 253 && s.split('.').every(isDnsLabel),
  'a DNS name (lowercase labels separated by ".", e.g. "hospital.local")',
);

/** An IPv4 or IPv6 literal: what a listener can bind. */
export const ipAddress: Reader<string> = stringWhere((s) => isIP(s) !== 0, 'an IPv4 or IPv6 address');

const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;

/** An IP literal or a hostname; an all-digit last label (`127.0.0.300`) is a broken IP, not a name. */
export function isHostOrIp(s: string): boolean {
  if (isIP(s) !== 0) return true;
  const labels = s.split('.');
  return (
    s.length <= 253 &&
    labels.every((l) => l.length <= 63 && HOST_LABEL.test(l)) &&
    !/^\d+$/.test(labels.at(-1) ?? '')
  );
}

export const hostOrIp: Reader<string> = stringWhere(isHostOrIp, 'an IPv4/IPv6 address or a hostname');

/** An absolute POSIX path, e.g. where a sidecar writes a log (`/dev/stdout`, `/var/log/audit.log`). */
export const absolutePath: Reader<string> = stringWhere(
  (s) => posix.isAbsolute(s) && !s.includes('\0'),
  'an absolute path (starting with "/", e.g. "/var/log/clinimesh/audit.log")',
);

export const portNumber: Reader<number> = intIn(1, 65535);

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(?:\d+(?:ms|s|m|h))+$/;
const DURATION_PART = /(\d+)(ms|s|m|h)/g;

/** `250ms`, `2s`, `1m30s` → milliseconds. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART))
    ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** A duration in milliseconds; a bare number is refused because its unit would be a guess. */
export function duration(opts: { readonly allowZero: boolean }): Reader<number> {
  const rule = `a duration such as "250ms", "2s" or "1m"${opts.allowZero ? ' ("0s" to disable)' : ''}`;
  return (r, node, path) => {
    if (isScalar(node) && typeof node.value === 'number') {
      r.report(node, path, `expected ${rule}, got a number without a unit`);
      return undefined;
    }
    const text = str(r, node, path);
    if (text === undefined) return undefined;
    const ms = parseDuration(text);
    if (ms === undefined) r.report(node, path, `${JSON.stringify(text)} is not ${rule}`);
    else if (ms === 0 && !opts.allowZero) r.report(node, path, 'must be greater than zero');
    else return ms;
    return undefined;
  };
}
