import { defineConfig } from 'vitest/config';
import { SummaryReporter } from './test/summary-reporter.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end suites start real Envoy processes; give them room but keep each bounded.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest would use one worker on two cores; most suites wait on Envoy and sockets, so two
    // workers halve the run (measured: 171 s → 78 s) without starving either.
    maxWorkers: 2,
    reporters: ['default', new SummaryReporter()],
  },
});
