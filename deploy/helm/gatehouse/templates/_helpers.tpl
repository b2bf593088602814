{{/* Names, labels and the facts several templates share (one place each). */}}

{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gatehouse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "gatehouse.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "gatehouse.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gatehouse.labels" -}}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Service's cluster-local host name: the authority Envoy sends, the DestinationRule's host. */}}
{{- define "gatehouse.host" -}}
{{- printf "%s.%s.svc.cluster.local" (include "gatehouse.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* The outbound cluster Istio builds for the Service's grpc port. */}}
{{- define "gatehouse.cluster" -}}
{{- printf "outbound|%d||%s" (int .Values.ports.grpc) (include "gatehouse.host" .) -}}
{{- end -}}

{{/*
The cluster the gateway's ext_proc filter calls: the Service's, or one of the DestinationRule's
canary subsets (canary.target), which Istio names outbound|<port>|<subset>|<host>.
*/}}
{{- define "gatehouse.extProcCluster" -}}
{{- $target := .Values.canary.target | default "all" -}}
{{- if not (has $target (list "all" "stable" "canary")) -}}
{{- fail (printf "canary.target %q: use all, stable or canary" $target) -}}
{{- end -}}
{{- if eq $target "all" -}}
{{- include "gatehouse.cluster" . -}}
{{- else -}}
{{- if not .Values.canary.enabled -}}{{- fail (printf "canary.target %q needs canary.enabled" $target) -}}{{- end -}}
{{- if ne .Values.istio.mode "extProc" -}}{{- fail (printf "canary.target %q needs istio.mode extProc (istiod's ext_authz provider calls the Service, not a subset)" $target) -}}{{- end -}}
{{- if not .Values.istio.destinationRule.enabled -}}{{- fail (printf "canary.target %q needs istio.destinationRule.enabled (its subsets make the cluster)" $target) -}}{{- end -}}
{{- printf "outbound|%d|%s|%s" (int .Values.ports.grpc) $target (include "gatehouse.host" .) -}}
{{- end -}}
{{- end -}}

{{/* message_timeout / timeout as a protobuf Duration string ("0.2s") from messageTimeoutMs. */}}
{{- define "gatehouse.messageTimeout" -}}
{{- $ms := int .Values.messageTimeoutMs -}}
{{- printf "%d.%03ds" (div $ms 1000) (mod $ms 1000) -}}
{{- end -}}

{{/* The gateway's mesh identity (SPIFFE principal without the spiffe:// scheme). */}}
{{- define "gatehouse.gatewayPrincipal" -}}
{{- printf "%s/ns/%s/sa/%s" .Values.gateway.trustDomain .Values.gateway.namespace (required "gateway.serviceAccount is required" .Values.gateway.serviceAccount) -}}
{{- end -}}

{{- define "gatehouse.secretsDir" -}}/var/run/secrets/gatehouse{{- end -}}

{{/* gatehouse's config file: values.config with what the chart owns laid over it. */}}
{{- define "gatehouse.config" -}}
{{- $config := deepCopy (default (dict) .Values.config) -}}
{{- $dir := include "gatehouse.secretsDir" . -}}
{{- $_ := set $config "listen" (dict "grpc" (printf "0.0.0.0:%d" (int .Values.ports.grpc)) "admin" (printf "0.0.0.0:%d" (int .Values.ports.admin))) -}}
{{- $envoy := default (dict) (get $config "envoy") -}}
{{- $_ := set $envoy "messageTimeoutMs" (int .Values.messageTimeoutMs) -}}
{{- $_ := set $config "envoy" $envoy -}}
{{- $stores := default (dict) (get $config "stores") -}}
{{- $r := .Values.redis -}}
{{- if eq $r.mode "none" -}}
{{- $_ := set $stores "kind" "memory" -}}
{{- $_ := unset $stores "redis" -}}
{{- else -}}
{{- $redis := dict "mode" $r.mode -}}
{{- if eq $r.mode "standalone" -}}
{{- $_ := set $redis "host" (required "redis.standalone.host is required" $r.standalone.host) -}}
{{- $_ := set $redis "port" (int $r.standalone.port) -}}
{{- else if eq $r.mode "sentinel" -}}
{{- $_ := set $redis "sentinels" $r.sentinel.sentinels -}}
{{- $_ := set $redis "masterName" (required "redis.sentinel.masterName is required" $r.sentinel.masterName) -}}
{{- else if eq $r.mode "cluster" -}}
{{- if not $r.cluster.nodes -}}{{- fail "redis.cluster.nodes: list the cluster's seed nodes (host:port)" -}}{{- end -}}
{{- $_ := set $redis "nodes" $r.cluster.nodes -}}
{{- else -}}
{{- fail (printf "redis.mode %q: use none, standalone, sentinel or cluster" $r.mode) -}}
{{- end -}}
{{- if $r.username -}}{{- $_ := set $redis "username" $r.username -}}{{- end -}}
{{- if $r.passwordSecret.name -}}{{- $_ := set $redis "passwordFile" (printf "%s/redis/%s" $dir $r.passwordSecret.key) -}}{{- end -}}
{{- if $r.tls.enabled -}}
{{- $tls := dict -}}
{{- if $r.tls.caSecret.name -}}{{- $_ := set $tls "caFile" (printf "%s/redis-ca/%s" $dir $r.tls.caSecret.key) -}}{{- end -}}
{{- if $r.tls.serverName -}}{{- $_ := set $tls "serverName" $r.tls.serverName -}}{{- end -}}
{{- $_ := set $redis "tls" (ternary $tls true (gt (len $tls) 0)) -}}
{{- end -}}
{{- $_ := set $stores "kind" "redis" -}}
{{- $_ := set $stores "redis" (merge $redis (default (dict) (get $stores "redis"))) -}}
{{- end -}}
{{- $_ := set $config "stores" $stores -}}
{{- if .Values.adminToken.secretName -}}
{{- $_ := set $config "admin" (dict "tokenFile" (printf "%s/admin/%s" $dir .Values.adminToken.key) "listen" (printf "0.0.0.0:%d" (int .Values.ports.adminApi))) -}}
{{- end -}}
{{- if .Values.clients -}}
{{- $_ := set $config "mtls" (dict "clientsFile" "/etc/gatehouse-clients/clients.yaml") -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Volume mounts shared by the gatehouse container and its --check initContainer. */}}
{{- define "gatehouse.volumeMounts" -}}
{{- $dir := include "gatehouse.secretsDir" . -}}
- { name: config, mountPath: /etc/gatehouse, readOnly: true }
{{- if .Values.clients }}
- { name: clients, mountPath: /etc/gatehouse-clients, readOnly: true }
{{- end }}
{{- if ne .Values.redis.mode "none" }}
{{- if .Values.redis.passwordSecret.name }}
- { name: redis, mountPath: {{ $dir }}/redis, readOnly: true }
{{- end }}
{{- if and .Values.redis.tls.enabled .Values.redis.tls.caSecret.name }}
- { name: redis-ca, mountPath: {{ $dir }}/redis-ca, readOnly: true }
{{- end }}
{{- end }}
{{- if .Values.adminToken.secretName }}
- { name: admin-token, mountPath: {{ $dir }}/admin, readOnly: true }
{{- end }}
{{- range .Values.secretMounts }}
- { name: {{ .name }}, mountPath: {{ $dir }}/{{ .name }}, readOnly: true }
{{- end }}
{{- end -}}

{{- define "gatehouse.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: { drop: [ALL] }
seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{/* Envoy's own request hygiene on the gateway's HTTP connection manager: defense in depth, not
relied on by gatehouse (which checks what it receives itself). An empty string when disabled. */}}
{{- define "gatehouse.envoyDefensesPatch" -}}
{{- if .Values.istio.envoyDefenses.enabled -}}
# Envoy's own defenses, as defense in depth: gatehouse does not rely on them (it refuses bad names
# and paths itself), but a request Envoy already rejected never costs a gatehouse call.
- applyTo: NETWORK_FILTER
  match:
    context: GATEWAY
    listener:
      filterChain:
        filter:
          name: envoy.filters.network.http_connection_manager
  patch:
    operation: MERGE
    value:
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        # x_user_id must not pass for x-user-id behind a proxy that folds '_' into '-'
        common_http_protocol_options:
          headers_with_underscores_action: REJECT_REQUEST
        # RFC 3986 normalization and // → / before routing, so routes see one spelling of a path
        normalize_path: true
        merge_slashes: true
        # %2F / %5C in a path: refused, not routed one way and served another
        path_with_escaped_slashes_action: {{ .Values.istio.envoyDefenses.pathWithEscapedSlashesAction }}
        # a client's x-request-id is not trusted as the request's id
        preserve_external_request_id: false
{{- end -}}
{{- end -}}

{{- define "gatehouse.canaryImage" -}}
{{- if .Values.canary.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.canary.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (required "canary.image.tag or canary.image.digest is required with canary.enabled" .Values.canary.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.upstreamResponseHeadersPatch" -}}
# Over ext_authz gatehouse never sees the upstream's response, so it cannot remove gatehouse's own
# headers from it as it does over ext_proc: an upstream could send x-gatehouse-reason (or
# x_gatehouse_reason) to imitate a refusal. The route configuration removes them from every
# upstream response. Envoy applies it to upstream responses (router.cc Filter::onUpstreamHeaders →
# RouteEntryImplBase::finalizeResponseHeaders) and, in a local reply, *before* the replying
# filter's own headers (filter_manager.cc sendLocalReplyViaFilterChain): gatehouse's denial keeps
# its x-gatehouse-reason and x-gatehouse-decision-id (docs/security.md cites the source).
# The names: every x-gatehouse-* of src/pipeline/headers.ts HEADER, in both spellings (a test
# keeps them equal).
- applyTo: ROUTE_CONFIGURATION
  match:
    context: GATEWAY
  patch:
    operation: MERGE
    value:
      response_headers_to_remove:
        - x-gatehouse-reason
        - x-gatehouse-decision-id
        - x-gatehouse-client
        - x_gatehouse_reason
        - x_gatehouse_decision_id
        - x_gatehouse_client
{{- end -}}
