// Filters that exist only in tests, to exercise what the production filters don't do yet (bodies,
// slowness, denials in each phase) through the real config, route table and adapters.
import { z } from 'zod';
import { FILTER_REGISTRY } from '../../src/filters/registry.js';
import { DENY_REASONS, type DenyReasonCode } from '../../src/pipeline/deny.js';
import { STATE } from '../../src/pipeline/state.js';
import { CONTINUE, type FilterDefinition, type Outcome, type RequestContext } from '../../src/pipeline/types.js';

const reason = z.enum(Object.keys(DENY_REASONS) as [DenyReasonCode, ...DenyReasonCode[]]);

const upperBody = {
  name: 'test-upper-body',
  order: 300,
  configSchema: z.strictObject({ response: z.boolean().default(false) }),
  needs: (c: { response: boolean }) => ({ requestBody: true, responseBody: c.response }),
  create: (c: { response: boolean }) => ({
    onRequestBody: (_ctx: unknown, body: Buffer) => ({ kind: 'replaceBody' as const, body: Buffer.from(`${body.toString('utf8').toUpperCase()}!`) }),
    ...(c.response ? { onResponseBody: (_ctx: unknown, body: Buffer) => ({ kind: 'replaceBody' as const, body: Buffer.from(`[${body.toString('utf8')}]`) }) } : {}),
  }),
} satisfies FilterDefinition;

const slow = {
  name: 'test-slow',
  order: 400,
  configSchema: z.strictObject({ delayMs: z.number().int().min(0) }),
  needs: () => ({}),
  create: (c: { delayMs: number }) => ({
    onRequestHeaders: (ctx: { signal: AbortSignal }) =>
      new Promise<Outcome>((resolve) => {
        const timer = setTimeout(() => { resolve(CONTINUE); }, c.delayMs);
        ctx.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(CONTINUE); });
      }),
  }),
} satisfies FilterDefinition;

const deny = {
  name: 'test-deny',
  order: 500,
  configSchema: z.strictObject({ phase: z.enum(['requestHeaders', 'responseHeaders']), reason }),
  needs: () => ({ responseHeaders: true }),
  create: (c: { phase: 'requestHeaders' | 'responseHeaders'; reason: DenyReasonCode }) => {
    const outcome: Outcome = { kind: 'deny', reason: c.reason, detail: `test-deny in ${c.phase}` };
    return c.phase === 'requestHeaders' ? { onRequestHeaders: () => outcome } : { onResponseHeaders: () => outcome };
  },
} satisfies FilterDefinition;

/**
 * Vouches for the subject named in the request's `x-test-subject` header, in `signed`'s place: many
 * users' passports without a signed credential each (the user API fault test). Never in production.
 */
export const TEST_SUBJECT_HEADER = 'x-test-subject';
const identity = {
  name: 'test-identity',
  order: 300,
  configSchema: z.strictObject({}),
  needs: () => ({}),
  create: () => ({
    onRequestHeaders: (ctx: RequestContext): Outcome => {
      const subject = ctx.requestHeaders.get(TEST_SUBJECT_HEADER);
      if (subject === undefined) return { kind: 'deny', reason: 'signature_missing', detail: `test-identity: no ${TEST_SUBJECT_HEADER}` };
      ctx.state.set(STATE.signedIdentity, { subject, deviceId: `device-of-${subject}`, integrityLevel: 'strong', keyId: `key-of-${subject}` });
      return CONTINUE;
    },
  }),
} satisfies FilterDefinition;

export const TEST_REGISTRY: ReadonlyMap<string, FilterDefinition> = new Map<string, FilterDefinition>([
  ...FILTER_REGISTRY,
  ...[upperBody, slow, deny, identity].map((d): [string, FilterDefinition] => [d.name, d as unknown as FilterDefinition]),
]);
