// zod fields the schema's sections share: a value parser's answer as a field, bounded integers.
import { z } from 'zod';
import { compileRegex, parseHostPort, parseListenAddress, type Parsed } from '../values.js';

export const listenAddress = z.string().transform((text, ctx) => {
  const parsed = parseListenAddress(text);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({ code: 'custom', message: parsed.message });
  return z.NEVER;
});

export const positiveInt = (max: number) => z.int().min(1).max(max);

/** a string kept as written once `parse` accepts it; its message otherwise */
export const checkedString = (parse: (text: string) => Parsed<unknown>) =>
  z.string().superRefine((text, ctx) => {
    const parsed = parse(text);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message });
  });

export const regexString = z.string().superRefine((source, ctx) => {
  const compiled = compileRegex(source);
  if (!compiled.ok) ctx.addIssue({ code: 'custom', message: compiled.message });
});

export const hostPort = (defaultPort: number) =>
  z.string().transform((text, ctx) => {
    const parsed = parseHostPort(text, defaultPort);
    if (parsed.ok) return parsed.value;
    ctx.addIssue({ code: 'custom', message: parsed.message });
    return z.NEVER;
  });
