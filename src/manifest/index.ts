// The manifest module: YAML manifests → validated, positioned model.
export { parseManifestText, loadManifests } from './load.ts';
export { checkManifestSet } from './check-set.ts';
export { DEFAULT_MESH, MESH_DEFAULTS } from './schema-mesh.ts';
export { HTTP_METHODS } from './schema-access-policy.ts';
export { SERVICE_DEFAULTS } from './schema-service.ts';
export { parseDuration } from './field-values.ts';
export * from './types.ts';
