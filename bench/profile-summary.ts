// Summarises a .cpuprofile as two tables: self time by function, and inclusive time by the
// project's own source files (what a reader of src/ wants to know: which of our files is hot).
// Usage: npx tsx bench/profile-summary.ts bench/out/2000-sequential.cpuprofile [top]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

function label(n: ProfileNode): string {
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(src|bench|node_modules)\//, '$1/');
  return `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
}

function summarise(profile: Profile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);

  const selfByLabel = new Map<string, number>();
  const inclusiveBySrcFile = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    selfByLabel.set(label(node), (selfByLabel.get(label(node)) ?? 0) + us);
    // Charge each sample once to every distinct src/ file on its stack.
    const files = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const m = /\/(src\/[^?]+)/.exec(byId.get(cur)!.callFrame.url);
      if (m) files.add(m[1]!);
    }
    for (const f of files) inclusiveBySrcFile.set(f, (inclusiveBySrcFile.get(f) ?? 0) + us);
  }
  const pct = (us: number) =>
    `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms`;
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${pct(us)}  ${k}`);
  return [
    `sampled ${(total / 1000).toFixed(0)} ms over ${((profile.endTime - profile.startTime) / 1000).toFixed(0)} ms wall`,
    '',
    'self time by function:',
    ...rows(selfByLabel),
    '',
    'inclusive time by src/ file:',
    ...rows(inclusiveBySrcFile),
  ].join('\n');
}

const [file, top] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-summary.ts <file.cpuprofile> [top]');
  process.exit(2);
}
console.log(summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(top) || 25));
