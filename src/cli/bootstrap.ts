// `clinimesh bootstrap`: print the Envoy bootstrap for one sidecar (offline; no server needed).
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { envoyBootstrap } from '../bootstrap/envoy-bootstrap.ts';
import { nodeId } from '../control/node-id.ts';

export const usage = `clinimesh bootstrap --service NAME --instance NAME [--namespace default] [--transport ads|rest]
  [--xds-host 127.0.0.1] [--xds-port 18000 (ads) | 18001 (rest)] [--admin-port 15000] [--format json|yaml]`;

export function bootstrapCommand(args: string[]): number {
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
      format: { type: 'string', default: 'json' },
    },
  });
  if (!values.service || !values.instance || (values.transport !== 'ads' && values.transport !== 'rest')) {
    console.error(usage);
    return 2;
  }
  const transport = values.transport;
  const bootstrap = envoyBootstrap({
    nodeId: nodeId({ namespace: values.namespace, service: values.service, instance: values.instance }),
    cluster: values.service,
    xdsHost: values['xds-host'],
    xdsPort: Number(values['xds-port'] ?? (transport === 'ads' ? 18000 : 18001)),
    transport,
    adminPort: Number(values['admin-port']),
  });
  process.stdout.write(values.format === 'yaml' ? stringify(bootstrap) : `${JSON.stringify(bootstrap, null, 2)}\n`);
  return 0;
}
