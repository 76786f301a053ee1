// The Kubernetes deployment (manifests/k8s/) and the image (Dockerfile, .dockerignore), checked
// offline: every document is a named Kubernetes object, the StatefulSet's flags, ports, probes and
// Service agree, the pods are locked down, nothing secret is committed, the kustomization and the
// files stay in step, and the commands in the manifests use flags the CLI really has.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { usage as bootstrapUsage } from '../../src/cli/bootstrap.ts';

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
const service = one('Service');
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
    const namespaced = docs.filter(({ doc }) => !['Namespace', 'Kustomization'].includes(doc.kind));
    for (const { file, doc } of namespaced) {
      expect(doc.metadata.namespace, `${file} ${doc.kind}`).toBe(
        file === 'workload-example.yaml' ? 'clinical' : 'clinimesh-system',
      );
    }
    expect(one('Namespace').metadata.name).toBe('clinimesh-system');
    expect(one('Namespace').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('runs one replica of `clinimesh serve` on 0.0.0.0 with the manifests and data directory', () => {
    expect(statefulSet.spec.replicas).toBe(1);
    expect(byKind('PodDisruptionBudget')).toHaveLength(0); // pointless with one replica (see statefulset.yaml)
    expect(script).toMatch(/\bserve\b/);
    expect(flag(script, 'host')).toBe('0.0.0.0');
    expect(flag(script, 'manifests')).toBe('/etc/clinimesh/manifests');
    expect(flag(script, 'data-dir')).toBe('/var/lib/clinimesh');
    // Only flags that `clinimesh serve` has.
    const serveSource = readFileSync(join(ROOT, 'src', 'cli', 'serve.ts'), 'utf8');
    for (const f of flagsIn(script))
      expect(serveSource, `serve has --${f}`).toMatch(new RegExp(`['\\s]${f}'?: \\{ type:`));
  });

  it('mounts the data volume, the manifests ConfigMap, the optional CA Secret and a writable /tmp', () => {
    const mounts = new Map((container.volumeMounts as Obj[]).map((m) => [m.mountPath as string, m]));
    const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name as string, v]));
    const claims = (statefulSet.spec.volumeClaimTemplates as Obj[]).map((c) => c.metadata.name as string);
    for (const m of mounts.values())
      expect(volumes.has(m.name) || claims.includes(m.name), `volume ${m.name}`).toBe(true);
    expect(claims).toContain(mounts.get('/var/lib/clinimesh')?.name);
    expect(volumes.get(mounts.get('/etc/clinimesh/manifests')?.name)?.configMap?.name).toBe(
      'clinimesh-manifests',
    );
    const ca = volumes.get(mounts.get('/etc/clinimesh/ca')?.name)?.secret as Obj;
    expect(ca).toMatchObject({ secretName: 'clinimesh-ca', optional: true });
    expect(ca.defaultMode & 0o077 & ~0o040, 'no write or other-access on the CA key').toBe(0);
    expect(mounts.get('/etc/clinimesh/ca')?.readOnly).toBe(true);
    expect(volumes.get(mounts.get('/tmp')?.name)?.emptyDir).toBeDefined();
    // --ca-dir names the Secret's mount, and only when the Secret brought a CA: an optional Secret
    // that does not exist mounts as an empty read-only directory, where clinimesh cannot make one.
    expect(script).toMatch(
      /if \[ -f \/etc\/clinimesh\/ca\/ca\.crt \]; then set -- "\$@" --ca-dir \/etc\/clinimesh\/ca; fi/,
    );
    expect(script).toMatch(/exec node /);
  });

  it("names ports that match the Service's, with probes on the admin port", () => {
    const ports = {
      'xds-grpc': flag(script, 'xds-port'),
      'xds-rest': flag(script, 'xds-rest-port'),
      admin: flag(script, 'admin-port'),
    };
    expect(ports).toEqual({ 'xds-grpc': '18000', 'xds-rest': '18001', admin: '19000' });
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
    const admin = Number(ports.admin);
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(containerPort(container, container.livenessProbe.httpGet.port)).toBe(admin);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(containerPort(container, container.readinessProbe.httpGet.port)).toBe(admin);
    if (container.startupProbe)
      expect(containerPort(container, container.startupProbe.httpGet.port)).toBe(admin);
    expect(container.resources.requests).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
    expect(container.resources.limits).toMatchObject({ memory: expect.anything() });
  });

  it('limits ingress: admin to the namespace, xDS to mesh workloads', () => {
    const policy = one('NetworkPolicy');
    expect(policy.spec.podSelector.matchLabels).toEqual(statefulSet.spec.selector.matchLabels);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    const rules = policy.spec.ingress as Obj[];
    const rulesFor = (port: string) => rules.filter((r) => (r.ports as Obj[]).some((p) => p.port === port));
    for (const r of rules)
      for (const p of r.ports as Obj[])
        expect(containerPort(container, p.port), `policy port ${p.port}`).toBeDefined();
    const admin = rulesFor('admin');
    expect(admin).toHaveLength(1);
    expect(admin[0]!.from).toEqual([{ podSelector: {} }]);
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
    expect(kinds.sort()).toEqual(['Namespace', 'NetworkPolicy', 'Service', 'ServiceAccount', 'StatefulSet']);
  });

  it('joins the example workload with flags that `clinimesh bootstrap` has', () => {
    const spec = one('Deployment', 'workload-example.yaml').spec.template.spec as Obj;
    const init = (spec.initContainers as Obj[]).find((c) => c.name === 'clinimesh-bootstrap')!;
    const text = [...(init.command ?? []), ...(init.args ?? [])].join(' ');
    expect(text).toMatch(/clinimesh\.js bootstrap /);
    for (const f of flagsIn(text)) expect(bootstrapUsage, `bootstrap has --${f}`).toContain(`--${f}`);
    expect(flag(text, 'xds-host')).toBe(`${service.metadata.name}.${service.metadata.namespace}.svc`);
    expect(flag(text, 'xds-port')).toBe(
      String((service.spec.ports as Obj[]).find((p) => p.name === 'xds-grpc')!.port),
    );
    const env = new Map(
      (init.env as Obj[]).map((e) => [e.name as string, e.valueFrom?.fieldRef?.fieldPath as string]),
    );
    expect(env.get('POD_IP')).toBe('status.podIP');
    expect(env.get('POD_NAME')).toBe('metadata.name');
    expect(text).toMatch(/--instance "\$\{POD_NAME\}"/);
    // Envoy reads the bootstrap the init container wrote, from the same emptyDir.
    const envoy = allContainers(spec).find((c) => c.name === 'envoy')!;
    expect(envoy.image).toBe('envoyproxy/envoy:v1.40.0');
    // `--out-dir D` writes D/envoy.json (and the credential files beside it).
    const written = `${flag(text, 'out-dir')}/envoy.json`;
    expect(envoy.args.join(' ')).toContain(written);
    const dirOf = (c: Obj) =>
      (c.volumeMounts as Obj[]).find((m) => written.startsWith(`${m.mountPath}/`))?.name;
    expect(dirOf(envoy)).toBe(dirOf(init));
    expect((spec.volumes as Obj[]).find((v) => v.name === dirOf(init))?.emptyDir).toBeDefined();
  });
});

