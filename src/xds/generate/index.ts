export { generateSidecar, upstreamServiceKeys, type GenerateOptions } from './sidecar.ts';
export { generateLoadAssignment } from './endpoints.ts';
export { outboundClusterName, XDS_CLUSTER } from './names.ts';
export {
  DEFAULT_SDS_DIR,
  SECRET_TYPE,
  TRUST_BUNDLE_SECRET,
  WORKLOAD_SECRET,
  fileSecretSource,
  generateTrustBundle,
  secretFileName,
} from './secrets.ts';
export type { MeshView, Resource, SidecarRef, SidecarResources, XdsTransport } from './types.ts';
