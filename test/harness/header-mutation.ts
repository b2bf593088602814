// ext_proc's HeaderMutation / BodyMutation application
// (source/extensions/filters/http/ext_proc/mutation_utils.cc). Catalogue 5.1–5.18, 6.1.
import type { HeaderMutation as ExtProcHeaderMutation, BodyMutation } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { HeaderMap } from './headers.js';
import { headerNameIsValid, headerValueIsValid, type MutationChecker } from './mutation-checker.js';

export interface HeaderLimits {
  maxHeadersCount: number;
  maxHeadersKb: number;
}

export interface MutationCounters {
  rejected_header_mutations: number;
}

/** Returns undefined on success, or the error text (already in Envoy's details form). */
export function applyHeaderMutation(
  mutation: ExtProcHeaderMutation,
  headers: HeaderMap,
  opts: {
    replacingMessage: boolean; // CONTINUE_AND_REPLACE on a headers answer (5.14)
    checker: MutationChecker;
    counters: MutationCounters;
    removeContentLength: boolean; // 5.15
    limits: HeaderLimits;
  },
): string | undefined {
  const { checker, counters, limits } = opts;
  // 5.6: operation counts against the header map's max count, before anything is applied.
  if (mutation.removeHeaders.length > limits.maxHeadersCount || mutation.setHeaders.length > limits.maxHeadersCount) {
    counters.rejected_header_mutations++;
    return 'header_mutation_operation_count_exceeds_limit';
  }
  // 5.1: all removes first.
  for (const name of mutation.removeHeaders) {
    if (!headerNameIsValid(name)) {
      counters.rejected_header_mutations++;
      return 'header_mutation_remove_contains_invalid_character';
    }
    switch (checker.check('remove', name, '')) {
      case 'ok':
        headers.remove(name); // 5.16: absent → no-op
        break;
      case 'ignore':
        counters.rejected_header_mutations++;
        break;
      case 'fail':
        counters.rejected_header_mutations++;
        return 'header_mutation_remove_headers_failed';
    }
  }
  for (const sh of mutation.setHeaders) {
    if (sh.header === undefined) continue; // 5.4
    // 5.2: only raw_value is read; `value` is ignored.
    const value = Buffer.from(sh.header.rawValue).toString('latin1');
    const key = sh.header.key;
    if (!headerNameIsValid(key) || !headerValueIsValid(value)) {
      counters.rejected_header_mutations++;
      return 'header_mutation_set_contains_invalid_character';
    }
    const name = key.toLowerCase();
    if (opts.removeContentLength && name === 'content-length') continue; // 5.15
    // 5.3: deprecated `append` BoolValue only; append_action / keep_empty_value ignored.
    const append = sh.append ?? false;
    const op = append && headers.has(name) ? 'append' : 'set';
    let result = checker.check(op, name, value);
    if (opts.replacingMessage && name === ':method') result = 'ok'; // 5.14
    switch (result) {
      case 'ok':
        if (append) headers.add(name, value);
        else headers.set(name, value);
        break;
      case 'ignore':
        counters.rejected_header_mutations++;
        break;
      case 'fail':
        counters.rejected_header_mutations++;
        return 'header_mutation_set_headers_failed';
    }
  }
  // 5.7: result size / count.
  if (headers.byteSize() > limits.maxHeadersKb * 1024 || headers.size > limits.maxHeadersCount) {
    counters.rejected_header_mutations++;
    return 'header_mutation_result_exceeds_limit';
  }
  return undefined;
}

/** MutationUtils::applyBodyMutations (6.1): body replaces, clear_body:true empties, else unchanged. */
export function applyBodyMutation(mutation: BodyMutation, data: Buffer): Buffer {
  switch (mutation.mutation.case) {
    case 'body':
      return Buffer.from(mutation.mutation.value);
    case 'clearBody':
      return mutation.mutation.value ? Buffer.alloc(0) : data;
    case undefined:
      return data;
  }
}
