// The CA in Consul KV, shared by every replica (`--store consul`). Certificates are stored as they
// are; the private keys only sealed (src/ca/sealed-keys.ts) with the key-encryption key each
// replica reads from `--ca-kek-file`. Writes are check-and-set on what was loaded, so two replicas
// that both make a CA on an empty store, or both rotate, never overwrite each other: the second
// gets a CONFLICT and loads the first's.
// Layout under the prefix: `ca/hierarchy` (JSON: certificates + sealed keys), `ca/trust-domain`.
import { createHash } from 'node:crypto';
import type { CaPem } from '../ca/hierarchy.ts';
import { isSealedBox, seal, unseal, type Kek, type SealedBox } from '../ca/sealed-keys.ts';
import { filesOf, PREVIOUS_ROOTS_FILE, type CaState, type CaStore, type StoredCa } from '../ca/store.ts';
import { fail, ok, type Problem, type Result } from '../errors.ts';

/** The part of the Consul KV client (`ConsulKv`) this store uses. */
export interface CaKv {
  get(
    key: string,
    o?: { consistent?: boolean },
  ): Promise<Result<{ value: { value: Buffer; modifyIndex: bigint } | undefined; index: bigint }>>;
  put(key: string, value: Buffer | string, o?: { cas?: bigint }): Promise<Result<boolean>>;
}

const FORMAT = 1;
const CERT_FILES = ['ca.crt', 'intermediate.crt', PREVIOUS_ROOTS_FILE] as const;
const KEY_FILES = ['ca.key', 'intermediate.key'] as const;

interface HierarchyDoc {
  readonly format: number;
  readonly certificates: Partial<Record<(typeof CERT_FILES)[number], string>>;
  /** JSON of `{ 'ca.key'?, 'intermediate.key'? }`, sealed. */
  readonly keys: SealedBox;
}

export const caKeys = (prefix: string) => ({
  hierarchy: `${prefix}/ca/hierarchy`,
  trustDomain: `${prefix}/ca/trust-domain`,
});

export class ConsulCaStore implements CaStore {
  readonly location: string;
  readonly #keys: ReturnType<typeof caKeys>;
  /** ModifyIndex of the hierarchy as last loaded or saved; 0: none (a save then creates it). */
  #index = 0n;

  constructor(
    private readonly kv: CaKv,
    prefix: string,
    private readonly kek: Kek,
  ) {
    this.#keys = caKeys(prefix);
    this.location = `consul:${this.#keys.hierarchy}`;
  }

  /** The ModifyIndex the CA was last read or written at (a watcher compares it with what it sees). */
  get index(): bigint {
    return this.#index;
  }

  async load(): Promise<Result<StoredCa | undefined>> {
    const [hierarchy, domain] = await Promise.all([
      this.kv.get(this.#keys.hierarchy, { consistent: true }),
      this.kv.get(this.#keys.trustDomain, { consistent: true }),
    ]);
    if (!hierarchy.ok) return hierarchy;
    if (!domain.ok) return domain;
    const entry = hierarchy.value.value;
    const trustDomain = domain.value.value?.value.toString('utf8').trim();
    if (!entry) {
      this.#index = 0n;
      return ok(undefined);
    }
    const pem = this.#open(entry.value);
    if (!pem.ok) return pem;
    this.#index = entry.modifyIndex;
    const { [PREVIOUS_ROOTS_FILE]: previous, ...files } = pem.value;
    const current: CaPem = { ...files, 'ca.crt': pem.value['ca.crt']! };
    return ok({
      pem: current,
      previousRootsPem: previous ?? '',
      ...(trustDomain && { trustDomain }),
    });
  }

  async save(state: CaState): Promise<Result<void>> {
    const files = filesOf(state);
    const certificates = Object.fromEntries(
      CERT_FILES.flatMap((f) => (files.has(f) ? [[f, files.get(f)!]] : [])),
    );
    const keys = Object.fromEntries(KEY_FILES.flatMap((f) => (files.has(f) ? [[f, files.get(f)!]] : [])));
    const plain = Buffer.from(JSON.stringify(keys));
    const doc: HierarchyDoc = {
      format: FORMAT,
      certificates,
      keys: seal(plain, this.kek, this.#aad(certificates['ca.crt'] ?? '')),
    };
    plain.fill(0);
    const text = JSON.stringify(doc);
    const put = await this.kv.put(this.#keys.hierarchy, text, { cas: this.#index });
    if (!put.ok) return put;
    if (!put.value)
      return fail([
        {
          code: 'CONFLICT',
          resource: this.location,
          message: 'another replica changed the CA meanwhile: reload it and try again',
        },
      ]);
    const after = await this.kv.get(this.#keys.hierarchy, { consistent: true });
    if (after.ok && after.value.value?.value.toString('utf8') === text)
      this.#index = after.value.value.modifyIndex;
    return ok(undefined);
  }

  async saveTrustDomain(trustDomain: string): Promise<Result<void>> {
    const put = await this.kv.put(this.#keys.trustDomain, `${trustDomain}\n`);
    return put.ok ? ok(undefined) : put;
  }

  warnings(): Problem[] {
    return [];
  }

  #aad(rootPem: string): string {
    return `${this.#keys.hierarchy}\n${createHash('sha256').update(rootPem).digest('hex')}`;
  }

  /** The stored document as CA files, the keys unsealed. */
  #open(bytes: Buffer): Result<Record<string, string>> {
    const bad = (message: string): Result<never> =>
      fail([{ code: 'CA', field: 'ca/hierarchy', resource: this.location, message }]);
    let doc: Partial<HierarchyDoc>;
    try {
      doc = JSON.parse(bytes.toString('utf8')) as Partial<HierarchyDoc>;
    } catch {
      return bad('is not JSON');
    }
    if (doc.format !== FORMAT) return bad(`has format ${String(doc.format)}; this clinimesh reads ${FORMAT}`);
    const certificates = doc.certificates ?? {};
    if (typeof certificates['ca.crt'] !== 'string') return bad('has no ca.crt');
    if (!isSealedBox(doc.keys)) return bad('has no sealed keys');
    const opened = unseal(doc.keys, this.kek, this.#aad(certificates['ca.crt']), this.location);
    if (!opened.ok) return opened;
    let keys: Record<string, unknown>;
    try {
      keys = JSON.parse(opened.value.toString('utf8')) as Record<string, unknown>;
    } finally {
      opened.value.fill(0);
    }
    const pems: Record<string, string> = {};
    for (const [name, value] of Object.entries({ ...certificates, ...keys }))
      if (typeof value === 'string') pems[name] = value;
    return ok(pems);
  }
}
