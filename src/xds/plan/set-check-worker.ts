// Runs the whole-set manifest check on a worker thread: the set arrives by structured clone, the
// problems go back the same way.
import { parentPort } from 'node:worker_threads';
import { checkManifestSet } from '../../manifest/index.ts';
import type { Manifest } from '../../manifest/types.ts';

parentPort?.on('message', (message: { id: number; manifests: Manifest[] }) => {
  parentPort?.postMessage({ id: message.id, problems: checkManifestSet(message.manifests) });
});
