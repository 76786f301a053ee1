// Egress to ExternalServices: what a caller's sidecar gets for a partner it lists (a listener on its
// local port, a cluster of the partner's endpoints that originates verified TLS, the caller-side
// audit line), that a service listing none gets nothing for it, that every resource passes Envoy's
// PGV rules, and that an edit of an ExternalService re-plans its callers' sidecars only.
import { describe, expect, it } from 'vitest';
import { parseManifestText, type ExternalService } from '../../../src/manifest/index.ts';
import { StateStore } from '../../../src/store/store.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { generateExternalCluster, SYSTEM_ROOTS_FILE } from '../../../src/xds/generate/external.ts';
import { generateSidecar, type MeshView, type SidecarResources } from '../../../src/xds/generate/index.ts';
import { prepareResource } from '../../../src/xds/resources/prepared.ts';
import { CLUSTER, LISTENER, type TypeUrl } from '../../../src/xds/resources/type-urls.ts';
import { ControlPlane } from '../../../src/xds/plan/control-plane.ts';
import { Reconciler } from '../../../src/xds/plan/reconciler.ts';
import { checkInPlace } from '../../../src/xds/plan/set-check.ts';
import { meshViewOfText } from '../../helpers/mesh-view.ts';
import { valueOf } from '../manifest/helpers.ts';

const EXTERNALS = `apiVersion: clinimesh.io/v1alpha1
kind: ExternalService
metadata: { name: reference-lab, namespace: clinical }
spec:
  endpoints: [{ address: lab.example.org, port: 443 }]
  protocol: http
  tls: { mode: ORIGINATE, caFile: /etc/clinimesh/partner-ca.pem }
---
apiVersion: clinimesh.io/v1alpha1
kind: ExternalService
metadata: { name: eprescribing, namespace: clinical }
spec:
  endpoints: [{ address: 192.0.2.10, port: 8443 }, { address: 192.0.2.11, port: 8443 }]
  protocol: grpc
  tls: { mode: ORIGINATE, subjectAltNames: [erx.gateway.example, 192.0.2.10] }
`;

const SERVICES = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: emr, namespace: clinical }
spec:
  ports: [{ name: http, port: 15011, targetPort: 8080, protocol: http }]
  instances: [{ name: emr-1, address: 127.0.0.21, appAddress: 127.0.0.21 }]
  upstreams:
    - { external: reference-lab, localPort: 9101 }
    - { external: eprescribing, localPort: 9102 }
---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: his, namespace: clinical }
spec:
  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]
  instances: [{ name: his-1, address: 127.0.0.11, appAddress: 127.0.0.11 }]
