// The `securityEvents:` section of the config as security/ reads it (config/schema/security.ts parses it).

export interface DisableRuleConfig {
  /** `by: "gatehouse-rule:<name>"` on the disabled-account record */
  readonly name: string;
  /** suspicious deny codes that count (SUSPICIOUS_REASONS in src/pipeline/deny.ts) */
  readonly codes: readonly string[];
  /** this many events of one subject within windowSeconds disable the account */
  readonly threshold: number;
  readonly windowSeconds: number;
  /**
   * the least trusted subject that counts: only `verified` (src/security/events.ts). Events at
   * `credential` come from something anyone who saw a request can replay, or from gatehouse's own
   * limits: they are reported, never counted towards disabling an account.
   */
  readonly minTrust: 'verified';
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
