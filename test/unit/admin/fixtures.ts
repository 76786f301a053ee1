// Manifests for the admin API suites: Services in namespaces of our choosing, each instance on its
// own loopback address so no two bind the same socket.
import { loopbackAddress } from '../../helpers/ports.ts';

export function serviceYaml(namespace: string, name: string): string {
  const address = loopbackAddress();
  return `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  ports:
    - { name: http, port: 15001, targetPort: 8080, protocol: http }
  instances:
    - { name: ${name}-1, address: ${address}, appAddress: ${address} }
`;
}

export const meshYaml = `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec:
  trustDomain: cluster.local
`;
