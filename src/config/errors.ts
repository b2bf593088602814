// One error shape for every way a configuration can be wrong: the file (or "environment"), the
// line when known, the route (index and id) when the error is inside one, the field path relative
// to that route (or to the file), and a message. `format()` renders the one-line form operators see:
//
//   routes.yaml:14: routes[2] (id "accounts"): filters[0].headers.request.set.X-Foo: must not contain control characters

export interface ConfigErrorRoute {
  readonly index: number;
  readonly id?: string;
}

export interface ConfigError {
  /** the config file as given, or `environment` for an env-var override */
  readonly file: string;
  /** 1-based line in the file, when the error can be placed */
  readonly line?: number;
  /** set when the error is inside `routes[index]`; `field` is then relative to the route */
  readonly route?: ConfigErrorRoute;
  /** dotted path with [i] for list items, e.g. `filters[0].headers.request`; '' for the whole route/file */
  readonly field: string;
  readonly message: string;
  format(): string;
}

export interface ConfigErrorInit {
  readonly file: string;
  readonly line?: number | undefined;
  readonly route?: ConfigErrorRoute | undefined;
  readonly field: string;
  readonly message: string;
}

export function formatConfigError(e: ConfigErrorInit): string {
  let out = e.line === undefined ? `${e.file}: ` : `${e.file}:${e.line}: `;
  if (e.route) {
    out += `routes[${e.route.index}]`;
    if (e.route.id !== undefined) out += ` (id ${JSON.stringify(e.route.id)})`;
    out += ': ';
  }
  if (e.field !== '') out += `${e.field}: `;
  return out + e.message;
}

export function configError(init: ConfigErrorInit): ConfigError {
  const error: ConfigError = {
    file: init.file,
    field: init.field,
    message: init.message,
    ...(init.line === undefined ? {} : { line: init.line }),
    ...(init.route === undefined ? {} : { route: init.route }),
    format() {
      return formatConfigError(this);
    },
  };
  return Object.freeze(error);
}

/** Thrown by the throwing conveniences (`compileRouteTable`); carries every error, not just the first. */
export class ConfigValidationError extends Error {
  readonly errors: readonly ConfigError[];

  constructor(errors: readonly ConfigError[]) {
    super(`invalid configuration (${errors.length} error${errors.length === 1 ? '' : 's'}):\n${errors.map((e) => `  ${e.format()}`).join('\n')}`);
    this.name = 'ConfigValidationError';
    this.errors = errors;
  }
}

/** A path like ['routes', 2, 'filters', 0, 'headers'] as text: `routes[2].filters[0].headers`. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else {
      const text = String(key);
      if (/^[A-Za-z0-9_-]+$/.test(text)) out += out === '' ? text : `.${text}`;
      else out += `[${JSON.stringify(text)}]`;
    }
  }
  return out;
}
