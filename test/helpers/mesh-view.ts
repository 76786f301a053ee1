// The MeshView the control plane builds (ControlPlane.view) from manifest text: the state the store
// makes of it, with the static endpoints of each statically discovered service.
import { readFileSync } from 'node:fs';
import { staticEndpoints } from '../../src/discovery/static.ts';
import type { EndpointSet } from '../../src/discovery/endpoints.ts';
import { parseManifestText } from '../../src/manifest/index.ts';
import { StateStore } from '../../src/store/store.ts';
import type { MeshView } from '../../src/xds/generate/types.ts';
import { valueOf } from '../unit/manifest/helpers.ts';

export function meshViewOfText(text: string, file: string): MeshView {
  const manifests = valueOf(parseManifestText(text, file));
  const { state } = valueOf(new StateStore().propose({ apply: manifests }));
  const endpoints = new Map<string, EndpointSet>();
  for (const [key, service] of state.services)
    if (service.discovery.mode === 'static') endpoints.set(key, staticEndpoints(service));
  return {
    mesh: state.mesh,
    services: state.services,
    endpoints,
    policies: state.policies,
    traffic: state.traffic,
    externals: state.externals,
  };
}

export const meshViewOfFile = (file: string): MeshView => meshViewOfText(readFileSync(file, 'utf8'), file);
