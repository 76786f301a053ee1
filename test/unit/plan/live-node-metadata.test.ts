// What a connecting client's node metadata may do to a node that is already connected: a sidecar's
// own reconnects (same metadata) are normal; another connection naming the same node must not
// re-plan it (audit log, SDS directory, proxyless, transport), and the plaintext port never reaches
// a node that mutual-TLS sidecars hold.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Result } from '../../../src/errors.ts';
import { StateStore } from '../../../src/store/store.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { ControlPlane } from '../../../src/xds/plan/control-plane.ts';
import { Reconciler } from '../../../src/xds/plan/reconciler.ts';
import { LISTENER } from '../../../src/xds/resources/type-urls.ts';
import type { ConnectContext } from '../../../src/xds/server/hooks.ts';
import type { NodeInfo } from '../../../src/xds/server/node.ts';
import { authenticateSidecar } from '../../../src/xds/server/xds-auth.ts';
import { EMR_NODE, hisEndpoints, meshManifests } from './fixtures.ts';

const AUDIT = '/var/log/emr-1/audit.log';
const tls: ConnectContext = {
  transport: 'ads',
  peer: 'sidecar',
  credential: 'spiffe://hospital.local/ns/clinical/sa/emr',
};
const plaintext: ConnectContext = { transport: 'ads', peer: 'local', plaintext: true };

const node = (metadata: NodeInfo['metadata']): NodeInfo => ({
  id: EMR_NODE,
  cluster: 'emr',
  metadata,
  userAgent: 'test',
});
const codes = (r: Result<unknown>) => (r.ok ? [] : r.errors.map((p) => p.code));

describe('a second connection for a connected node', () => {
  let cache: SnapshotCache;
  let cp: ControlPlane;

  beforeEach(async () => {
    cache = new SnapshotCache();
    const reconciler = new Reconciler(cache);
    reconciler.useSecrets({
      trustBundlePem: () => '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
    });
    cp = new ControlPlane(new StateStore(), reconciler, (ref, ctx) =>
      authenticateSidecar(['hospital.local'], ref, ctx),
    );
    await cp.start();
    await cp.updateEndpoints(hisEndpoints('10.0.0.1'));
    expect((await cp.apply(meshManifests())).ok).toBe(true);
  });

  afterEach(() => cp.stop());

  const listeners = () => cache.get(EMR_NODE, LISTENER)!;
  const listenerText = () => JSON.stringify([...listeners().resources.values()].map((r) => r.json()));

  it('is refused, naming the node, when its metadata would re-plan the node', () => {
    expect(cp.hooks.connect(node({ 'clinimesh.audit_log': AUDIT }), tls).ok).toBe(true);
    const version = listeners().version;
    const others: [NodeInfo['metadata'], ConnectContext][] = [
      [{ 'clinimesh.audit_log': '/dev/null' }, tls],
      [{ 'clinimesh.audit_log': AUDIT, 'clinimesh.sds_dir': '/tmp/attacker-sds' }, tls],
      [{ 'clinimesh.audit_log': AUDIT, 'clinimesh.proxyless': true }, tls],
      [{ 'clinimesh.audit_log': AUDIT, 'clinimesh.admin_port': 15999 }, tls],
      [{ 'clinimesh.audit_log': AUDIT }, { ...tls, transport: 'rest' }],
      [{}, tls],
    ];
    for (const [metadata, ctx] of others) {
      const refused = cp.hooks.connect(node(metadata), ctx);
      expect(codes(refused), JSON.stringify(metadata)).toEqual(['CONFLICT']);
      expect(refused.ok || refused.errors[0]!.message).toContain(EMR_NODE);
    }
    expect(listeners().version).toBe(version);
    expect(listenerText()).toContain(AUDIT);
    expect(listenerText()).not.toContain('/dev/null');
  });

  it('is admitted with the same metadata: a reconnect while the old stream lingers', () => {
    const metadata = { 'clinimesh.audit_log': AUDIT };
    expect(cp.hooks.connect(node(metadata), tls).ok).toBe(true);
    const version = listeners().version;
    expect(cp.hooks.connect(node(metadata), { ...tls, peer: 'reconnect' }).ok).toBe(true);
    cp.hooks.disconnect!(EMR_NODE, tls);
    expect(cp.hooks.connect(node(metadata), { ...tls, peer: 'again' }).ok).toBe(true);
    expect(listeners().version).toBe(version);
  });

  it('takes new metadata once every earlier connection has closed (a sidecar reconfigured)', () => {
    expect(cp.hooks.connect(node({ 'clinimesh.audit_log': AUDIT }), tls).ok).toBe(true);
    cp.hooks.disconnect!(EMR_NODE, tls);
    expect(cp.hooks.connect(node({ 'clinimesh.audit_log': '/var/log/emr/new.log' }), tls).ok).toBe(true);
    expect(listenerText()).toContain('/var/log/emr/new.log');
  });
});

describe('the plaintext port and a node mutual-TLS sidecars hold', () => {
  let cache: SnapshotCache;
  let cp: ControlPlane;

  beforeEach(async () => {
    cache = new SnapshotCache();
    cp = new ControlPlane(new StateStore(), new Reconciler(cache), (ref, ctx) =>
      authenticateSidecar(['hospital.local'], ref, ctx),
    );
    await cp.start();
    await cp.updateEndpoints(hisEndpoints('10.0.0.1'));
    expect((await cp.apply(meshManifests())).ok).toBe(true);
  });

  afterEach(() => cp.stop());

  const listenerNames = () => [...cache.get(EMR_NODE, LISTENER)!.resources.keys()].sort();

  it('refuses a proxyless claim for a node an Envoy holds over mutual TLS, and re-plans nothing', () => {
    expect(cp.hooks.connect(node({}), tls).ok).toBe(true);
    const before = listenerNames();
    expect(before.some((l) => l.startsWith('inbound|'))).toBe(true);
    const claim = cp.hooks.connect(node({ 'clinimesh.proxyless': true }), plaintext);
    expect(codes(claim)).toEqual(['PERMISSION_DENIED']);
    expect(claim.ok || claim.errors[0]!.message).toContain(EMR_NODE);
    expect(listenerNames()).toEqual(before);
    // Nor once the sidecar has gone (its snapshot waits for it to come back).
    cp.hooks.disconnect!(EMR_NODE, tls);
    expect(codes(cp.hooks.connect(node({ 'clinimesh.proxyless': true }), plaintext))).toEqual([
      'PERMISSION_DENIED',
    ]);
    expect(listenerNames()).toEqual(before);
  });

  it('refuses it for a proxyless node whose agent carries it over mutual TLS', () => {
    expect(cp.hooks.connect(node({ 'clinimesh.proxyless': true }), tls).ok).toBe(true);
    expect(codes(cp.hooks.connect(node({ 'clinimesh.proxyless': true }), plaintext))).toEqual([
      'PERMISSION_DENIED',
    ]);
  });

  it('serves a proxyless client there for a node no mutual-TLS sidecar has held', () => {
    expect(cp.hooks.connect(node({ 'clinimesh.proxyless': true }), plaintext).ok).toBe(true);
    expect(listenerNames().some((l) => l.startsWith('inbound|'))).toBe(false);
  });
});
