// What a filter's config schema may use beyond zod, and the one function that parses a filter's
// config: filters/*/config.ts import from here (never from config/, which sits above them).
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';

/** What a reader of a file named in the config answers: its content, or a message naming the file. */
export type FileRead<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

/** the largest body a route may buffer: gatehouse holds it in memory for the request's lifetime */
export const MAX_BODY_BYTES_LIMIT = 64 * 1024 * 1024;

/** Where a filter's config is being parsed: relative file fields resolve against `configDir`. */
export interface FilterConfigScope {
  /** the config file's directory; undefined: relative paths stay relative to the working directory */
  readonly configDir: string | undefined;
}

// The scope of the parse under way. zod hands a transform no caller context, so parseFilterConfig
// (the only writer) sets it around one synchronous safeParse; nothing else can reach it.
let parsing: FilterConfigScope | undefined;

/**
 * Parses one filter's config with its schema, relative file fields resolved against the scope's
 * directory (as `tls` and `mtls.clientsFile` are): a path means the same file whatever the working
 * directory. Synchronous, so the scope cannot leak into another parse.
 */
export function parseFilterConfig<S extends z.ZodType>(schema: S, raw: unknown, scope: FilterConfigScope): ReturnType<S['safeParse']> {
  const outer = parsing;
  parsing = scope;
  try {
    return schema.safeParse(raw) as ReturnType<S['safeParse']>;
  } finally {
    parsing = outer;
  }
}

/**
 * A path in a filter's config to a file read when the config is loaded (and again on every reload),
 * relative to the config file's directory: `{ file, value }` with the resolved path, or a config
 * error at this field with the reader's message.
 */
export function fileReadAtLoad<T>(read: (file: string) => FileRead<T>) {
  return z
    .string()
    .min(1, 'must not be empty')
    .transform((written, ctx) => {
      const dir = parsing?.configDir;
      const file = isAbsolute(written) || dir === undefined ? written : join(dir, written);
      const result = read(file);
      if (result.ok) return { file, value: result.value };
      ctx.addIssue({ code: 'custom', message: result.message });
      return z.NEVER;
    });
}
