// The Kubernetes deployment (manifests/k8s/) and the image (Dockerfile, .dockerignore), checked
// offline: every document is a named Kubernetes object, the StatefulSet's flags, ports, probes and
// Service agree, the admin API stays on the pod's loopback, the control plane may review tokens and
// nothing more, workloads attest with an audience-bound projected token through a native-sidecar
// agent, the pods are locked down, nothing secret is committed, the kustomization and the files stay
// in step, the commands in the manifests use flags the CLI really has, and every object validates
// against the Kubernetes API schemas (offline; `node scripts/ensure-k8s-schemas.mjs` installs them).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'manifests', 'k8s');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed YAML, inspected field by field

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const yamlFiles = filesUnder(K8S).filter((f) => /\.ya?ml$/.test(f));
const docs: { file: string; doc: Obj }[] = yamlFiles.flatMap((file) =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    if (d.errors.length)
      throw new Error(`${relative(ROOT, file)}: ${d.errors.map((e) => e.message).join('; ')}`);
    return { file: relative(K8S, file), doc: d.toJS() as Obj };
  }),
);
const byKind = (kind: string): Obj[] => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
const one = (kind: string, file?: string): Obj => {
  const found = docs.filter((d) => d.doc.kind === kind && (!file || d.file === file)).map((d) => d.doc);
  expect(found, `exactly one ${kind}${file ? ` in ${file}` : ''}`).toHaveLength(1);
  return found[0]!;
};

const statefulSet = one('StatefulSet');
const pod = statefulSet.spec.template.spec as Obj;
const container = pod.containers[0] as Obj;
const services = byKind('Service');
/** The Service sidecars and agents dial; the other one is the StatefulSet's headless governing Service. */
const service = services.find((s) => s.spec.clusterIP !== 'None')!;
const headless = services.find((s) => s.spec.clusterIP === 'None')!;
const script: string = [...(container.command ?? []), ...(container.args ?? [])].join(' ');

