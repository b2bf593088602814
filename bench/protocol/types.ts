// What each protocol benchmark module (bench/protocol/*.bench.ts, default export) returns, so that
// `npm run bench` can print the protocol layer's cost beside the raw cost of its primitives.
export interface ProtocolBenchRow {
  /** e.g. "verify signed request (credential cached)" */
  operation: string;
  /** measured on one core, operations per second */
  opsPerSec: number;
  /** the node:crypto primitives the operation cannot avoid, measured in the same run */
  primitive: { description: string; opsPerSec: number };
  /** primitive time / operation time as a cost ratio: opCost / primitiveCost = primitive.opsPerSec / opsPerSec */
  overheadRatio: number;
  /** present: shown for context and not held to the goal; says why */
  informational?: string;
}

export type ProtocolBench = () => Promise<ProtocolBenchRow[]>;
