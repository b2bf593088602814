// `headers`: set, append and remove request and response headers, from config. Envoy's own rules
// still apply downstream of us (it ignores edits of host, :authority, :method, :scheme and
// x-envoy-*), so the config schema refuses pseudo-headers rather than let them vanish silently.
import { CONTINUE, type FilterDefinition, type RequestContext } from '../../pipeline/types.js';
import type { HeaderEdits } from '../../pipeline/headers.js';
import { FILTER_ORDER } from '../../pipeline/order.js';
import { headersFilterConfig, type HeaderEditsConfig } from './config.js';

/** Compiled once at load: the edits as a flat list, replayed per request without allocation. */
function compileEdits(config: HeaderEditsConfig | undefined): (edits: HeaderEdits) => void {
  const removals = config?.remove ?? [];
  const sets = Object.entries(config?.set ?? {});
  const appends = Object.entries(config?.append ?? {});
  return (edits) => {
    for (const name of removals) edits.remove(name);
    for (const [name, value] of sets) edits.set(name, value);
    for (const [name, value] of appends) edits.append(name, value);
  };
}

function hasEdits(config: HeaderEditsConfig | undefined): boolean {
  return !!config && ((config.remove?.length ?? 0) > 0 || Object.keys(config.set ?? {}).length > 0 || Object.keys(config.append ?? {}).length > 0);
}

export const headersFilter: FilterDefinition<typeof headersFilterConfig> = {
  name: 'headers',
  order: FILTER_ORDER.headers,
  configSchema: headersFilterConfig,
  needs: (config) => ({ responseHeaders: hasEdits(config.response) }),
  create(config) {
    const editRequest = compileEdits(config.request);
    const editResponse = compileEdits(config.response);
    return {
      onRequestHeaders(ctx: RequestContext) {
        editRequest(ctx.requestEdits);
        return CONTINUE;
      },
      onResponseHeaders(ctx: RequestContext) {
        editResponse(ctx.responseEdits);
        return CONTINUE;
      },
    };
  },
};
