// Turning zod issues and our own checks into ConfigErrors: the route (index and id) split off the
// path, a message that says what was expected and what was found, and a line when the YAML
// document is at hand.
import type { z } from 'zod';
import { configError, formatFieldPath, type ConfigError } from './errors.js';

/** An issue with its path from the config root; either our own message or a zod issue to describe. */
export interface RawIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly zod?: z.core.$ZodIssue;
}

export type Locate = (path: readonly PropertyKey[]) => number | undefined;
/** the keys a strict object allows at a path, for "unknown key" messages */
export type AllowedKeys = (path: readonly PropertyKey[]) => readonly string[] | undefined;

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value;
}

const EXPECTED: Record<string, string> = {
  object: 'a map',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  record: 'a map',
};

function zodMessage(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'is required';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, got ${describeValue(value)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(value)}`;
    case 'too_small':
      if (issue.origin === 'array') return issue.message.startsWith('Too small') ? `must have at least ${String(issue.minimum)} item(s)` : issue.message;
      if (issue.origin === 'string') return issue.message.startsWith('Too small') ? `must be at least ${String(issue.minimum)} character(s)` : issue.message;
      return `must be ${issue.inclusive === false ? 'more than' : 'at least'} ${String(issue.minimum)}, got ${describeValue(value)}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${String(issue.maximum)} item(s)`;
      if (issue.origin === 'string') return `must be at most ${String(issue.maximum)} character(s)`;
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}, got ${describeValue(value)}`;
    case 'invalid_format':
      return issue.message.startsWith('Invalid') ? `must be a valid ${issue.format}, got ${describeValue(value)}` : issue.message;
    case 'unrecognized_keys':
    case 'not_multiple_of':
    case 'invalid_union':
    case 'invalid_key':
    case 'invalid_element':
    case 'custom':
      return issue.message;
  }
}

/**
 * @param root the config as written (parsed YAML), to find route ids and describe bad values
 * @param locate line lookup in the YAML document, when there is one
 */
export function issuesToErrors(file: string, root: unknown, issues: readonly RawIssue[], locate?: Locate, allowedKeys?: AllowedKeys): ConfigError[] {
  const out: ConfigError[] = [];
  const push = (path: readonly PropertyKey[], message: string) => {
    let route: { index: number; id?: string } | undefined;
    let fieldPath = path;
    if (path[0] === 'routes' && typeof path[1] === 'number') {
      const id = valueAt(root, ['routes', path[1], 'id']);
      route = typeof id === 'string' ? { index: path[1], id } : { index: path[1] };
      fieldPath = path.slice(2);
    }
    out.push(configError({ file, line: locate?.(path), route, field: formatFieldPath(fieldPath), message }));
  };
  for (const issue of issues) {
    let zod = issue.zod;
    // a filter's own schema issue, wrapped by the route schema (schema/routes.ts filterEntry): describe the inner one
    const inner: unknown = zod?.code === 'custom' ? (zod.params as { filterIssue?: unknown } | undefined)?.filterIssue : undefined;
    if (inner !== undefined) zod = inner as z.core.$ZodIssue;
    if (zod?.code === 'unrecognized_keys') {
      const path = issue.path;
      const allowed = allowedKeys?.(path);
      for (const key of zod.keys) push([...path, key], allowed ? `unknown key; allowed here: ${allowed.join(', ')}` : 'unknown key');
    } else if (zod) {
      push(issue.path, zodMessage(zod, valueAt(root, issue.path)));
    } else {
      push(issue.path, issue.message);
    }
  }
  // in file order (stable: errors on one line keep the schema's order)
  return out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}
