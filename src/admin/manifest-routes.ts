// Changing manifests through the admin API: POST /v1/apply, POST /v1/delete and
// DELETE /v1/manifests/<Kind>/[<namespace>/]<name>. Every document is authorized before anything
// is applied; one forbidden document refuses the whole request. Changes land in the history.
// A body is either YAML (curl: `--data-binary @file.yaml`, named by `?file=`) or, from the CLI, JSON
// `{files: [{name, text}]}`: each file parsed under its own name, so problems carry its exact
// line:col and manifests keep it as their origin.
import type { ApplyOutcome } from '../xds/plan/control-plane.ts';
import { fail, type Problem, type Result } from '../errors.ts';
import { parseManifestSources, parseManifestText, type ManifestSource } from '../manifest/load.ts';
import { manifestId, type Manifest, type ManifestKind } from '../manifest/types.ts';
import type { ManifestRef } from '../store/store.ts';
import { authorizeManifests, scopeOf } from './authorize.ts';
import { commitNote } from './history.ts';
import type { AdminCall } from './deps.ts';
import { BODY_TOO_LARGE, readBody, send, sendProblems } from './respond.ts';

const KINDS: readonly ManifestKind[] = [
  'Mesh',
  'Service',
  'AccessPolicy',
  'TrafficPolicy',
  'ExternalService',
];

function refOf(m: Manifest): ManifestRef {
  return { kind: m.kind, name: m.name, namespace: 'namespace' in m ? m.namespace : undefined };
}

/** A delete is judged by what is stored (an AccessPolicy's destination), else by the ref itself. */
function deleteScopes(call: AdminCall, refs: readonly ManifestRef[]) {
  const { store } = call.deps.controlPlane;
  return refs.map((r) => scopeOf(store.get(manifestId(r)) ?? r));
}

/**
 * An apply is judged by what it writes and by what it replaces: an editor of A must not rewrite a
 * policy that protects B (say, re-point its destination into A) any more than delete it.
 */
function applyScopes(call: AdminCall, manifests: readonly Manifest[]) {
  const { store } = call.deps.controlPlane;
  return manifests.flatMap((m) => {
    const old = store.get(manifestId(m));
    return old ? [scopeOf(m), scopeOf(old)] : [scopeOf(m)];
  });
}

function finish(call: AdminCall, result: Result<ApplyOutcome>): void {
  const { deps, res } = call;
  deps.metrics.applies.inc({ result: result.ok ? 'ok' : 'rejected' });
  if (!result.ok) return sendProblems(res, result.errors);
  // The store wrote the history entry with the commit (a dry run or an identical apply has none).
  send(res, 200, result.value);
}

export async function applyOrDelete(call: AdminCall, action: 'apply' | 'delete'): Promise<void> {
  const { deps, req, res, url, principal } = call;
  const body = await readBody(req);
  if (body === undefined) return sendProblems(res, [BODY_TOO_LARGE], 413);
  const parsed = isJson(req.headers['content-type'])
    ? parseSources(body)
    : parseManifestText(body, url.searchParams.get('file') ?? '<request>');
  if (!parsed.ok) {
    deps.metrics.applies.inc({ result: 'invalid' });
    return sendProblems(res, parsed.errors, 400);
  }
  const refs = parsed.value.map(refOf);
  const forbidden = authorizeManifests(
    principal,
    action === 'apply' ? applyScopes(call, parsed.value) : deleteScopes(call, refs),
  );
  if (forbidden.length) {
    deps.metrics.applies.inc({ result: 'forbidden' });
    return sendProblems(res, forbidden, 403);
  }
  const dryRun = url.searchParams.get('dryRun') === 'true';
  const cp = deps.controlPlane;
  const note = commitNote(principal, action);
  const result =
    action === 'apply' ? await cp.apply(parsed.value, dryRun, note) : await cp.delete(refs, dryRun, note);
  return finish(call, result);
}

function isJson(contentType: string | undefined): boolean {
  return /^application\/json\b/i.test(contentType ?? '');
}

const SOURCES_SHAPE =
  'body must be JSON {"files": [{"name": "...", "text": "..."}]} (or send YAML as application/yaml)';

function sourcesOf(json: unknown): ManifestSource[] | undefined {
  const files = (json as { files?: unknown } | null)?.files;
  if (!Array.isArray(files) || files.length === 0) return undefined;
  const sources: ManifestSource[] = [];
  for (const f of files as unknown[]) {
    const { name, text } = (f ?? {}) as { name?: unknown; text?: unknown };
    if (typeof name !== 'string' || name === '' || typeof text !== 'string') return undefined;
    sources.push({ name, text });
  }
  return sources;
}

function parseSources(body: string): Result<Manifest[]> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return fail([{ code: 'SCHEMA', message: SOURCES_SHAPE }]);
  }
  const sources = sourcesOf(json);
  return sources ? parseManifestSources(sources) : fail([{ code: 'SCHEMA', message: SOURCES_SHAPE }]);
}

export async function deleteOne(
  call: AdminCall,
  kind: string,
  namespace: string | undefined,
  name: string,
): Promise<void> {
  if (!(KINDS as readonly string[]).includes(kind)) {
    const problem: Problem = {
      code: 'UNKNOWN_KIND',
      message: `no manifest kind ${kind}; one of ${KINDS.join(', ')}`,
    };
    return sendProblems(call.res, [problem], 400);
  }
  const ref: ManifestRef = { kind: kind as ManifestKind, name, namespace };
  const forbidden = authorizeManifests(call.principal, deleteScopes(call, [ref]));
  if (forbidden.length) return sendProblems(call.res, forbidden, 403);
  const dryRun = call.url.searchParams.get('dryRun') === 'true';
  const note = commitNote(call.principal, 'delete');
  return finish(call, await call.deps.controlPlane.delete([ref], dryRun, note));
}
