export { generateSidecar, upstreamServiceKeys, type GenerateOptions } from './sidecar.ts';
export { generateLoadAssignment } from './endpoints.ts';
export { outboundClusterName, XDS_CLUSTER } from './names.ts';
export { TRUST_BUNDLE_SECRET, WORKLOAD_SECRET, generateSecrets } from './secrets.ts';
export type { MeshView, Resource, SidecarRef, SidecarResources, SidecarSecrets, XdsTransport } from './types.ts';
