// `clinimesh agent`: the node agent beside one Envoy. It attests the workload, keeps its keys here,
// writes Envoy's bootstrap and secret files into --out-dir, and renews them until stopped.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { startAgent } from '../agent/agent.ts';
import { parseAddresses } from '../agent/control-plane-addresses.ts';
import { startAgentStatusServer } from '../agent/status-server.ts';
import { applyLogLevel } from './log-level.ts';
import { ClinimeshError, formatProblem } from '../errors.ts';
import type { Evidence } from '../identity/attestation.ts';
import { CommandError, UsageError, parseCommandLine, portOption } from './cli-support.ts';

function seconds(text: string | undefined, fallback: number): number {
  if (!text) return fallback;
  const m = /^(\d+)(ms|s|m)?$/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
}

export async function agentCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    'control-plane': { type: 'string', multiple: true },
    'out-dir': { type: 'string' },
    'join-token': { type: 'string', default: process.env.CLINIMESH_JOIN_TOKEN },
    'join-token-file': { type: 'string' },
    'k8s-token-file': { type: 'string' },
    instance: { type: 'string' },
    'ca-file': { type: 'string' },
    transport: { type: 'string', default: 'ads' },
    'xds-address': { type: 'string', multiple: true },
    'envoy-admin-port': { type: 'string', default: '15000' },
    'audit-log': { type: 'string' },
    'bundle-poll': { type: 'string' },
    proxyless: { type: 'boolean', default: false },
    'xds-proxy-port': { type: 'string', default: '15010' },
    'status-port': { type: 'string' },
    'log-level': { type: 'string' },
  });
  const badLevel = applyLogLevel(values['log-level']);
  if (badLevel) throw new UsageError(badLevel);
  const statusPort =
    values['status-port'] === undefined ? undefined : portOption('status-port', values['status-port']);
  const proxyPort = portOption('xds-proxy-port', values['xds-proxy-port']);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const transport = values.transport;
  const pollMs = seconds(values['bundle-poll'], 30_000);
  const evidenceFlags = [values['join-token'], values['join-token-file'], values['k8s-token-file']].filter(
    Boolean,
  ).length;
  // Repeated flags, `a:1,b:2`, or $CLINIMESH_CONTROL_PLANE in either form: every replica.
  const controlPlanes = parseAddresses(values['control-plane'] ?? process.env.CLINIMESH_CONTROL_PLANE ?? []);
  if (controlPlanes.length === 0)
    throw new UsageError('--control-plane HOST:PORT is required (or $CLINIMESH_CONTROL_PLANE)');
  if (!values['out-dir']) throw new UsageError('--out-dir DIR is required');
  if (evidenceFlags !== 1)
    throw new UsageError('give exactly one of --join-token, --join-token-file, --k8s-token-file');
  if (transport !== 'ads' && transport !== 'rest' && transport !== 'delta')
    throw new UsageError(`--transport ${transport}: ads, rest or delta`);
  if (!(pollMs > 0)) throw new UsageError(`--bundle-poll ${values['bundle-poll']}: a duration such as 30s`);
  const adminPort = portOption('envoy-admin-port', values['envoy-admin-port']);
  const read = (file: string) => readFileSync(file, 'utf8').trim();
  // Files are read again at each attestation: kubelet rotates projected tokens.
  const evidence = (): Evidence | undefined => {
    if (values['k8s-token-file']) return { kubernetesToken: read(values['k8s-token-file']) };
    if (values['join-token-file']) return { joinToken: read(values['join-token-file']) };
    return values['join-token'] ? { joinToken: values['join-token'] } : undefined;
  };
  try {
    const agent = await startAgent({
      controlPlane: controlPlanes,
      evidence,
      caPem: values['ca-file'] ? readFileSync(values['ca-file'], 'utf8') : undefined,
      instance:
        values.instance ?? process.env.POD_NAME ?? (values['k8s-token-file'] ? hostname() : undefined),
      outDir: values['out-dir'],
      transport,
      xdsAddress: values['xds-address'],
      envoyAdminPort: adminPort,
      auditLog: values['audit-log'],
      bundlePollMs: pollMs,
      ...(values.proxyless && { proxyless: { xdsProxyPort: proxyPort } }),
    });
    // Probes on 127.0.0.1 only: GET /healthz and /status.
    if (statusPort !== undefined) await startAgentStatusServer(() => agent.status(), statusPort);
    process.on('SIGHUP', () => void agent.renewNow());
    const stop = () => {
      agent.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Keep running: renewals are timers the agent unrefs.
    setInterval(() => undefined, 1 << 30);
    return 0;
  } catch (e) {
    if (e instanceof ClinimeshError) {
      for (const p of e.problems) console.error(formatProblem(p));
      return 1;
    }
    throw new CommandError((e as Error).message);
  }
}
