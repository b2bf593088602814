// The one table of the Prometheus families gatehouse exports. Whoever registers a family (telemetry,
// the stores, security) takes its name from here; docs/operations.md lists each one (a test keeps
// them equal) and test/deploy/alerts.test.ts finds every one in a running gatehouse's /metrics,
// where the chart's dashboard and alerts read them.
export const METRIC = {
  requests: 'gatehouse_requests_total',
  denials: 'gatehouse_denials_total',
  shadowDenials: 'gatehouse_shadow_denials_total',
  phaseDuration: 'gatehouse_phase_duration_seconds',
  requestProcessing: 'gatehouse_request_processing_seconds',
  streamsInFlight: 'gatehouse_streams_in_flight',
  filterActions: 'gatehouse_filter_actions_total',
  errors: 'gatehouse_errors_total',
  breakerState: 'gatehouse_breaker_state',
  breakerTransitions: 'gatehouse_breaker_transitions_total',
  configReloads: 'gatehouse_config_reloads_total',
  clientRegistryReloads: 'gatehouse_client_registry_reloads_total',
  buildInfo: 'gatehouse_build_info',
  storeUp: 'gatehouse_store_up',
  storeOperations: 'gatehouse_store_operations_total',
  storeOperationDuration: 'gatehouse_store_operation_duration_seconds',
  userApiCalls: 'gatehouse_user_api_calls_total',
  userApiCallDuration: 'gatehouse_user_api_call_duration_seconds',
  securityEvents: 'gatehouse_security_events_total',
  securityEventsWritten: 'gatehouse_security_events_written_total',
  securityEventsDropped: 'gatehouse_security_events_dropped_total',
  securityEventsBuffered: 'gatehouse_security_events_buffered',
  securityEventRetries: 'gatehouse_security_event_retries_total',
  securityAccountsDisabled: 'gatehouse_security_accounts_disabled_total',
  adminApiCalls: 'gatehouse_admin_api_calls_total',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];
