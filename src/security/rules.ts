// Disable rules: "N events of these codes for one subject within W seconds → disable the account".
// The count is shared by every replica when the stores are Redis: one sorted set per (subject, rule),
// scored by Redis' own clock (replicas' clocks may differ), trimmed to the window and to a cap, with
// an expiry of one window; each event adds its own random id, so a retried write never counts twice
// and a client that repeats its x-request-id cannot dodge the count. In memory (one process) the
// same window is a list of times per (subject, rule).
import type { DisableRuleConfig } from './config.js';
import type { KeyLayout } from '../stores/keys.js';
import type { RedisConnection } from '../stores/redis.js';
import { storeFailure, type AccountStatus, type StoreFailure, type StoreWrite } from '../stores/types.js';
import type { SecurityEvent } from './events.js';

export type WindowCount = { readonly ok: true; readonly count: number } | StoreFailure;

export interface RuleWindows {
  /**
   * Adds event `eventId` to (subject, rule) and answers how many events the window holds now
   * (capped at `cap`: enough to compare with the threshold).
   */
  add(subject: string, rule: string, eventId: string, windowMs: number, cap: number): Promise<WindowCount>;
  /** forgets the subject's windows (an operator re-enabled the account: start counting afresh) */
  clear(subject: string, rules: readonly string[]): Promise<StoreWrite>;
}

// KEYS[1] window; ARGV: event id, window ms, cap. Server time, so every replica scores alike.
const ADD_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local n = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[3])
if n > cap then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap - 1)
  n = cap
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
`;

export class RedisRuleWindows implements RuleWindows {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyLayout,
  ) {}

  async add(subject: string, rule: string, eventId: string, windowMs: number, cap: number): Promise<WindowCount> {
    const key = this.keys.ruleWindow(subject, rule);
    const answer = await this.redis.call('security', 'count', (client) => client.eval(ADD_SCRIPT, 1, key, eventId, windowMs, cap), () => 'ok');
    if (!answer.ok) return answer;
    return typeof answer.value === 'number' ? { ok: true, count: answer.value } : storeFailure('corrupt', `rule window script answered ${typeof answer.value}`);
  }

  async clear(subject: string, rules: readonly string[]): Promise<StoreWrite> {
    if (rules.length === 0) return { ok: true };
    // one hash tag: every key of a subject is in one slot, so one DEL works on a Cluster too
    const keys = rules.map((rule) => this.keys.ruleWindow(subject, rule));
    const answer = await this.redis.call('security', 'clear', (client) => client.del(...keys), () => 'ok');
    return answer.ok ? { ok: true } : answer;
  }
}

/** at most this many (subject, rule) windows in memory; the oldest is forgotten first */
const MEMORY_WINDOWS = 100_000;

export class MemoryRuleWindows implements RuleWindows {
  private readonly windows = new Map<string, number[]>();

  constructor(private readonly now: () => number = Date.now) {}

  add(subject: string, rule: string, _eventId: string, windowMs: number, cap: number): Promise<WindowCount> {
    const key = `${rule}\u0000${subject}`;
    const now = this.now();
    const times = (this.windows.get(key) ?? []).filter((t) => t > now - windowMs);
    times.push(now);
    if (times.length > cap) times.splice(0, times.length - cap);
    this.windows.delete(key);
    if (this.windows.size >= MEMORY_WINDOWS) {
      const oldest = this.windows.keys().next();
      if (oldest.done !== true) this.windows.delete(oldest.value);
    }
    this.windows.set(key, times);
    return Promise.resolve({ ok: true, count: times.length });
  }

  clear(subject: string, rules: readonly string[]): Promise<StoreWrite> {
    for (const rule of rules) this.windows.delete(`${rule}\u0000${subject}`);
    return Promise.resolve({ ok: true });
  }
}

const TRUST_RANK = { verified: 2, credential: 1, claimed: 0, none: -1 } as const;

/** `by` of a disabled-account record written by a rule */
export const ruleAuthor = (rule: string): string => `gatehouse-rule:${rule}`;

export interface RuleOutcome {
  /** false: a store could not answer; apply again later */
  readonly done: boolean;
  /** the rules that disabled the subject's account with this event */
  readonly disabledBy: readonly DisableRuleConfig[];
}

export class DisableRules {
  constructor(
    readonly rules: readonly DisableRuleConfig[],
    private readonly windows: RuleWindows,
    private readonly accounts: AccountStatus,
    private readonly now: () => number = Date.now,
  ) {}

  /** the rules this event counts for: its code, a subject, trusted enough */
  matching(event: SecurityEvent): DisableRuleConfig[] {
    if (event.subject === undefined) return [];
    return this.rules.filter((rule) => rule.codes.includes(event.code) && TRUST_RANK[event.trust] >= TRUST_RANK[rule.minTrust]);
  }

  /** counts the event for each rule it matches; a rule past its threshold disables the account (once) */
  async apply(event: SecurityEvent, eventId: string, rules: readonly DisableRuleConfig[]): Promise<RuleOutcome> {
    const subject = event.subject;
    if (subject === undefined || rules.length === 0) return { done: true, disabledBy: [] };
    let done = true;
    const disabledBy: DisableRuleConfig[] = [];
    for (const rule of rules) {
      const counted = await this.windows.add(subject, rule.name, eventId, rule.windowSeconds * 1000, rule.threshold);
      if (!counted.ok) {
        done = false;
        continue;
      }
      if (counted.count < rule.threshold) continue;
      // already disabled (by this rule on another replica, an earlier event, or an operator): keep that record
      const current = await this.accounts.isDisabled(subject);
      if (!current.ok) {
        done = false;
        continue;
      }
      if (current.disabled !== undefined) continue;
      const written = await this.accounts.disable(subject, rule.reason, ruleAuthor(rule.name), this.now());
      if (!written.ok) {
        done = false;
        continue;
      }
      disabledBy.push(rule);
    }
    return { done, disabledBy };
  }

  /** an operator re-enabled the account: its windows start empty */
  clear(subject: string): Promise<StoreWrite> {
    return this.windows.clear(subject, this.rules.map((r) => r.name));
  }
}
