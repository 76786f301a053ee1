// Opening a CA: the options checked and defaulted, the stored state read back (strictly: a damaged
// file is an error, never skipped), and the trust domain the CA was made for.
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { parseCaPem, type CaCertificate } from './hierarchy.ts';
import { KEY_TYPES, type KeyType } from './keys.ts';
import { trustDomainOfRoot, trustDomainProblems } from './spiffe.ts';
import { PREVIOUS_ROOTS_FILE, TRUST_DOMAIN_FILE, type CaState, type StoredCa } from './store.ts';
import { readCertificate, readPemCertificates } from './x509.ts';

const HOUR = 3_600_000;

export interface StartOptions {
  /**
   * The mesh's trust domain. A new CA's root is made for it; an existing CA must have been made for it
   * (or migrated to it with `migrateTrustDomain`), else `open` fails.
   */
  readonly trustDomain: string;
  /**
   * Generate a CA when the directory holds none (default true). The control plane passes false once the
   * mesh has state, so a lost CA directory is an error rather than a silent new root.
   */
  readonly create?: boolean;
  /** For keys clinimesh makes itself: its root/intermediate and the control plane's own identity. */
  readonly keyType?: KeyType;
  readonly workloadTtlMs?: number;
  readonly rootTtlMs?: number;
  /** Generate an intermediate under the root (a loaded hierarchy is used as it is). */
  readonly intermediate?: boolean;
  readonly now?: () => Date;
}

export interface Settings {
  readonly trustDomain: string;
  readonly create: boolean;
  readonly keyType: KeyType;
  readonly workloadTtlMs: number;
  readonly rootTtlMs: number;
  readonly intermediate: boolean;
  readonly now: () => Date;
}

export function resolveSettings(opts: StartOptions): Result<Settings> {
  const problems = trustDomainProblems(opts.trustDomain);
  const keyType = opts.keyType ?? 'ecdsa-p256';
  if (!KEY_TYPES.includes(keyType))
    problems.push({ code: 'CA', field: 'keyType', message: `unknown key type "${keyType}"` });
  const workloadTtlMs = opts.workloadTtlMs ?? 24 * HOUR;
  const rootTtlMs = opts.rootTtlMs ?? 10 * 365 * 24 * HOUR;
  for (const [field, ms] of [
    ['workloadTtlMs', workloadTtlMs],
    ['rootTtlMs', rootTtlMs],
  ] as const) {
    // X.509 times have whole seconds; tests use lifetimes of seconds to watch rotation happen.
    if (!(ms >= 1000))
      problems.push({ code: 'CA', field, message: `must be at least one second, got ${ms}` });
  }
  if (problems.length > 0) return fail(problems);
  const now = opts.now ?? (() => new Date());
  return ok({
    trustDomain: opts.trustDomain,
    create: opts.create ?? true,
    keyType,
    workloadTtlMs,
    rootTtlMs,
    intermediate: opts.intermediate ?? false,
    now,
  });
}

/** The stored hierarchy and the retiring roots, every one of which must parse. */
export function loadState(stored: StoredCa, now: Date, location: string): Result<CaState> {
  const current = parseCaPem(stored.pem, now, location);
  if (!current.ok) return current;
  const at = (problems: readonly Problem[]): Result<never> =>
    fail(problems.map((p) => ({ ...p, resource: location })));
  const blocks = readPemCertificates(stored.previousRootsPem, PREVIOUS_ROOTS_FILE);
  if (!blocks.ok) return at(blocks.errors);
  const previousRoots: CaCertificate[] = [];
  for (const pem of blocks.value) {
    const facts = readCertificate(pem, PREVIOUS_ROOTS_FILE);
    if (!facts.ok) return at(facts.errors);
    if (facts.value.notAfter > now)
      previousRoots.push({ pem: facts.value.x509.toString(), facts: facts.value });
  }
  return ok({ current: current.value, previousRoots });
}

/**
 * The trust domain a stored CA belongs to: the `trust-domain` file (a brought root's, or a migration's),
 * else the `spiffe://<trust-domain>` URI SAN of a root clinimesh made; undefined when neither says.
 */
export function recordedTrustDomain(
  stored: StoredCa,
  root: CaCertificate,
  location: string,
): Result<string | undefined> {
  if (stored.trustDomain === undefined) return ok(trustDomainOfRoot(root.facts.uriSans));
  const problems = trustDomainProblems(stored.trustDomain);
  if (problems.length === 0) return ok(stored.trustDomain);
  return fail(problems.map((p) => ({ ...p, field: TRUST_DOMAIN_FILE, resource: location })));
}

export const trustDomainMismatch = (recorded: string, asked: string, location: string): Result<never> =>
  fail([
    {
      code: 'CA',
      field: 'trustDomain',
      resource: location,
      message:
        `the CA was made for trust domain "${recorded}", but "${asked}" was asked for: changing the ` +
        'trust domain is an explicit migration (migrateTrustDomain), not a restart with another value',
    },
  ]);

export const missingCa = (location: string): Result<never> =>
  fail([
    {
      code: 'CA',
      field: 'ca.crt',
      resource: location,
      message:
        `no CA in ${location} but the mesh already has state: restore the CA (ca.crt/ca.key) or start ` +
        'with --new-ca to create a new root (every workload must then be re-attested)',
    },
  ]);

/** A brought CA whose directory is read-only: it runs, but a later start with another trust domain is not caught. */
export const unpinnedNote = (trustDomain: string, location: string): Problem => ({
  code: 'CA',
  field: TRUST_DOMAIN_FILE,
  resource: location,
  message:
    `cannot record the trust domain beside this CA (read-only?): add a ${TRUST_DOMAIN_FILE} file or ` +
    `secret key holding "${trustDomain}" so that a start with another trust domain is refused`,
});
