// Every golden file is a configuration real Envoy accepts: each is loaded as a whole static config
// (its listeners and clusters, with an ADS cluster for the SDS and EDS sources they name) and checked
// offline with `envoy --mode validate`. PGV rules catch a bad field; only Envoy catches a filter
// combination it refuses (an HCM without CONNECT support behind a tunnel, an unknown log option).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { describeWithEnvoy, envoyBin } from '../helpers/envoy.ts';
import { makeTestCa } from '../helpers/partner-tls.ts';

const GOLDEN = 'test/golden';
const run = promisify(execFile);

interface Golden {
  CDS: unknown[];
  LDS: unknown[];
}

const XDS_CLUSTER = {
  name: 'clinimesh-xds',
  type: 'STATIC',
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
  load_assignment: {
    cluster_name: 'clinimesh-xds',
    endpoints: [
      {
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } },
        ],
      },
    ],
  },
};

async function goldenFiles(): Promise<string[]> {
  const cases = await readdir(GOLDEN);
  const files = await Promise.all(
    cases.map(async (c) =>
      (await readdir(join(GOLDEN, c)))
        .filter((f) => f.endsWith('.golden.yaml'))
        .map((f) => join(GOLDEN, c, f)),
    ),
  );
  return files.flat().sort();
}

describeWithEnvoy('golden files pass envoy --mode validate', () => {
  let dir: string;
  let files: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-validate-'));
    // The paths the goldens name must exist for validation: the audit log's directory, the SDS file.
    await mkdir(join(dir, 'log'));
    await mkdir(join(dir, 'sds'));
    await writeFile(join(dir, 'sds', 'default.json'), '{"resources":[]}');
    // An ExternalService's CA file (egress TLS origination) is read by Envoy: a real CA, made now.
    await mkdir(join(dir, 'partner'));
    await makeTestCa(join(dir, 'partner'), 'partner');
    files = await goldenFiles();
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('accepts every golden file as a whole configuration', async () => {
    expect(files.length).toBeGreaterThan(0);
    const refused: string[] = [];
    for (const file of files) {
      const text = (await readFile(file, 'utf8'))
        .replaceAll('/var/log/clinimesh', join(dir, 'log'))
        .replaceAll('/var/run/clinimesh/sds', join(dir, 'sds'))
        .replaceAll('/etc/clinimesh/partner-ca.pem', join(dir, 'partner', 'partner-ca.pem'))
        // Node gives a child sockets, not pipes, for stdio; Envoy cannot open those by path.
        .replaceAll('/dev/stdout', join(dir, 'log', 'stdout'));
      const golden = parse(text) as Golden;
      const config = join(dir, 'config.yaml');
      await writeFile(
        config,
        stringify({
          node: { id: 'validate', cluster: 'validate' },
          dynamic_resources: {
            ads_config: {
              api_type: 'GRPC',
              transport_api_version: 'V3',
              grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER.name } }],
            },
          },
          static_resources: { listeners: golden.LDS, clusters: [...golden.CDS, XDS_CLUSTER] },
        }),
      );
      await run(envoyBin!, ['--mode', 'validate', '-c', config, '--use-dynamic-base-id'], {
        timeout: 60_000,
      }).catch((e: { stdout?: string; stderr?: string }) => {
        const why = `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').filter((l) => /error|critical/i.test(l));
        refused.push(`${file}: ${why.slice(0, 3).join(' | ')}`);
      });
    }
    expect(refused).toEqual([]);
  }, 300_000);
});
