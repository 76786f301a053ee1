// A one-port Service manifest, discovered through Consul so that it needs no instances.
import { parseManifestText, type Manifest } from '../../../src/manifest/index.ts';

export function service(name: string, port: number, namespace = 'clinical'): Manifest {
  const parsed = parseManifestText(
    `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  ports: [{ name: http, port: ${port}, targetPort: 8080, protocol: http }]
  discovery: { mode: consul }
`,
    `${name}.yaml`,
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.value[0]!;
}
