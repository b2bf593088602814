// The `securityEvents:` section of the config as security/ reads it (config/schema.ts parses it).
import type { IdentityTrust } from '../pipeline/state.js';

export interface DisableRuleConfig {
  /** `by: "gatehouse-rule:<name>"` on the disabled-account record */
  readonly name: string;
  /** suspicious deny codes that count (SUSPICIOUS_REASONS in src/pipeline/deny.ts) */
  readonly codes: readonly string[];
  /** this many events of one subject within windowSeconds disable the account */
  readonly threshold: number;
  readonly windowSeconds: number;
  /** the least trusted subject that counts: verified, or credential (never a bare claim) */
  readonly minTrust: Exclude<IdentityTrust, 'claimed'>;
  /** written as the disabled record's reason */
  readonly reason: string;
}

export interface SecurityEventsConfig {
  /** the Redis Stream the FDS reads (stores.kind redis only) */
  readonly streamKey: string;
  /** XADD MAXLEN ~ this */
  readonly streamMaxLen: number;
  /** events waiting for Redis at most; past it new events are dropped and counted */
  readonly maxBuffered: number;
  /** events written per round trip batch */
  readonly batchSize: number;
  /** at shutdown, how long buffered events may take to reach Redis */
  readonly flushTimeoutMs: number;
  readonly rules: readonly DisableRuleConfig[];
}
