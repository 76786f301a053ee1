export { generateSidecar, upstreamServiceKeys } from './sidecar.ts';
export { generateLoadAssignment } from './endpoints.ts';
export { outboundClusterName, XDS_CLUSTER } from './names.ts';
export type { MeshView, Resource, SidecarRef, SidecarResources, XdsTransport } from './types.ts';
