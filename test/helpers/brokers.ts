// Real message brokers for tests: `describe` wrappers that skip with a printed reason locally and fail
// in CI when a broker is missing (scripts/ensure-brokers.mjs installs them), and the front door to
// startRabbitMq / startKafka.
import { describe } from 'vitest';
import { kafkaFound, rabbitMqFound } from './broker-install.ts';
import { envoyBin } from './envoy.ts';

export { kafkaFound, rabbitMqFound } from './broker-install.ts';
export { startRabbitMq, type RabbitMq, type StartRabbitMqOptions } from './rabbitmq.ts';
export {
  startKafka,
  type Kafka,
  type KafkaNode,
  type KafkaNodeOptions,
  type StartKafkaOptions,
} from './kafka.ts';

export interface Needs {
  readonly rabbitmq?: boolean;
  readonly kafka?: boolean;
  /** Real Envoy too (mesh suites). */
  readonly envoy?: boolean;
}

function missing(needs: Needs): string[] {
  const reasons: string[] = [];
  if (needs.rabbitmq && 'problem' in rabbitMqFound) reasons.push(rabbitMqFound.problem);
  if (needs.kafka && 'problem' in kafkaFound) reasons.push(kafkaFound.problem);
  if (needs.envoy && !envoyBin) reasons.push('Envoy not found (set ENVOY_BIN or run npm run envoy)');
  return reasons;
}

/** `describe` when every part in `needs` is here; otherwise skips with a printed reason, or throws in CI. */
export function describeWithBrokers(name: string, needs: Needs, fn: () => void): void {
  const reasons = missing(needs);
  if (reasons.length === 0) {
    describe(name, fn);
    return;
  }
  const reason = reasons.join('; ');
  if (process.env.CI === 'true') throw new Error(`${name}: ${reason}; CI=true requires the real brokers`);
  console.warn(`skipping ${name}: ${reason}`);
  describe.skip(name, fn);
}

export const describeWithRabbitMq = (name: string, fn: () => void, needs: Needs = {}): void =>
  describeWithBrokers(name, { ...needs, rabbitmq: true }, fn);

export const describeWithKafka = (name: string, fn: () => void, needs: Needs = {}): void =>
  describeWithBrokers(name, { ...needs, kafka: true }, fn);