`;

const EMR_NODE = 'clinical/emr/emr-1';
const HIS_NODE = 'clinical/his/his-1';

const sidecar = (service: string, instance: string) => ({
  nodeId: `clinical/${service}/${instance}`,
  namespace: 'clinical',
  service,
  instance,
  transport: 'ads' as const,
});

function generate(view: MeshView, service: string, instance: string): SidecarResources {
  return valueOf(generateSidecar(view, sidecar(service, instance), { mtls: true }));
}

const byName = <T extends TypeUrl>(r: SidecarResources, t: T, name: string) =>
  r[t].find((x) => x.name === name)?.body;

/** The JSON of a typed_config (anyJson keeps the object as written). */
const json = (v: unknown): string => JSON.stringify(v);

describe('egress generation', () => {
  const view = meshViewOfText(`${EXTERNALS}---\n${SERVICES}`, 'mesh.yaml');

  it('gives a caller a DNS cluster that originates TLS, verified by the CA file and the SNI name', () => {
    const emr = generate(view, 'emr', 'emr-1');
    const lab = byName(emr, CLUSTER, 'external|reference-lab.clinical');
    expect(lab).toMatchObject({
      type: 'STRICT_DNS',
      load_assignment: {
        endpoints: [
          { lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'lab.example.org' } } } }] },
        ],
      },
    });
    const tls = json(lab?.transport_socket);
    expect(tls).toContain('"sni":"lab.example.org"');
    expect(tls).toContain('"trusted_ca":{"filename":"/etc/clinimesh/partner-ca.pem"}');
    expect(tls).toContain('{"san_type":"DNS","matcher":{"exact":"lab.example.org"}}');
  });

  it('gives IP endpoints a STATIC cluster, the system roots without a CA file, IP SANs, and h2 for gRPC', () => {
    const erx = byName(generate(view, 'emr', 'emr-1'), CLUSTER, 'external|eprescribing.clinical');
    expect(erx?.type).toBe('STATIC');
    const tls = json(erx?.transport_socket);
    expect(tls).not.toContain('"sni"');
    expect(tls).toContain(`"filename":"${SYSTEM_ROOTS_FILE}"`);
    expect(tls).toContain('{"san_type":"IP_ADDRESS","matcher":{"exact":"192.0.2.10"}}');
    expect(tls).toContain('{"san_type":"DNS","matcher":{"exact":"erx.gateway.example"}}');
    expect(tls).toContain('"alpn_protocols":["h2"]');
    expect(json(erx)).toContain('http2_protocol_options');
  });

  it('hands an inline CA to the sidecar in the cluster itself: no file for its Envoy to find', () => {
    const lab = view.externals!.get('reference-lab.clinical')!;
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const inline = { ...lab, tls: { ...lab.tls, caFile: undefined, caCertificates: pem } } as ExternalService;
    const tls = json(generateExternalCluster(inline, view.mesh).body.transport_socket);
    expect(tls).toContain(`"trusted_ca":{"inline_string":${JSON.stringify(pem)}}`);
    expect(tls).not.toContain('filename');
  });

  it("binds the local port on the caller's app address and writes a caller-side audit line naming the partner", () => {
    const listener = byName(generate(view, 'emr', 'emr-1'), LISTENER, 'outbound|9101');
    expect(listener?.address).toEqual({ socket_address: { address: '127.0.0.21', port_value: 9101 } });
    const hcm = json(listener?.filter_chains);
    expect(hcm).toContain('"cluster":"external|reference-lab.clinical"');
    expect(hcm).toContain('"host_rewrite_literal":"lab.example.org"');
    expect(hcm).toContain('"destination":"external:clinical/reference-lab"');
    expect(hcm).toContain('"source":"spiffe://clinimesh.local/ns/clinical/sa/emr"');
    expect(hcm).toContain('"direction":"egress"');
  });

  it('gives a service that lists no ExternalService nothing that leads to one', () => {
    const his = generate(view, 'his', 'his-1');
    const names = [...his[CLUSTER], ...his[LISTENER]].map((r) => r.name);
    expect(names.filter((n) => n.startsWith('external|'))).toEqual([]);
    expect(json(his)).not.toContain('lab.example.org');
  });

  it('passes every generated resource through the PGV rules', () => {
    const emr = generate(view, 'emr', 'emr-1');
    const problems = [...emr[CLUSTER], ...emr[LISTENER]].flatMap((r) => {
      const prepared = prepareResource(r);
      return prepared.ok ? [] : prepared.errors;
    });
    expect(problems).toEqual([]);
  });
});

describe('egress planning', () => {
  async function published() {
    const reconciler = new Reconciler(new SnapshotCache());
    const cp = new ControlPlane(new StateStore(), reconciler, undefined, undefined, {
      checkSet: checkInPlace,
    });
    const apply = async (text: string) => {
      const result = await cp.apply(valueOf(parseManifestText(text, 'mesh.yaml')));
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
    };
    await apply(`${EXTERNALS}---\n${SERVICES}`);
    return { reconciler, cp, apply };
  }

  it('re-plans only the callers of an ExternalService that changed', async () => {
    const { reconciler, cp } = await published();
    cp.stop();
    const view = reconciler.currentView()!;
    const lab = view.externals!.get('reference-lab.clinical')!;
    const moved: ExternalService = { ...lab, endpoints: [{ address: 'lab2.example.org', port: 443 }] };
    const scope = reconciler.scope({
      ...view,
      externals: new Map(view.externals).set('reference-lab.clinical', moved),
    });
    expect(scope.full).toBe(false);
    expect([...scope.whole]).toEqual([EMR_NODE]);
    expect(scope.endpointsOnly.size).toBe(0);
  });

  it('publishes an edited ExternalService to its callers and leaves the other sidecars as they were', async () => {
    const { reconciler, apply, cp } = await published();
    const cache = reconciler.cache;
    const before = { emr: cache.get(EMR_NODE, CLUSTER)?.version, his: cache.get(HIS_NODE, CLUSTER)?.version };
    await apply(EXTERNALS.replace('lab.example.org, port: 443', 'lab.example.org, port: 8443'));
    cp.stop();
    expect(cache.get(EMR_NODE, CLUSTER)?.version).not.toBe(before.emr);
    expect(cache.get(HIS_NODE, CLUSTER)?.version).toBe(before.his);
    const lab = [...cache.get(EMR_NODE, CLUSTER)!.resources.values()].find(
      (r) => r.name === 'external|reference-lab.clinical',
    );
    expect(JSON.stringify(lab?.json())).toContain('8443');
  });
});
