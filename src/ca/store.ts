// Where the CA lives between runs: a directory (mode 0700) of PEM files (mode 0600), replaced as a set
// through a small redo journal so a crash mid-rotation never leaves a certificate beside the wrong key.
// Layout: ca.crt, ca.key, [intermediate.crt, intermediate.key], [previous-ca.crt during a root rotation],
// [trust-domain: for a root that does not name its trust domain, or after a migration].
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import type { CaCertificate, CaHierarchy, CaPem } from './hierarchy.ts';

export const CA_FILES = ['ca.crt', 'ca.key', 'intermediate.crt', 'intermediate.key'] as const;
/** The roots a rotation retired but peers still trust, as concatenated PEM. Certificates only. */
export const PREVIOUS_ROOTS_FILE = 'previous-ca.crt';
const ALL_FILES = [...CA_FILES, PREVIOUS_ROOTS_FILE];
/** The mesh's trust domain, one line, written on its own (a save of the CA set never touches it). */
export const TRUST_DOMAIN_FILE = 'trust-domain';
const JOURNAL = '.commit.json';

export interface StoredCa {
  readonly pem: CaPem;
  readonly previousRootsPem: string;
  /** The `trust-domain` file's contents, trimmed; absent when there is no such file. */
  readonly trustDomain?: string;
}

export interface CaState {
  readonly current: CaHierarchy;
  /** Roots a rotation is retiring: still trusted, never signing (their keys are not kept). */
  readonly previousRoots: readonly CaCertificate[];
}

export interface CaStore {
  /** For messages: a directory, `memory`, or `consul:<prefix>`. */
  readonly location: string;
  /** `undefined` when nothing is stored yet (the CA is then generated). */
  load(): Promise<Result<StoredCa | undefined>>;
  /**
   * Stores a state. A shared store refuses (code CONFLICT) a save over a state it did not load: two
   * replicas that both generate a CA, or both rotate, never overwrite each other.
   */
  save(state: CaState): Promise<Result<void>>;
  /** Records the trust domain durably (the `trust-domain` file). */
  saveTrustDomain(trustDomain: string): Promise<Result<void>>;
  /** Notes for the operator about what was loaded (a key readable by others, say); never fatal. */
  warnings(): Problem[];
}

/**
 * The files a state is written as. Keys are exported here, on the way to their 0600 files (or to be
 * sealed for a shared store), and nowhere else.
 */
export function filesOf(state: CaState): Map<string, string> {
  const { root, intermediate } = state.current;
  const files = new Map<string, string>([['ca.crt', root.pem]]);
  if (root.key) files.set('ca.key', root.key.exportPem());
  if (intermediate) files.set('intermediate.crt', intermediate.pem);
  if (intermediate?.key) files.set('intermediate.key', intermediate.key.exportPem());
  if (state.previousRoots.length > 0)
    files.set(PREVIOUS_ROOTS_FILE, state.previousRoots.map((r) => r.pem).join(''));
  return files;
}

export class FileCaStore implements CaStore {
  constructor(readonly location: string) {}

