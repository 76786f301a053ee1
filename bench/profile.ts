// Opt-in CPU profiling of one benchmark phase at a time (BENCH_PROFILE=1), through the inspector of
// this very process, so a profile shows the control plane during exactly one measurement rather
// than a whole run dominated by start-up. Profiles land in bench/out/ (git-ignored); read them in
// Chrome DevTools or summarise them with `npx tsx bench/profile-summary.ts <file>`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';

const OUT = fileURLToPath(new URL('./out/', import.meta.url));
const enabled = process.env.BENCH_PROFILE === '1';
let session: Session | undefined;

export async function profiled<T>(name: string, run: () => Promise<T>): Promise<T> {
  if (!enabled) return run();
  if (!session) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
  }
  await session.post('Profiler.start');
  try {
    return await run();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(OUT, { recursive: true });
    const file = `${OUT}${name}.cpuprofile`;
    writeFileSync(file, JSON.stringify(profile));
    console.log(`profile written to ${file}`);
  }
}
