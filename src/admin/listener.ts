// The admin API's own HTTPS listener (default 127.0.0.1:19000, apart from xDS): serves with the
// control plane's certificate and follows its rotation without a restart; opens the token store and
// history from the store backend (or the data dir); makes the bootstrap admin credential on first start.
import type { Server } from 'node:https';
import { ok, type Result } from '../errors.ts';
import type { HistoryLog, RecordSet } from '../store/backend.ts';
import { AdminCredentialFile, type AdminCredential } from './credential.ts';
import type { AdminDeps } from './deps.ts';
import { History } from './history.ts';
import { createAdminServer } from './http.ts';
import { TokenStore } from './tokens.ts';

/** The control plane's serving identity (ControlPlaneIdentity), as far as the admin listener uses it. */
export interface ServingIdentity {
  current(): {
    readonly certChainPem: string;
    readonly privateKeyPem: string;
    readonly trustBundlePem: string;
  };
  onChange(
    listener: (tls: {
      readonly certChainPem: string;
      readonly privateKeyPem: string;
      readonly trustBundlePem: string;
    }) => void,
  ): void;
}

export interface AdminListenerOptions {
  readonly deps: Omit<AdminDeps, 'tokens' | 'history' | 'allowedHosts' | 'metricsPublic'>;
  readonly identity: ServingIdentity;
  readonly host: string;
  readonly port: number;
  readonly dataDir?: string;
  /** The store backend's operator tokens and history (shared by replicas); default: in `dataDir`. */
  readonly store?: { readonly tokens: RecordSet; readonly history: HistoryLog };
  readonly allowedHosts?: readonly string[];
  readonly metricsPublic?: boolean;
}

export interface AdminListener {
  readonly port: number;
  /** `https://host:port`; a wildcard bind is reached at 127.0.0.1. */
  readonly url: string;
  /** The bootstrap admin credential, when this start made it or found it (valid) in the data dir. */
  readonly credential: () => AdminCredential | undefined;
  readonly credentialPath: string | undefined;
  readonly tokens: TokenStore;
  readonly history: History;
  close(): Promise<void>;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

export async function startAdminListener(o: AdminListenerOptions): Promise<Result<AdminListener>> {
  const tokens = await TokenStore.open(o.store?.tokens ?? o.dataDir);
  if (!tokens.ok) return tokens;
  const history = await History.open(o.store?.history ?? o.dataDir);
  if (!history.ok) return history;
  const deps: AdminDeps = {
    ...o.deps,
    tokens: tokens.value,
    history: history.value,
    allowedHosts: o.allowedHosts ?? [],
    metricsPublic: o.metricsPublic ?? false,
  };
  const server = createAdminServer(deps, o.identity.current());
  const port = await listen(server, o.port, o.host);
  const url = `https://${urlHost(o.host)}:${port}`;
  const credential = await AdminCredentialFile.ensure({
    dataDir: o.dataDir,
    tokens: tokens.value,
    history: history.value,
    server: url,
    caPem: o.identity.current().trustBundlePem,
  });
  if (!credential.ok) {
    server.close();
    return credential;
  }
  o.identity.onChange((tls) => {
    server.setSecureContext({ cert: tls.certChainPem, key: tls.privateKeyPem, minVersion: 'TLSv1.2' });
    void credential.value?.updateCaPem(tls.trustBundlePem);
  });
  return ok({
    port,
    url,
    credential: () => credential.value?.current,
    credentialPath: credential.value?.path,
    tokens: tokens.value,
    history: history.value,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      tokens.value.close();
      await closed;
    },
  });
}
