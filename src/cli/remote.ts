// Commands that talk to a running control plane's admin API: apply, delete, status, config-dump.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProblemJson {
  text?: string;
  message?: string;
}

async function yamlFiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const entries = (await readdir(path)).sort();
  const nested = await Promise.all(entries.map((e) => yamlFiles(join(path, e))));
  return nested.flat().filter((f) => /\.ya?ml$/.test(f));
}

async function call(admin: string, method: string, path: string, body?: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${admin}${path}`, { method, body, headers: body ? { 'content-type': 'application/yaml' } : {} });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch {
    return { status: res.status, json: text };
  }
}

function printErrors(json: unknown): void {
  const errors = (json as { errors?: ProblemJson[] }).errors ?? [];
  for (const e of errors) console.error(e.text ?? e.message);
}

export async function remoteCommand(name: string, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      admin: { type: 'string', default: process.env.CLINIMESH_ADMIN ?? 'http://127.0.0.1:19000' },
      filename: { type: 'string', short: 'f', multiple: true },
      'dry-run': { type: 'boolean', default: false },
      node: { type: 'string' },
    },
  });
  const admin = values.admin;
  if (name === 'apply' || name === 'delete') {
    const files = (await Promise.all((values.filename ?? positionals).map(yamlFiles))).flat();
    if (files.length === 0) {
      console.error(`clinimesh ${name} -f FILE|DIR… [--dry-run] [--admin URL]`);
      return 2;
    }
    // One request for all files, so the whole set is applied atomically or not at all.
    const texts = await Promise.all(files.map(async (f) => `# file: ${f}\n${await readFile(f, 'utf8')}`));
    const query = `?dryRun=${values['dry-run']}&file=${encodeURIComponent(files.length === 1 ? files[0]! : '<files>')}`;
    const { status, json } = await call(admin, 'POST', `/v1/${name}${query}`, texts.join('\n---\n'));
    if (status !== 200) {
      printErrors(json);
      return 1;
    }
    console.log(JSON.stringify(json, null, 2));
    return 0;
  }
  const path = name === 'status' ? '/v1/status' : `/v1/config_dump${values.node ? `?node=${encodeURIComponent(values.node)}` : ''}`;
  const { status, json } = await call(admin, 'GET', path);
  console.log(JSON.stringify(json, null, 2));
  return status === 200 ? 0 : 1;
}
