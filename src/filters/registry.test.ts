// The registry, the order table and each filter's definition name the same filters: a filter added
// to one and not the others, or an order that is not its own key's, fails here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FILTER_NAMES, FILTER_ORDER } from '../pipeline/order.js';
import { FILTER_REGISTRY } from './registry.js';

test('the registry holds exactly FILTER_NAMES, each under its own name, at its FILTER_ORDER position', () => {
  assert.deepEqual([...FILTER_REGISTRY.keys()].sort(), [...FILTER_NAMES].sort());
  assert.deepEqual(Object.keys(FILTER_ORDER).sort(), [...FILTER_NAMES].sort());
  for (const [name, definition] of FILTER_REGISTRY) {
    assert.equal(definition.name, name);
    assert.equal(definition.order, FILTER_ORDER[name as keyof typeof FILTER_ORDER], `${name}'s order`);
  }
});
