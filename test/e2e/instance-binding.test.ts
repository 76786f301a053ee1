// A join token bound to one instance gives a credential for that instance only. What the security
// review did, replayed against a real control plane and a real HIS sidecar (Envoy, bootstrapped by
// its node agent): a host holding his-1's credential claims his-2's node id with its own node
// metadata (an audit log of /dev/null, its own SDS directory). It is refused, and his-2's Envoy keeps
// the config it had. A service-wide credential may claim any instance, but not re-plan one that is
// connected with other metadata; a renewal keeps the binding.
import { fromJson, toBinary, type JsonValue } from '@bufbuild/protobuf';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { callControlPlane, type ClientTls } from '../../src/agent/control-plane-client.ts';
import { readCertificate } from '../../src/agent/secret-files.ts';
import { XDS_CLIENT_SECRET } from '../../src/bootstrap/envoy-bootstrap.ts';
import { createCsr } from '../../src/ca/csr.ts';
import type { SignedIdentity } from '../../src/identity/workload-signer.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { envoyRegistry, messageDesc } from '../../src/xds/resources/registry.ts';
import { LISTENER } from '../../src/xds/resources/type-urls.ts';
import { describeWithEnvoy, dumpLogsOnFailure } from '../helpers/envoy.ts';
import {
  applyYaml,
  hisManifest,
  instances,
  joinToken,
  meshManifest,
  NS,
  startSidecar,
  type Sidecar,
  type TestInstance,
} from '../helpers/mesh.ts';
import { waitFor } from '../helpers/wait.ts';
import { adsFirstResponse, type Credential } from '../helpers/xds-client.ts';

const ec = (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();

/** An LDS request naming `nodeId` with `metadata`, as a hand-made xDS client would send it. */
function ldsRequest(nodeId: string, metadata: Record<string, JsonValue>): Uint8Array {
  const desc = messageDesc('envoy.service.discovery.v3.DiscoveryRequest');
  const json = { typeUrl: LISTENER, node: { id: nodeId, cluster: 'his', metadata } };
  return toBinary(desc, fromJson(desc, json, { registry: envoyRegistry() }));
}

describeWithEnvoy('a credential bound to one instance', () => {
  let cp: RunningControlPlane;
  let dir: string;
  let his2: Sidecar | undefined;
  const [his1, two] = instances('his', 2) as [TestInstance, TestInstance];
  const his2Node = `${NS}/his/${two.name}`;
  const hisAudit = () => join(dir, 'his-2.audit.jsonl');
  const attacker = { 'clinimesh.audit_log': '/dev/null', 'clinimesh.sds_dir': '/tmp/attacker-sds' };

  /** Attests with `token` as an agent would and returns its xDS credential. */
  async function attestXds(token: string): Promise<Credential> {
    const key = ec();
    const signed = await callControlPlane<SignedIdentity>(
      `${cp.host}:${cp.xdsRestPort}`,
      'POST',
      '/v1/agent/attest',
      { caPem: cp.ca.trustBundle().join('\n') },
      { joinToken: token, xdsCsr: createCsr(key), workloadCsr: createCsr(ec()) },
    );
    if (!signed.ok) throw new Error(JSON.stringify(signed.errors));
    return { cert: signed.value.xds.certChainPem, key: pem(key), ca: cp.ca.trustBundle().join('\n') };
  }

  const listenersOfHis2 = () => cp.cache.get(his2Node, LISTENER);
  const envoyListeners = () => his2!.admin('/config_dump?resource=dynamic_listeners');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-binding-'));
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, [meshManifest, hisManifest([his1, two])].join('---\n'));
    his2 = await startSidecar(cp, 'his', two.name, 'ads', { 'clinimesh.audit_log': hisAudit() });
    await waitFor(async () => (await envoyListeners()).includes(hisAudit()), {
      what: "his-2's Envoy to hold its listeners with its audit log",
      timeoutMs: 20_000,
    });
  });

  afterEach(dumpLogsOnFailure(() => (his2 ? [his2] : [])));
  afterAll(async () => {
    await his2?.stop();
    await cp?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("is refused a sibling's node id, and the sibling's Envoy keeps its audit log", async () => {
    const stolen = await attestXds(joinToken(cp, 'his', his1.name));
    const version = listenersOfHis2()!.version;
    const { response, error } = await adsFirstResponse(cp, ldsRequest(his2Node, attacker), stolen);
    expect(response).toBeUndefined();
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(error?.details).toContain(his2Node);
    expect(error?.details).toContain(his1.name);
    // Nothing was planned for the claim: the snapshot his-2 shares is the one it had.
    expect(listenersOfHis2()!.version).toBe(version);
    const dump = await envoyListeners();
    expect(dump).toContain(hisAudit());
    expect(dump).not.toContain('/dev/null');
    expect(dump).not.toContain('attacker-sds');
    // The credential itself works for the instance it was bound to.
    const own = await adsFirstResponse(cp, ldsRequest(`${NS}/his/${his1.name}`, {}), stolen);
    expect(own.error).toBeUndefined();
    expect(own.response).toBeDefined();
  });

  it('keeps the binding through a renewal', async () => {
    const bound = await attestXds(joinToken(cp, 'his', his1.name));
    const key = ec();
    const tls: ClientTls = { caPem: bound.ca, certChainPem: bound.cert, keyPem: bound.key };
    const renewed = await callControlPlane<SignedIdentity>(
      `${cp.host}:${cp.xdsRestPort}`,
      'POST',
      '/v1/agent/renew',
      tls,
      { xdsCsr: createCsr(key), workloadCsr: createCsr(ec()) },
    );
    if (!renewed.ok) throw new Error(JSON.stringify(renewed.errors));
    const cert = renewed.value.xds.certChainPem;
    expect(new X509Certificate(cert).subject).toContain(`serialNumber=${his1.name}`);
    const claim = await adsFirstResponse(cp, ldsRequest(his2Node, attacker), {
      cert,
      key: pem(key),
      ca: bound.ca,
    });
    expect(claim.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    // The real agent's renewed credential still names its own instance.
    expect((await his2!.agent.renewNow()).ok).toBe(true);
    const held = readCertificate(his2!.agent.sdsDir, XDS_CLIENT_SECRET)!.certChainPem;
    expect(new X509Certificate(held).subject).toContain(`serialNumber=${two.name}`);
  });

  it('lets a service-wide credential claim an instance, but not re-plan one connected with other metadata', async () => {
    const serviceWide = await attestXds(joinToken(cp, 'his'));
    const version = listenersOfHis2()!.version;
    const { response, error } = await adsFirstResponse(cp, ldsRequest(his2Node, attacker), serviceWide);
    expect(response).toBeUndefined();
    expect(error?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(error?.details).toContain(his2Node);
    expect(listenersOfHis2()!.version).toBe(version);
    expect(await envoyListeners()).toContain(hisAudit());
  });
});
