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

/** No config file: a relative path is read as written (the JSON Schema, tests, a hand-made config without a source). */
export const AS_WRITTEN: FilterConfigScope = Object.freeze({ configDir: undefined });

/** A filter's config schema for a config file in a given directory (a filter whose config names files). */
export type SchemaIn<S extends z.ZodType> = (scope: FilterConfigScope) => S;

/**
 * `build` made once per scope: a load's entries share its scope object, so a route table's filter
 * entries share one schema rather than build one each. zod hands a transform no caller context,
 * which is why a schema that reads files is a function of its scope.
 */
export function schemaPerScope<S extends z.ZodType>(build: SchemaIn<S>): SchemaIn<S> {
  const built = new WeakMap<FilterConfigScope, S>();
  return (scope) => {
    let schema = built.get(scope);
    if (schema === undefined) {
      schema = build(scope);
      built.set(scope, schema);
    }
    return schema;
  };
}

/**
 * Parses one filter's config with its schema for the scope, relative file fields resolved against
 * the scope's directory (as `tls` and `mtls.clientsFile` are): a path means the same file whatever
 * the working directory.
 */
export function parseFilterConfig<S extends z.ZodType>(schemaIn: SchemaIn<S>, raw: unknown, scope: FilterConfigScope): ReturnType<S['safeParse']> {
  return schemaIn(scope).safeParse(raw) as ReturnType<S['safeParse']>;
}

/** A filter definition's schema for the scope: its own per-scope schema when it reads files, else its one schema. */
export function configSchemaIn<S extends z.ZodType>(definition: { readonly configSchema: S; readonly configSchemaIn?: SchemaIn<S> }): SchemaIn<S> {
  return definition.configSchemaIn ?? (() => definition.configSchema);
}

/**
 * A path in a filter's config to a file read when the config is loaded (and again on every reload),
 * relative to the scope's config file directory: `{ file, value }` with the resolved path, or a
 * config error at this field with the reader's message.
 */
export function fileReadAtLoad<T>(read: (file: string) => FileRead<T>, scope: FilterConfigScope) {
  const dir = scope.configDir;
  return z
    .string()
    .min(1, 'must not be empty')
    .transform((written, ctx) => {
      const file = isAbsolute(written) || dir === undefined ? written : join(dir, written);
      const result = read(file);
      if (result.ok) return { file, value: result.value };
      ctx.addIssue({ code: 'custom', message: result.message });
      return z.NEVER;
    });
}
