// The `securityEvents:` section (src/security/): the FDS stream and the disable rules.
import { z } from 'zod';
import { SUSPICIOUS_REASONS } from '../../pipeline/deny.js';
import { DEFAULTS } from '../defaults.js';
import { positiveInt } from './fields.js';

const RULE_NAME = /^[a-z0-9_.-]{1,64}$/;

const disableRule = z
  .strictObject({
    name: z.string().regex(RULE_NAME, 'must be 1-64 characters of a-z 0-9 _ . - (it is a metric label and goes into `by`)'),
    codes: z
      .array(
        z.string().refine((code) => Object.hasOwn(SUSPICIOUS_REASONS, code), {
          error: (issue) => `${JSON.stringify(issue.input)} is not a suspicious deny code (one of ${Object.keys(SUSPICIOUS_REASONS).join(', ')})`,
        }),
      )
      .min(1, 'must list at least one code'),
    threshold: positiveInt(10_000),
    windowSeconds: positiveInt(86_400),
    // only events proven to come from the account's key count: events at trust credential (a
    // replayable credential, a replay, a body cut by Envoy) are reported but never disable an account
    minTrust: z.enum(['verified']).default('verified'),
    reason: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
  });

export const securityEventsSection = z
  .strictObject({
    stream: z
      .strictObject({
        key: z.string().regex(/^[A-Za-z0-9:._{}-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 : . _ - { }').optional(),
        maxLen: positiveInt(100_000_000).default(DEFAULTS.securityStreamMaxLen),
      })
      .prefault({}),
    maxBuffered: positiveInt(1_000_000).default(DEFAULTS.securityMaxBuffered),
    batchSize: positiveInt(10_000).default(DEFAULTS.securityBatchSize),
    flushTimeoutMs: z.int().min(0).max(60_000).default(DEFAULTS.securityFlushTimeoutMs),
    rules: z.array(disableRule).default([]),
  })
  .superRefine((section, ctx) => {
    const seen = new Set<string>();
    section.rules.forEach((rule, i) => {
      if (seen.has(rule.name)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `rule ${rule.name} is defined twice` });
      seen.add(rule.name);
    });
  });
