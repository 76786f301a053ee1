// `clinimesh bootstrap`: everything one sidecar needs to start. With --out-dir it makes the
// sidecar's key pair locally, has the control plane's CA sign its public key (admin API), and
// writes envoy.json plus the credential files (key 0600). --insecure prints a plaintext bootstrap
// for a control plane started with --xds-insecure.
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { envoyBootstrap, type BootstrapOptions } from '../bootstrap/envoy-bootstrap.ts';
import type { BootstrapCredential } from '../control/bootstrap-credential.ts';
import { nodeId } from '../control/node-id.ts';

export const usage = `clinimesh bootstrap --service NAME --instance NAME [--namespace default] [--transport ads|rest]
  --out-dir DIR [--admin http://127.0.0.1:19000]     (mutual TLS: key made here, certificate from the CA)
  | --insecure [--format json|yaml]                  (plaintext, for a control plane run with --xds-insecure)
  [--xds-host 127.0.0.1] [--xds-port 18000 (ads) | 18001 (rest)] [--admin-port 15000] [--audit-log PATH]`;

async function fetchCredential(admin: string, namespace: string, service: string, publicKeyPem: string): Promise<BootstrapCredential | string> {
  const res = await fetch(`${admin}/v1/bootstrap-credentials`, { method: 'POST', body: JSON.stringify({ namespace, service, publicKeyPem }) });
  const json = (await res.json()) as BootstrapCredential & { errors?: Array<{ text?: string; message: string }> };
  if (!res.ok) return (json.errors ?? []).map((e) => e.text ?? e.message).join('\n') || `HTTP ${res.status}`;
  return json;
}

export async function bootstrapCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      service: { type: 'string' },
      instance: { type: 'string' },
      namespace: { type: 'string', default: 'default' },
      transport: { type: 'string', default: 'ads' },
      'xds-host': { type: 'string', default: '127.0.0.1' },
      'xds-port': { type: 'string' },
      'admin-port': { type: 'string', default: '15000' },
      admin: { type: 'string', default: process.env.CLINIMESH_ADMIN ?? 'http://127.0.0.1:19000' },
      'out-dir': { type: 'string' },
      insecure: { type: 'boolean', default: false },
      'audit-log': { type: 'string' },
      format: { type: 'string', default: 'json' },
    },
  });
  const transport = values.transport;
  if (!values.service || !values.instance || (transport !== 'ads' && transport !== 'rest') || (!values['out-dir'] && !values.insecure)) {
    console.error(usage);
    return 2;
  }
  const options: BootstrapOptions = {
    nodeId: nodeId({ namespace: values.namespace, service: values.service, instance: values.instance }),
    cluster: values.service,
    xdsHost: values['xds-host'],
    xdsPort: Number(values['xds-port'] ?? (transport === 'ads' ? 18000 : 18001)),
    transport,
    adminPort: Number(values['admin-port']),
    metadata: values['audit-log'] ? { 'clinimesh.audit_log': values['audit-log'] } : {},
  };
  if (values.insecure) {
    const bootstrap = envoyBootstrap(options);
    process.stdout.write(values.format === 'yaml' ? stringify(bootstrap) : `${JSON.stringify(bootstrap, null, 2)}\n`);
    return 0;
  }
  const dir = resolve(values['out-dir']!);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const credential = await fetchCredential(values.admin, values.namespace, values.service, publicKey.export({ type: 'spki', format: 'pem' }).toString());
  if (typeof credential === 'string') {
    console.error(credential);
    return 1;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = { certFile: join(dir, 'xds-client.crt'), keyFile: join(dir, 'xds-client.key'), caFile: join(dir, 'xds-ca.crt') };
  await writeFile(files.keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
  await writeFile(files.certFile, credential.certChainPem);
  await writeFile(files.caFile, credential.trustBundlePem);
  const bootstrap = envoyBootstrap({ ...options, tls: { ...files, serverSpiffeId: credential.serverSpiffeId } });
  await writeFile(join(dir, 'envoy.json'), `${JSON.stringify(bootstrap, null, 2)}\n`);
  console.log(`${join(dir, 'envoy.json')} (credential valid until ${credential.notAfter})`);
  return 0;
}
