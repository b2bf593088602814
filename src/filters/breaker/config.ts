import { z } from 'zod';

const headerName = z
  .string()
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be an HTTP header name (token characters)')
  .transform((s) => s.toLowerCase());

export const breakerConfig = z
  .strictObject({
    /** share of failed requests in the rolling window, in percent, above which the breaker opens */
    errorThresholdPercentage: z.int().min(1).max(100).default(50),
    /** requests in the window before the breaker may open at all (a few failures on a quiet route are not an outage) */
    volumeThreshold: z.int().min(1).max(1_000_000).default(20),
    rollingWindowMs: z.int().min(1_000).max(600_000).default(10_000),
    rollingBuckets: z.int().min(1).max(600).default(10),
    /** how long it stays open before one probe request is let through (half-open) */
    resetTimeoutMs: z.int().min(100).max(600_000).default(30_000),
    /** an upstream answer slower than this counts as a failure too; absent: only the status counts */
    slowCallMs: z.int().min(1).max(600_000).optional(),
    /** where a request's feature is read: a header, or a path template parameter */
    feature: z.union([z.strictObject({ header: headerName }), z.strictObject({ param: z.string().min(1) })]).optional(),
    /** the feature values that get a breaker of their own; any other value shares the route's */
    features: z.array(z.string().min(1).max(64)).max(100).optional(),
  })
  .superRefine((config, ctx) => {
    if (config.rollingWindowMs % config.rollingBuckets !== 0) {
      ctx.addIssue({ code: 'custom', path: ['rollingBuckets'], message: `must divide rollingWindowMs (${config.rollingWindowMs}) evenly` });
    }
    if (config.feature !== undefined && (config.features === undefined || config.features.length === 0)) {
      ctx.addIssue({ code: 'custom', path: ['features'], message: 'must list the feature values that get their own breaker: an open set would let clients create breakers at will' });
    }
    if (config.feature === undefined && config.features !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['feature'], message: 'must say where the feature is read (header or param) when features are listed' });
    }
  });

export type BreakerConfig = z.infer<typeof breakerConfig>;
