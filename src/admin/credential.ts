// The bootstrap admin credential: on first start (no tokens yet) an admin token is made and
// written, with the admin URL and the CA bundle to trust, to `<data-dir>/admin-credential.json`
// (0600). It is never logged; `serve` prints only the file's path. Later starts pick the file up
// again (while its token is still valid) and keep its server and CA current.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, ok, type Result } from '../errors.ts';
import { SerialWriter, writeFileDurably } from '../store/durable-file.ts';
import type { History } from './history.ts';
import type { Principal, TokenStore } from './tokens.ts';

export interface AdminCredential {
  /** `https://host:port` of the admin API. */
  readonly server: string;
  /** An admin bearer token. */
  readonly token: string;
  /** The trust bundle (PEM) that signs the admin API's serving certificate. */
  readonly caPem: string;
}

export const CREDENTIAL_FILE = 'admin-credential.json';

const FIRST_START: Principal = {
  tokenId: '-',
  name: 'clinimesh serve (first start)',
  role: 'admin',
  namespaces: [],
};

function parseCredential(text: string): AdminCredential | undefined {
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    const { server, token, caPem } = json;
    return typeof server === 'string' && typeof token === 'string' && typeof caPem === 'string'
      ? { server, token, caPem }
      : undefined;
  } catch {
    return undefined;
  }
}

export class AdminCredentialFile {
  private readonly writer = new SerialWriter();

  private constructor(
    private credential: AdminCredential,
    readonly path: string | undefined,
  ) {}

  get current(): AdminCredential {
    return this.credential;
  }

  /**
   * The credential for this start: a new admin token when there are no tokens at all; else the one in
   * the data dir if its token still works; else none (the operator removed or revoked it).
   */
  static async ensure(o: {
    dataDir?: string;
    tokens: TokenStore;
    history: History;
    server: string;
    caPem: string;
  }): Promise<Result<AdminCredentialFile | undefined>> {
    const path = o.dataDir ? join(o.dataDir, CREDENTIAL_FILE) : undefined;
    if (o.tokens.size === 0) {
      const created = await o.tokens.create({
        name: 'bootstrap-admin',
        role: 'admin',
        namespaces: [],
        createdBy: FIRST_START.name,
      });
      if (!created.ok) return created;
      await o.history.record(FIRST_START, {
        action: 'token-create',
        revision: 0,
        touched: [`token ${created.value.info.id}`],
        detail: { name: 'bootstrap-admin', role: 'admin' },
      });
      return AdminCredentialFile.written(
        new AdminCredentialFile({ server: o.server, token: created.value.token, caPem: o.caPem }, path),
      );
    }
    if (!path) return ok(undefined);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return ok(undefined);
    }
    const found = parseCredential(text);
    if (!found || !o.tokens.authenticate(found.token)) return ok(undefined);
    return AdminCredentialFile.written(
      new AdminCredentialFile({ ...found, server: o.server, caPem: o.caPem }, path),
    );
  }

  private static async written(file: AdminCredentialFile): Promise<Result<AdminCredentialFile>> {
    const saved = await file.save();
    return saved.ok ? ok(file) : saved;
  }

  /** A new trust bundle (root rotation begin/complete) goes into the file. */
  async updateCaPem(caPem: string): Promise<Result<void>> {
    if (caPem === this.credential.caPem) return ok(undefined);
    this.credential = { ...this.credential, caPem };
    return this.save();
  }

  private save(): Promise<Result<void>> {
    const { path } = this;
    if (!path) return Promise.resolve(ok(undefined));
    const text = `${JSON.stringify(this.credential, null, 2)}\n`;
    return this.writer.run(async () => {
      try {
        await writeFileDurably(path, text);
        return ok(undefined);
      } catch (e) {
        return fail([
          {
            code: 'IO',
            resource: path,
            message: `cannot write the admin credential: ${(e as Error).message}`,
          },
        ]);
      }
    });
  }
}
