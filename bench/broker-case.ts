// What a broker case of `npm run bench:brokers` is: a broker started on loopback with two ways to
// reach it (`direct` and `mesh`), each able to publish a load and consume it all.
export interface LoadPlan {
  readonly messages: number;
  /** At most this many published but not yet confirmed (acked) by the broker. */
  readonly window: number;
  /** Paced publishing; absent: as fast as the window allows. */
  readonly ratePerSec?: number;
  readonly bytes: number;
}

export interface LoadResult {
  readonly messages: number;
  /** From the first publish to the last message consumed. */
  readonly seconds: number;
  readonly latenciesMs: readonly number[];
}

/** One way to reach the broker: publish `plan.messages` and consume them all. */
export interface BrokerPath {
  run(plan: LoadPlan): Promise<LoadResult>;
}

export interface BrokerBench {
  /** Broker name and version, for the report. */
  readonly broker: string;
  /** How the case publishes and consumes, for the report. */
  readonly notes: string;
  readonly direct: BrokerPath;
  readonly mesh: BrokerPath;
  stop(): Promise<void>;
}

export interface BrokerCase {
  readonly name: string;
  /** Why the case cannot run here (a missing broker or Envoy), or undefined. */
  readonly missing?: () => string | undefined;
  start(): Promise<BrokerBench>;
}
