import { z } from 'zod';
import { breakerOptionsSchema, checkBreakerWindow } from '../../pipeline/services.js';

const headerName = z
  .string()
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be an HTTP header name (token characters)')
  .transform((s) => s.toLowerCase());

export const breakerConfig = breakerOptionsSchema
  .extend({
    /** where a request's feature is read: a header, or a path template parameter */
    feature: z.union([z.strictObject({ header: headerName }), z.strictObject({ param: z.string().min(1) })]).optional(),
    /** the feature values that get a breaker of their own; any other value shares the route's */
    features: z.array(z.string().min(1).max(64)).max(100).optional(),
  })
  .superRefine((config, ctx) => {
    checkBreakerWindow(config, ctx);
    if (config.feature !== undefined && (config.features === undefined || config.features.length === 0)) {
      ctx.addIssue({ code: 'custom', path: ['features'], message: 'must list the feature values that get their own breaker: an open set would let clients create breakers at will' });
    }
    if (config.feature === undefined && config.features !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['feature'], message: 'must say where the feature is read (header or param) when features are listed' });
    }
  });

export type BreakerConfig = z.infer<typeof breakerConfig>;