describe('Dockerfile and .dockerignore', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const lines = dockerfile.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#'));

  it('builds from node:20-slim, dependencies first, and runs as the non-root node user', () => {
    expect(lines[0]).toBe('FROM node:20-slim');
    const copies = lines.filter((l) => l.startsWith('COPY '));
    expect(copies[0]).toMatch(/^COPY package(\*|\.json package-lock)\.json \.\/$/);
    expect(lines.findIndex((l) => l.startsWith('RUN npm ci'))).toBeLessThan(lines.indexOf(copies[1]!));
    for (const c of copies) {
      for (const src of c.split(/\s+/).slice(1, -1))
        if (!src.includes('*')) expect(existsSync(join(ROOT, src)), src).toBe(true);
    }
    expect(lines.filter((l) => l.startsWith('USER ')).at(-1)).toBe('USER 1000:1000'); // `node`, numeric for runAsNonRoot
    expect(lines).toContain('ENTRYPOINT ["node", "bin/clinimesh.js"]');
    // The Kubernetes manifests run the CLI by its path in the image.
    expect(lines).toContain('WORKDIR /app');
    expect(script).toContain('node /app/bin/clinimesh.js');
    expect(lines.find((l) => l.startsWith('CMD '))).toMatch(/^CMD \["serve", /);
    // `npm ci --omit=dev` keeps what runs: tsx is a runtime dependency.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    if (lines.some((l) => l.includes('--omit=dev'))) expect(Object.keys(pkg.dependencies)).toContain('tsx');
  });

  it('keeps local state, keys, tests and history out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules', '.envoy', '.clinimesh', 'gen', 'bench/out', 'test', '.git'])
      expect(ignored, entry).toContain(entry);
  });
});

function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}