/** `--name value` from a command line or shell script. */
function flag(text: string, name: string): string | undefined {
  return new RegExp(`--${name}[ =]+"?([^\\s"\\\\]+)`).exec(text)?.[1];
}
function flagsIn(text: string): string[] {
  return [...new Set([...text.matchAll(/(?:^|\s)--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!))];
}
function containerPort(c: Obj, nameOrNumber: string | number): number | undefined {
  if (typeof nameOrNumber === 'number') return nameOrNumber;
  return (c.ports as Obj[] | undefined)?.find((p) => p.name === nameOrNumber)?.containerPort;
}
function allContainers(spec: Obj): Obj[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}
function commandLine(c: Obj): string {
  return [...(c.command ?? []), ...(c.args ?? [])].join(' ');
}
/** The flags a CLI command declares in its parseArgs options (`'name': { type: …`). */
function declaresFlag(source: string, name: string): boolean {
  return new RegExp(`['\\s]${name}'?: \\{ type:`).test(source);
}
/** The pod volume mounted in `c` at the directory holding `path`. */
function volumeFor(spec: Obj, c: Obj, path: string): Obj | undefined {
  const mount = (c.volumeMounts as Obj[] | undefined)?.find((m) => path.startsWith(`${m.mountPath}/`));
  return (spec.volumes as Obj[]).find((v) => v.name === mount?.name);
}
const CLUSTER_SCOPED = ['Namespace', 'Kustomization', 'ClusterRole', 'ClusterRoleBinding'];

describe('manifests/k8s', () => {
  it('every document is a named object with apiVersion and kind', () => {
    expect(docs.length).toBeGreaterThan(5);
    for (const { file, doc } of docs) {
      expect(doc, file).toBeTypeOf('object');
      expect(doc.apiVersion, `${file}: apiVersion`).toMatch(/\S/);
      expect(doc.kind, `${file}: kind`).toMatch(/\S/);
      expect(doc.metadata?.name, `${file} ${doc.kind}: metadata.name`).toMatch(
        /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
      );
    }
  });

  it('puts the control plane in clinimesh-system and the example workload in clinical', () => {
    const namespaced = docs.filter(({ doc }) => !CLUSTER_SCOPED.includes(doc.kind));
    for (const { file, doc } of namespaced) {
      expect(doc.metadata.namespace, `${file} ${doc.kind}`).toBe(
        file === 'workload-example.yaml' ? 'clinical' : 'clinimesh-system',
      );
    }
    const namespaces = new Map(
      docs.filter((d) => d.doc.kind === 'Namespace').map((d) => [d.doc.metadata.name as string, d]),
    );
    expect([...namespaces.keys()].sort()).toEqual(['clinical', 'clinimesh-system']);
    expect(namespaces.get('clinimesh-system')!.file).toBe('namespace.yaml');
    // The example creates its own namespace, before what lives in it (kubectl applies in file order).
    expect(namespaces.get('clinical')!.file).toBe('workload-example.yaml');
    const example = docs.filter((d) => d.file === 'workload-example.yaml');
    expect(example[0]!.doc.kind).toBe('Namespace');
    for (const { doc } of namespaces.values())
      expect(doc.metadata.labels['pod-security.kubernetes.io/enforce'], doc.metadata.name).toBe('restricted');
  });

  it('governs the StatefulSet with a headless Service over the same pods and ports', () => {
    expect(services).toHaveLength(2);
    expect(service.spec.clusterIP ?? '').not.toBe('None');
    expect(statefulSet.spec.serviceName).toBe(headless.metadata.name);
    expect(headless.metadata.namespace).toBe(statefulSet.metadata.namespace);
    expect(headless.spec.selector).toEqual(statefulSet.spec.selector.matchLabels);
    expect(headless.spec.ports).toEqual(service.spec.ports);
    expect(headless.spec.publishNotReadyAddresses ?? false).toBe(false);
  });

  it('runs three replicas of `clinimesh serve` on the Consul store: xDS on 0.0.0.0, admin on 127.0.0.1, audience clinimesh', () => {
    expect(statefulSet.spec.replicas).toBe(3);
    expect(script).toMatch(/\bserve\b/);
    expect(flag(script, 'host')).toBe('0.0.0.0');
    expect(flag(script, 'manifests')).toBe('/etc/clinimesh/manifests');
    expect(flag(script, 'data-dir')).toBe('/var/lib/clinimesh');
    expect(flag(script, 'admin-host')).toBe('127.0.0.1');
    expect(flag(script, 'k8s-audience')).toBe('clinimesh');
    expect(flag(script, 'store')).toBe('consul');
    expect(flagsIn(script)).not.toContain('metrics-public');
    const env = new Map((container.env as Obj[]).map((e) => [e.name as string, e]));
    expect(env.get('CONSUL_HTTP_ADDR')?.value).toMatch(/^https?:\/\//);
    expect(env.get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(flag(script, 'replica-name')).toBe('$(POD_NAME)');
  });

  it('keeps two replicas through disruptions and never two on one node', () => {
    const pdb = one('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(statefulSet.spec.selector.matchLabels);
    expect(pdb.spec.maxUnavailable ?? statefulSet.spec.replicas - pdb.spec.minAvailable).toBe(1);
    const required = pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution as Obj[];
    expect(required).toEqual([
      {
        topologyKey: 'kubernetes.io/hostname',
        labelSelector: { matchLabels: statefulSet.spec.selector.matchLabels },
      },
    ]);
    const preferred = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution as Obj[];
    expect(preferred.map((p) => p.podAffinityTerm.topologyKey)).toEqual(['topology.kubernetes.io/zone']);
  });

  it('reads the CA key-encryption key from a Secret that every replica mounts read-only', () => {
    const kekFile = flag(script, 'ca-kek-file')!;
    const kek = volumeFor(pod, container, kekFile)?.secret as Obj;
    expect(kek).toMatchObject({ secretName: 'clinimesh-ca-kek' });
    expect(kek.optional ?? false, 'a replica without the KEK must not start').toBe(false);
    expect(kek.defaultMode & 0o077 & ~0o040, 'no write or other-access on the KEK').toBe(0);
    const mount = (container.volumeMounts as Obj[]).find((m) => kekFile.startsWith(`${m.mountPath}/`))!;
    expect(mount.readOnly).toBe(true);
  });

  it('uses only flags that `clinimesh serve` has', () => {
    const serveSource = readFileSync(join(ROOT, 'src', 'cli', 'serve.ts'), 'utf8');
    for (const f of flagsIn(script)) expect(declaresFlag(serveSource, f), `serve has --${f}`).toBe(true);
  });

  it('mounts the data volume, the manifests ConfigMap and a writable /tmp', () => {
    const mounts = new Map((container.volumeMounts as Obj[]).map((m) => [m.mountPath as string, m]));
    const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name as string, v]));
    const claims = (statefulSet.spec.volumeClaimTemplates as Obj[]).map((c) => c.metadata.name as string);
    for (const m of mounts.values())
      expect(volumes.has(m.name) || claims.includes(m.name), `volume ${m.name}`).toBe(true);
    expect(claims).toContain(mounts.get('/var/lib/clinimesh')?.name);
    expect(volumes.get(mounts.get('/etc/clinimesh/manifests')?.name)?.configMap?.name).toBe(
      'clinimesh-manifests',
    );
    expect(volumes.get(mounts.get('/tmp')?.name)?.emptyDir).toBeDefined();
  });

  it("names xDS ports that match the Service's; the admin port is in neither", () => {
    const ports = { 'xds-grpc': flag(script, 'xds-port'), 'xds-rest': flag(script, 'xds-rest-port') };
    expect(ports).toEqual({ 'xds-grpc': '18000', 'xds-rest': '18001' });
    expect(service.spec.selector).toEqual(statefulSet.spec.selector.matchLabels);
    expect(statefulSet.spec.template.metadata.labels).toMatchObject(statefulSet.spec.selector.matchLabels);
    expect((service.spec.ports as Obj[]).map((p) => p.name).sort()).toEqual(Object.keys(ports).sort());
    for (const [name, value] of Object.entries(ports)) {
      const sp = (service.spec.ports as Obj[]).find((p) => p.name === name)!;
      expect(containerPort(container, name), `container port ${name}`).toBe(Number(value));
      expect(sp.port, `Service port ${name}`).toBe(Number(value));
      expect(containerPort(container, sp.targetPort), `Service ${name} targetPort`).toBe(Number(value));
    }
    expect((service.spec.ports as Obj[]).find((p) => p.name === 'xds-grpc')?.appProtocol).toBe('grpc');
    const admin = Number(flag(script, 'admin-port'));
    expect(admin).toBe(19000);
    expect((container.ports as Obj[]).map((p) => p.containerPort)).not.toContain(admin);
    expect((service.spec.ports as Obj[]).map((p) => p.port)).not.toContain(admin);
    expect(container.resources.requests).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
    expect(container.resources.limits).toMatchObject({ memory: expect.anything() });
  });

  it('probes the loopback admin listener from inside the container (exec), /healthz and /readyz', () => {
    // An httpGet probe comes from the kubelet on the node and cannot reach 127.0.0.1 in the pod.
    const probes: [string, string][] = [
      ['startupProbe', '/healthz'],
      ['livenessProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ];
    for (const [name, path] of probes) {
      const probe = container[name] as Obj;
      expect(probe.httpGet, name).toBeUndefined();
      const text = (probe.exec.command as string[]).join(' ');
      expect(text, name).toContain(`host:'127.0.0.1',port:${flag(script, 'admin-port')},path:'${path}'`);
      expect(text, name).toMatch(/statusCode===200\?0:1/);
      expect(probe.timeoutSeconds, `${name} leaves node time to start`).toBeGreaterThanOrEqual(3);
    }
  });

  it('limits ingress to xDS from mesh workloads, with no rule for the admin port', () => {
    const policy = one('NetworkPolicy');
    expect(policy.spec.podSelector.matchLabels).toEqual(statefulSet.spec.selector.matchLabels);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    const rules = policy.spec.ingress as Obj[];
    const rulesFor = (port: string) => rules.filter((r) => (r.ports as Obj[]).some((p) => p.port === port));
    for (const r of rules) {
      expect(r.ports, 'every rule names its ports').toBeDefined();
      for (const p of r.ports as Obj[]) {
        expect(['xds-grpc', 'xds-rest'], `policy port ${p.port}`).toContain(p.port);
        expect(containerPort(container, p.port), `policy port ${p.port}`).toBeDefined();
      }
    }
    for (const port of ['xds-grpc', 'xds-rest']) {
      const [rule, ...more] = rulesFor(port);
      expect(more).toHaveLength(0);
      expect(rule!.from).toEqual([
        { namespaceSelector: {}, podSelector: { matchLabels: { 'clinimesh.io/mesh-workload': 'true' } } },
      ]);
    }
    // The example workload carries that label.
    const workload = one('Deployment', 'workload-example.yaml');
    expect(workload.spec.template.metadata.labels['clinimesh.io/mesh-workload']).toBe('true');
  });

  it('locks every pod down (non-root, read-only root, no capabilities, RuntimeDefault seccomp)', () => {
    const pods: [string, Obj][] = [
      ['StatefulSet', pod],
      ['Deployment', one('Deployment').spec.template.spec],
    ];
    for (const [what, spec] of pods) {
      expect(spec.securityContext.runAsNonRoot, what).toBe(true);
      expect(spec.securityContext.seccompProfile, what).toEqual({ type: 'RuntimeDefault' });
      expect(spec.hostNetwork ?? false, what).toBe(false);
      expect(spec.automountServiceAccountToken, what).toBe(false);
      for (const c of allContainers(spec)) {
        const sc = c.securityContext as Obj;
        const who = `${what} ${c.name}`;
        expect(sc.readOnlyRootFilesystem, who).toBe(true);
        expect(sc.allowPrivilegeEscalation, who).toBe(false);
        expect(sc.privileged ?? false, who).toBe(false);
        expect(sc.capabilities.drop, who).toContain('ALL');
        expect(sc.capabilities.add ?? [], who).toEqual([]);
        expect(
          sc.runAsUser ?? spec.securityContext.runAsUser,
          `${who} runs as a numeric non-root user`,
        ).toBeGreaterThan(0);
      }
    }
    expect(pod.securityContext.fsGroup).toBe(pod.securityContext.runAsGroup);
    expect(one('ServiceAccount', 'serviceaccount.yaml').automountServiceAccountToken).toBe(false);
  });

  it('gives the control plane its API token explicitly, and the right to create tokenreviews only', () => {
    // The token TokenReview calls are made with: projected into the clinimesh container, at the
    // in-cluster path clinimesh reads by default, for the API server's own audience.
    const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
    const sources = volumeFor(pod, container, `${dir}/token`)?.projected?.sources as Obj[];
    const token = sources.find((s) => s.serviceAccountToken)?.serviceAccountToken as Obj;
    expect(token.path).toBe('token');
    expect(token.audience).toBeUndefined();
    expect(sources.find((s) => s.configMap)?.configMap).toMatchObject({
      name: 'kube-root-ca.crt',
      items: [{ key: 'ca.crt', path: 'ca.crt' }],
    });
    // RBAC: system:auth-delegator (create tokenreviews and subjectaccessreviews, nothing else) bound
    // to the StatefulSet's ServiceAccount; no other binding, no custom role.
    const bindings = [...byKind('ClusterRoleBinding'), ...byKind('RoleBinding')];
    expect(bindings).toHaveLength(1);
    expect(byKind('ClusterRole')).toHaveLength(0);
    expect(byKind('Role')).toHaveLength(0);
    expect(bindings[0]!.kind).toBe('ClusterRoleBinding');
    expect(bindings[0]!.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'system:auth-delegator',
    });
    expect(bindings[0]!.subjects).toEqual([
      { kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: statefulSet.metadata.namespace },
    ]);
    expect(one('ServiceAccount', 'serviceaccount.yaml').metadata.name).toBe(pod.serviceAccountName);
  });

  it('commits no secret and no private key', () => {
    for (const s of byKind('Secret')) {
      expect(s.data ?? {}, `Secret ${s.metadata.name}`).toEqual({});
      expect(s.stringData ?? {}, `Secret ${s.metadata.name}`).toEqual({});
    }
    for (const file of [...filesUnder(K8S), join(ROOT, 'Dockerfile'), join(ROOT, '.dockerignore')]) {
      expect(readFileSync(file, 'utf8'), relative(ROOT, file)).not.toContain('PRIVATE KEY');
    }
    // Elsewhere the words appear in prose and code; an actual PEM block would be a leak.
    const elsewhere = [
      ...filesUnder(join(ROOT, 'manifests')),
      ...(existsSync(join(ROOT, 'certs')) ? filesUnder(join(ROOT, 'certs')) : []),
    ];
    for (const file of elsewhere)
      expect(readFileSync(file, 'utf8'), relative(ROOT, file)).not.toMatch(
        /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
      );
  });

  it('has a kustomization that lists existing files, and every control-plane file', () => {
    const kustomization = one('Kustomization');
    expect(kustomization.namespace).toBe('clinimesh-system');
    const listed = [...(kustomization.resources ?? []), ...(kustomization.components ?? [])] as string[];
    const generated = ((kustomization.configMapGenerator ?? []) as Obj[]).flatMap(
      (g) => (g.files ?? []) as string[],
    );
    for (const entry of [...listed, ...generated.map((f) => f.replace(/^[^=]*=/, ''))]) {
      expect(entry, 'stays inside the kustomization root').not.toMatch(/^\.\.|^\//);
      expect(existsSync(join(K8S, entry)), `${entry} exists`).toBe(true);
    }
    const topLevel = readdirSync(K8S).filter(
      (f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml' && f !== 'workload-example.yaml',
    );
    expect([...listed].sort()).toEqual(topLevel.sort());
    expect(listed).not.toContain('workload-example.yaml');
  });

  it.skipIf(!hasKubectl())('builds with kubectl kustomize', () => {
    const out = execFileSync('kubectl', ['kustomize', K8S], { encoding: 'utf8', timeout: 30_000 });
    const kinds = parseAllDocuments(out).map((d) => (d.toJS() as Obj).kind as string);
    expect(kinds.sort()).toEqual([
      'ClusterRoleBinding',
      'Namespace',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
      'Service',
      'ServiceAccount',
      'StatefulSet',
    ]);
  });

  describe('the example workload', () => {
    const spec = one('Deployment', 'workload-example.yaml').spec.template.spec as Obj;
    const inits = (spec.initContainers ?? []) as Obj[];
    const agent = inits.find((c) => c.name === 'clinimesh-agent')!;
    const envoy = inits.find((c) => c.name === 'envoy')!;
    const text = agent ? commandLine(agent) : '';
    const outDir = flag(text, 'out-dir');

    it('runs the node agent as a native sidecar that starts before Envoy', () => {
      expect(agent.restartPolicy).toBe('Always');
      expect(envoy.restartPolicy).toBe('Always');
      expect(inits.indexOf(agent)).toBeLessThan(inits.indexOf(envoy));
      expect(text).toMatch(/^node \/app\/bin\/clinimesh\.js agent /);
      // No old-style bootstrap against the admin API, and no admin address anywhere in the pod.
      for (const c of allContainers(spec)) {
        expect(commandLine(c), c.name).not.toMatch(/\bbootstrap\b|19000|--admin/);
      }
      const env = new Map(
        (agent.env as Obj[]).map((e) => [e.name as string, e.valueFrom?.fieldRef?.fieldPath]),
      );
      expect(env.get('POD_NAME')).toBe('metadata.name');
      expect(flag(text, 'instance')).toBe('$(POD_NAME)');
    });

    it('attests with a projected service-account token for audience clinimesh, and mounts no other', () => {
      expect(spec.automountServiceAccountToken).toBe(false);
      const tokenPath = flag(text, 'k8s-token-file')!;
      expect(tokenPath).toBe('/var/run/secrets/clinimesh/token');
      const sources = volumeFor(spec, agent, tokenPath)?.projected?.sources as Obj[];
      expect(sources).toEqual([
        { serviceAccountToken: { audience: 'clinimesh', expirationSeconds: 3600, path: 'token' } },
      ]);
      // Envoy and the application do not get the token.
      const tokenVolume = volumeFor(spec, agent, tokenPath)!.name;
      for (const c of allContainers(spec).filter((x) => x !== agent))
        expect(
          (c.volumeMounts ?? []).map((m: Obj) => m.name),
          c.name,
        ).not.toContain(tokenVolume);
    });

    it("reaches every replica's xds-rest port through the headless Service and trusts the public root from the clinimesh-ca ConfigMap", () => {
      const rest = (headless.spec.ports as Obj[]).find((p) => p.name === 'xds-rest')!;
      // The headless name resolves to every ready replica: the agent and Envoy fail over among them.
      expect(flag(text, 'control-plane')).toBe(
        `${headless.metadata.name}.${headless.metadata.namespace}.svc:${rest.port}`,
      );
      const caFile = flag(text, 'ca-file')!;
      expect(caFile).toBe('/etc/clinimesh/ca/ca.crt');
      const ca = volumeFor(spec, agent, caFile)?.configMap as Obj;
      expect(ca.name).toBe('clinimesh-ca');
      expect(ca.items).toEqual([{ key: 'ca.crt', path: 'ca.crt' }]);
    });

    it('shares an emptyDir with Envoy, which starts from the envoy.json the agent writes', () => {
      expect(outDir).toBe('/var/run/clinimesh');
      const written = `${outDir}/envoy.json`;
      expect(envoy.args.join(' ')).toContain(`-c ${written}`);
      expect(volumeFor(spec, agent, written)?.emptyDir).toBeDefined();
      expect(volumeFor(spec, envoy, written)?.name).toBe(volumeFor(spec, agent, written)?.name);
      // Envoy reads the agent's 0600 key files: same user. The application is another one.
      expect(envoy.securityContext.runAsUser).toBe(agent.securityContext.runAsUser);
      const app = (spec.containers as Obj[])[0]!;
      expect(app.securityContext.runAsUser).not.toBe(agent.securityContext.runAsUser);
      expect((app.volumeMounts ?? []).map((m: Obj) => m.name)).not.toContain(
        volumeFor(spec, agent, written)?.name,
      );
    });

    it("probes the agent's loopback status port from inside the container: healthy once started, while certificates are valid", () => {
      // The agent is started (and so Envoy may start) once /healthz answers 200: it serves only
      // after the bootstrap is written. httpGet would come from the kubelet and miss 127.0.0.1.
      const port = flag(text, 'status-port')!;
      expect(Number(port)).toBeGreaterThan(0);
      for (const name of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const probe = agent[name] as Obj;
        expect(probe?.httpGet, name).toBeUndefined();
        const command = (probe.exec.command as string[]).join(' ');
        expect(command, name).toContain(`http://127.0.0.1:${port}/healthz`);
        expect(command, name).toMatch(/statusCode===200\?0:1/);
        expect(probe.timeoutSeconds, `${name} leaves node time to start`).toBeGreaterThanOrEqual(3);
      }
    });

    it('uses only flags that `clinimesh agent` has', () => {
      const agentCli = join(ROOT, 'src', 'cli', 'agent.ts');
      expect(existsSync(agentCli), 'src/cli/agent.ts (the `clinimesh agent` command)').toBe(true);
      const source = readFileSync(agentCli, 'utf8');
      for (const f of flagsIn(text)) expect(declaresFlag(source, f), `agent has --${f}`).toBe(true);
    });
  });
});

describe('Kubernetes API schemas (offline)', () => {
  // kubernetes-validate bundles the OpenAPI-derived JSON schemas of each Kubernetes minor; strict
  // mode refuses unknown fields. Oldest: native sidecars (initContainers restartPolicy) need 1.29.
  const VERSIONS = ['1.29.0', '1.37.0'];
  const validator = schemaValidator();
  const inCi = process.env.CI === 'true';
  const missing =
    'the Kubernetes schema validator is not installed (run `node scripts/ensure-k8s-schemas.mjs`)';
  if (!validator && !inCi) console.warn(`skipping the Kubernetes schema validation: ${missing}`);
  // kustomization.yaml is kustomize's own file, not an API object (`kubectl kustomize` checks it).
  const objects = yamlFiles.filter((f) => !f.endsWith('kustomization.yaml'));
  const validate = (version: string, files: string[]) =>
    spawnSync(validator!, ['--strict', '--no-warn', '-k', version, ...files], {
      encoding: 'utf8',
      timeout: 60_000,
    });

  it.skipIf(!validator && !inCi).each(VERSIONS)(
    'validates every object strictly against Kubernetes %s',
    (version) => {
      expect(validator, missing).toBeDefined();
      const run = validate(version, objects);
      expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
      const passed = run.stdout.split('\n').filter((l) => l.startsWith('INFO') && l.includes('passed'));
      expect(passed, run.stdout).toHaveLength(docs.filter((d) => d.doc.kind !== 'Kustomization').length);
    },
  );

  it.skipIf(!validator && !inCi)(
    'refuses an object with an unknown field or a wrong type (the check is not vacuous)',
    () => {
      expect(validator, missing).toBeDefined();
      const dir = mkdtempSync(join(tmpdir(), 'k8s-schema-'));
      try {
        const bad = join(dir, 'bad.yaml');
        writeFileSync(
          bad,
          'apiVersion: v1\nkind: Service\nmetadata: { name: x, namespace: y }\nspec:\n  clusterIp: None\n  ports: [{ port: 18000 }]\n',
        );
        const unknown = validate(VERSIONS.at(-1)!, [bad]);
        expect(unknown.status).not.toBe(0);
        expect(`${unknown.stdout}${unknown.stderr}`).toMatch(/clusterIp/);
        writeFileSync(
          bad,
          'apiVersion: v1\nkind: Service\nmetadata: { name: x, namespace: y }\nspec:\n  ports: [{ port: xds }]\n',
        );
        expect(validate(VERSIONS.at(-1)!, [bad]).status).not.toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('Dockerfile and .dockerignore', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const lines = dockerfile.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#'));

  const stages = dockerfile
    .split(/^(?=FROM )/m)
    .map((text) => text.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#')))
    .filter((l) => l[0]?.startsWith('FROM '));
  const runtime = stages.at(-1)!;

  it('builds in stages on one current Node LTS, dependencies before sources', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const bases = stages.map((s) => s[0]!.split(/\s+/)[1]!);
    expect(new Set(bases).size, 'one base image for every stage').toBe(1);
    expect(bases[0]).toMatch(/^node:(22|24)-slim$/);
    const build = stages.find((s) => s.some((l) => l === 'RUN npm run build'))!;
    expect(build, 'a stage runs `npm run build`').toBeDefined();
    expect(build.findIndex((l) => l.startsWith('RUN npm ci'))).toBeLessThan(
      build.findIndex((l) => l === 'COPY src ./src'),
    );
    expect(build.findIndex((l) => l.startsWith('COPY package.json package-lock.json'))).toBeLessThan(
      build.findIndex((l) => l.startsWith('RUN npm ci')),
    );
    for (const c of lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      for (const src of c.split(/\s+/).slice(1, -1))
        if (!src.includes('*')) expect(existsSync(join(ROOT, src)), src).toBe(true);
    }
  });

  it('ships compiled JavaScript with production dependencies only: no sources, no TypeScript compiler, no tsx', () => {
    const copies = runtime.filter((l) => l.startsWith('COPY '));
    const copied = copies.map((l) => l.split(/\s+/).at(-1)!.replace(/^\.\//, '').replace(/\/$/, ''));
    expect(copied).toEqual(
      expect.arrayContaining([
        'dist',
        'node_modules',
        'package.json',
        'bin',
        'proto/envoy-descriptors.binpb',
      ]),
    );
    expect(copied).not.toContain('src');
    expect(copied).not.toContain('tsconfig.json');
    expect(copies.find((l) => / \.\/dist$/.test(l))).toMatch(/^COPY --from=\S+ \S*dist \.\/dist$/);
    // Runtime node_modules come from `npm ci --omit=dev`, with tsx (a dependency only for `npm start`
    // without a build) taken back out; the compiler is a devDependency.
    const depsStage = stages.find((s) => s.some((l) => l.includes('npm ci --omit=dev')))!;
    expect(depsStage.join('\n')).toMatch(/npm uninstall [^\n]*\btsx\b/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
      scripts: Record<string, string>;
    };
    expect(Object.keys(pkg.dependencies)).not.toContain('typescript');
    expect(pkg.scripts.build).toMatch(/tsc -p tsconfig\.build\.json/);
    const build = JSON.parse(
      readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, ''),
    ) as {
      compilerOptions: Record<string, unknown>;
    };
    expect(build.compilerOptions).toMatchObject({
      rewriteRelativeImportExtensions: true,
      outDir: 'dist',
      noEmit: false,
    });
  });

  it('runs as the non-root node user, the CLI by its path', () => {
    expect(lines.filter((l) => l.startsWith('USER ')).at(-1)).toBe('USER 1000:1000'); // `node`, numeric for runAsNonRoot
    expect(lines).toContain('ENTRYPOINT ["node", "bin/clinimesh.js"]');
    // The Kubernetes manifests run the CLI by its path in the image.
    expect(lines).toContain('WORKDIR /app');
    expect(script).toContain('node /app/bin/clinimesh.js');
    expect(lines.find((l) => l.startsWith('CMD '))).toMatch(/^CMD \["serve", /);
    expect(runtime).toContain('ENV NODE_ENV=production');
  });

  it('keeps local state, keys, tests, builds and history out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of [
      'node_modules',
      '.envoy',
      '.k8s-schemas',
      '.clinimesh',
      'gen',
      'dist',
      'bench/out',
      'test',
      '.git',
    ])
      expect(ignored, entry).toContain(entry);
  });
});

/** The validator `scripts/ensure-k8s-schemas.mjs` installed (its path in <venv>/VALIDATOR_PATH), if it runs. */
function schemaValidator(): string | undefined {
  const venv = process.env.CLINIMESH_K8S_SCHEMAS_VENV || join(ROOT, '.k8s-schemas');
  const pathFile = join(venv, 'VALIDATOR_PATH');
  if (!existsSync(pathFile)) return undefined;
  const path = readFileSync(pathFile, 'utf8').trim();
  return existsSync(path) ? path : undefined;
}

function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}
