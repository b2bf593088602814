// Key files whose private halves are published in this repository (config/*.dev-only.*): the
// embedded development default uses them so `npm start` works on a fresh machine. Anyone can sign
// passports, credentials or decrypt bodies with them, so any other config naming one is refused.

/** the mark every such file carries in its name */
export const DEV_ONLY_MARK = '.dev-only.';

/** The dev-only files a config's filters name (defaults.filters and every route's), in order, once each. */
export function devOnlyFilesIn(config: { readonly defaults: { readonly filters: readonly { readonly config: unknown }[] }; readonly routes: readonly { readonly filters: readonly { readonly config: unknown }[] }[] }): string[] {
  const found = new Set<string>();
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      if (value.includes(DEV_ONLY_MARK)) found.add(value);
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item);
    } else if (typeof value === 'object' && value !== null) {
      for (const item of Object.values(value)) visit(item);
    }
  };
  for (const entry of config.defaults.filters) visit(entry.config);
  for (const route of config.routes) for (const entry of route.filters) visit(entry.config);
  return [...found];
}
