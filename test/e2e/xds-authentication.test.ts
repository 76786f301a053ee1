// Sidecars authenticate to the control plane: the xDS port speaks mutual TLS, and a client gets
// config only for the workload its certificate names. Claiming another node id, or bringing no
// certificate, gets nothing but a clear error.
import { create, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { messageDesc } from '../../src/xds/resources/registry.ts';
import { CLUSTER } from '../../src/xds/resources/type-urls.ts';
import { applyYaml, emrManifest, hisManifest, instances, meshManifest, NS } from '../helpers/mesh.ts';
import { adsFirstResponse, credentialFor } from '../helpers/xds-client.ts';

function discoveryRequest(nodeId: string): Uint8Array {
  const desc = messageDesc('envoy.service.discovery.v3.DiscoveryRequest');
  const node = messageDesc('envoy.config.core.v3.Node');
  return toBinary(
    desc,
    create(desc, { typeUrl: CLUSTER, node: create(node, { id: nodeId, cluster: 'x' }) } as never),
  );
}

describe('xDS authentication', () => {
  let cp: RunningControlPlane;
  const [his] = instances('his', 1) as [{ name: string; address: string }];
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];

  beforeAll(async () => {
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, [meshManifest, hisManifest([his]), emrManifest(emr)].join('---\n'));
  });
  afterAll(() => cp?.stop());

  it('serves a sidecar whose certificate matches its node id', async () => {
    const { response, error } = await adsFirstResponse(
      cp,
      discoveryRequest(`${NS}/emr/${emr.name}`),
      credentialFor(cp, 'emr'),
    );
    expect(error).toBeUndefined();
    expect(response!.length).toBeGreaterThan(0);
  });

  it("refuses a client that claims another workload's node id", async () => {
    const { response, error } = await adsFirstResponse(
      cp,
      discoveryRequest(`${NS}/his/${his.name}`),
      credentialFor(cp, 'emr'),
    );
    expect(response).toBeUndefined();
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error?.details).toContain('spiffe://hospital.local/ns/clinical/sa/his');
  });

  it('refuses a client without a certificate', async () => {
    const { response, error } = await adsFirstResponse(
      cp,
      discoveryRequest(`${NS}/emr/${emr.name}`),
      undefined,
    );
    expect(response).toBeUndefined();
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('refuses a malformed node id with a message naming the expected form', async () => {
    const { error } = await adsFirstResponse(cp, discoveryRequest('emr-1'), credentialFor(cp, 'emr'));
    expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(error?.details).toContain('<namespace>/<service>/<instance>');
  });
});