  async load(): Promise<Result<StoredCa | undefined>> {
    return this.#io('read', () => {
      this.#recover();
      const read = (name: string): string | undefined => {
        const file = path.join(this.location, name);
        return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
      };
      const [crt, key, icrt, ikey] = CA_FILES.map(read);
      if (crt === undefined) {
        const strays = [...ALL_FILES, TRUST_DOMAIN_FILE].filter((n) => read(n) !== undefined);
        if (strays.length === 0) return ok(undefined);
        return fail([
          {
            code: 'CA',
            field: 'ca.crt',
            resource: this.location,
            message: `missing beside ${strays.join(', ')}`,
          },
        ]);
      }
      const pem: CaPem = {
        'ca.crt': crt,
        ...(key !== undefined && { 'ca.key': key }),
        ...(icrt !== undefined && { 'intermediate.crt': icrt }),
        ...(ikey !== undefined && { 'intermediate.key': ikey }),
      };
      const trustDomain = read(TRUST_DOMAIN_FILE)?.trim();
      return ok({
        pem,
        previousRootsPem: read(PREVIOUS_ROOTS_FILE) ?? '',
        ...(trustDomain !== undefined && { trustDomain }),
      });
    });
  }

  async save(state: CaState): Promise<Result<void>> {
    return this.#io('write', () => {
      fs.mkdirSync(this.location, { recursive: true, mode: 0o700 });
      fs.chmodSync(this.location, 0o700);
      const files = filesOf(state);
      for (const [name, contents] of files) writeDurably(path.join(this.location, `${name}.next`), contents);
      const journal = { write: [...files.keys()], remove: ALL_FILES.filter((n) => !files.has(n)) };
      const tmp = path.join(this.location, `${JOURNAL}.tmp`);
      writeDurably(tmp, JSON.stringify(journal));
      fs.renameSync(tmp, path.join(this.location, JOURNAL)); // the commit point
      syncDir(this.location);
      this.#recover();
      return ok(undefined);
    });
  }

  async saveTrustDomain(trustDomain: string): Promise<Result<void>> {
    return this.#io('write', () => {
      const tmp = path.join(this.location, `${TRUST_DOMAIN_FILE}.tmp`);
      writeDurably(tmp, `${trustDomain}\n`);
      fs.renameSync(tmp, path.join(this.location, TRUST_DOMAIN_FILE));
      syncDir(this.location);
      return ok(undefined);
    });
  }

  warnings(): Problem[] {
    return ['ca.key', 'intermediate.key'].flatMap((name): Problem[] => {
      const file = path.join(this.location, name);
      const mode = fs.existsSync(file) ? fs.statSync(file).mode & 0o777 : 0;
      if ((mode & 0o077) === 0) return [];
      const message = `readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); use 0600 or 0400`;
      return [{ code: 'CA', field: name, resource: this.location, message }];
    });
  }

  /** Finishes a committed save (idempotent) or discards an uncommitted one. */
  #recover(): void {
    const journalFile = path.join(this.location, JOURNAL);
    if (!fs.existsSync(journalFile)) {
      // A brought CA may sit on a read-only mount: touch nothing unless there is something to discard.
      for (const n of ALL_FILES) {
        const staged = path.join(this.location, `${n}.next`);
        if (fs.existsSync(staged)) fs.rmSync(staged);
      }
      return;
    }
    const journal = JSON.parse(fs.readFileSync(journalFile, 'utf8')) as { write: string[]; remove: string[] };
    for (const name of journal.write) {
      const next = path.join(this.location, `${name}.next`);
      if (fs.existsSync(next)) fs.renameSync(next, path.join(this.location, name));
    }
    for (const name of journal.remove) fs.rmSync(path.join(this.location, name), { force: true });
    syncDir(this.location);
    fs.rmSync(journalFile);
  }

  #io<T>(verb: string, body: () => Result<T>): Result<T> {
    try {
      return body();
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code ?? 'error';
      return fail([
        { code: 'IO', resource: this.location, message: `cannot ${verb} the CA directory (${reason})` },
      ]);
    }
  }
}

function writeDurably(file: string, contents: string): void {
  fs.rmSync(file, { force: true }); // a leftover with a looser mode must not be reused
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // whatever the umask
    fs.writeFileSync(fd, contents);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * For a CA brought as PEM (a Kubernetes secret mounted as env or read by the caller) and for tests:
 * loads what it was given and keeps nothing; rotations then live as long as the process.
 */
export class MemoryCaStore implements CaStore {
  readonly location = 'memory';
  readonly #initial: StoredCa | undefined;

  constructor(initial?: CaPem) {
    const trustDomain = initial?.['trust-domain']?.trim();
    this.#initial = initial && {
      pem: initial,
      previousRootsPem: initial['previous-ca.crt'] ?? '',
      ...(trustDomain !== undefined && { trustDomain }),
    };
  }

  async load(): Promise<Result<StoredCa | undefined>> {
    return ok(this.#initial);
  }

  async save(): Promise<Result<void>> {
    return ok(undefined);
  }

  async saveTrustDomain(): Promise<Result<void>> {
    return ok(undefined);
  }

  warnings(): Problem[] {
    return [];
  }
}
