{{/*
Chart name, truncated to 63 characters (DNS label limit).
*/}}
{{- define "subscription-upserter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: release-chart unless the release name already holds the chart
name; truncated to 63 characters.
*/}}
{{- define "subscription-upserter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "subscription-upserter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "subscription-upserter.labels" -}}
helm.sh/chart: {{ include "subscription-upserter.chart" . }}
{{ include "subscription-upserter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: subscription-upserter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (immutable on a Deployment: never add to these).
*/}}
{{- define "subscription-upserter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "subscription-upserter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount to use.
*/}}
{{- define "subscription-upserter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "subscription-upserter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the credentials: the existing one, or the chart-made one.
*/}}
{{- define "subscription-upserter.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "subscription-upserter.fullname" . }}
{{- end }}
{{- end }}

{{/*
True ("true") when the chart makes the credentials Secret.
*/}}
{{- define "subscription-upserter.createSecret" -}}
{{- if and (not .Values.secrets.existingSecret) .Values.secrets.create }}true{{- end }}
{{- end }}

{{/*
Image reference: repository:tag, or repository@digest when a digest is given.
*/}}
{{- define "subscription-upserter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Environment of the ConfigMap: contract variable name -> value (strings). Empty optional
values are left out so the service's own defaults and "unset" semantics apply; numbers and
booleans (false too) are always written.
*/}}
{{- define "subscription-upserter.configEnv" -}}
{{- $c := .Values.config }}
{{- $env := dict
  "KAFKA_BOOTSTRAP_SERVERS" $c.kafkaBootstrapServers
  "KAFKA_INPUT_TOPIC" $c.kafkaInputTopic
  "KAFKA_OUTPUT_TOPIC" $c.kafkaOutputTopic
  "KAFKA_DLQ_TOPIC" $c.kafkaDlqTopic
  "KAFKA_GROUP_ID" $c.kafkaGroupId
  "KAFKA_SECURITY_PROTOCOL" $c.kafkaSecurityProtocol
  "KAFKA_SASL_MECHANISM" $c.kafkaSaslMechanism
  "KAFKA_SASL_USERNAME" $c.kafkaSaslUsername
  "KAFKA_SASL_PASSWORD_FILE" $c.kafkaSaslPasswordFile
  "KAFKA_SSL_CA_LOCATION" $c.kafkaSslCaLocation
  "KAFKA_SSL_CERTIFICATE_LOCATION" $c.kafkaSslCertificateLocation
  "KAFKA_SSL_KEY_LOCATION" $c.kafkaSslKeyLocation
  "KAFKA_TRANSACTIONAL_ID" $c.kafkaTransactionalId
  "KAFKA_COMMIT_METADATA_MAX_BYTES" $c.kafkaCommitMetadataMaxBytes
  "HUBSPOT_BASE_URL" $c.hubspotBaseUrl
  "HUBSPOT_ACCESS_TOKEN_FILE" $c.hubspotAccessTokenFile
  "HUBSPOT_CLIENT_ID" $c.hubspotClientId
  "HUBSPOT_OAUTH_TOKEN_URL" $c.hubspotOauthTokenUrl
  "HUBSPOT_OAUTH_REFRESH_MARGIN_S" $c.hubspotOauthRefreshMarginS
  "HUBSPOT_AUTH_RETRY_S" $c.hubspotAuthRetryS
  "HUBSPOT_DAILY_RESET_TIMEZONE" $c.hubspotDailyResetTimezone
  "HUBSPOT_DAILY_PROBE_INTERVAL_S" $c.hubspotDailyProbeIntervalS
  "HUBSPOT_OBJECT_TYPE" $c.hubspotObjectType
  "HUBSPOT_ID_PROPERTY" $c.hubspotIdProperty
  "HUBSPOT_API_VERSION" $c.hubspotApiVersion
  "HUBSPOT_TIMEOUT_S" $c.hubspotTimeoutS
  "HUBSPOT_RETRY_BACKOFF_MS" $c.hubspotRetryBackoffMs
  "HUBSPOT_RETRY_MAX_BACKOFF_MS" $c.hubspotRetryMaxBackoffMs
  "HUBSPOT_TRANSIENT_MAX_ATTEMPTS" $c.hubspotTransientMaxAttempts
  "HUBSPOT_TRANSIENT_MAX_S" $c.hubspotTransientMaxS
  "ON_INVALID_PROPERTY" $c.onInvalidProperty
  "ASSOCIATION_MISSING_TARGET" $c.associationMissingTarget
  "ASSOCIATION_RETRY_S" $c.associationRetryS
  "ASSOCIATION_CACHE_MAX" $c.associationCacheMax
  "ASSOCIATION_CACHE_TTL_S" $c.associationCacheTtlS
  "SKIP_UNCHANGED" $c.skipUnchanged
  "SKIP_UNCHANGED_MAX_IDS" $c.skipUnchangedMaxIds
  "SKIP_UNCHANGED_TTL_S" $c.skipUnchangedTtlS
  "HUBSPOT_RATE_LIMIT_REQUESTS" $c.hubspotRateLimitRequests
  "HUBSPOT_RATE_LIMIT_INTERVAL_MS" $c.hubspotRateLimitIntervalMs
  "HUBSPOT_CA_BUNDLE" $c.hubspotCaBundle
  "INPUT_FORMAT" $c.inputFormat
  "SCHEMA_REGISTRY_URL" $c.schemaRegistryUrl
  "SCHEMA_REGISTRY_CA_BUNDLE" $c.schemaRegistryCaBundle
  "SCHEMA_REGISTRY_TIMEOUT_S" $c.schemaRegistryTimeoutS
  "EVENT_MAPPING_FILE" $c.eventMappingFile
  "BATCH_MAX_SIZE" $c.batchMaxSize
  "BATCH_MAX_WAIT_MS" $c.batchMaxWaitMs
  "BATCH_MAX_BYTES" $c.batchMaxBytes
  "EVENT_MAX_PROPERTIES" $c.eventMaxProperties
  "MAX_IN_FLIGHT_BATCHES" $c.maxInFlightBatches
  "MAX_BUFFERED_EVENTS" $c.maxBufferedEvents
  "MAX_BUFFERED_BYTES" $c.maxBufferedBytes
  "DELIVERY_GUARANTEE" $c.deliveryGuarantee
  "COMMIT_INTERVAL_MS" $c.commitIntervalMs
  "DRAIN_TIMEOUT_S" $c.drainTimeoutS
  "HTTP_HOST" $c.httpHost
  "HTTP_PORT" $c.httpPort
  "LOG_LEVEL" $c.logLevel
}}
{{- if and .Values.hubspotTokenFile.enabled (not $c.hubspotAccessTokenFile) }}
{{- $_ := set $env "HUBSPOT_ACCESS_TOKEN_FILE" (printf "%s/%s" (.Values.hubspotTokenFile.mountPath | trimSuffix "/") .Values.hubspotTokenFile.key) }}
{{- end }}
{{- if and .Values.eventMapping.content (not $c.eventMappingFile) }}
{{- $_ := set $env "EVENT_MAPPING_FILE" (printf "%s/mapping.yaml" (.Values.eventMapping.mountPath | trimSuffix "/")) }}
{{- end }}
{{- $tracing := .Values.tracing }}
{{- if $tracing.otlpEndpoint }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" $tracing.otlpEndpoint }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_PROTOCOL" $tracing.otlpProtocol }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER" $tracing.sampler }}
{{- $_ := set $env "OTEL_TRACES_SAMPLER_ARG" $tracing.samplerArg }}
{{- $_ := set $env "OTEL_SERVICE_NAME" $tracing.serviceName }}
{{- $attributes := list }}
{{- range $name := keys $tracing.resourceAttributes | sortAlpha }}
{{- $attributes = append $attributes (printf "%s=%s" $name (get $tracing.resourceAttributes $name)) }}
{{- end }}
{{- $_ := set $env "OTEL_RESOURCE_ATTRIBUTES" (join "," $attributes) }}
{{- end }}
{{- range $name := keys $env | sortAlpha }}
{{- $value := get $env $name }}
{{- if kindIs "float64" $value }}
{{- /* YAML numbers arrive as float64: print whole numbers without an exponent */}}
{{- if eq $value (floor $value) }}
{{ $name }}: {{ int64 $value | toString | quote }}
{{- else }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- else if or (kindIs "int64" $value) (kindIs "int" $value) (kindIs "bool" $value) }}
{{ $name }}: {{ $value | toString | quote }}
{{- else if $value }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The job label the release's targets carry: the one the ServiceMonitor sets and every alert
selects (a hand-written scrape config must set the same).
*/}}
{{- define "subscription-upserter.job" -}}
{{- .Values.serviceMonitor.jobLabel | default (include "subscription-upserter.fullname" .) }}
{{- end }}

{{/*
One alerting rule from files/alerts.yaml: `alert` (the file's entry), `settings`
(prometheusRule.alerts.<key>), `root` (the chart context). Fills in the file's ${...}
placeholders and adds `for`, the severity, the common labels and the runbook link.
*/}}
{{- define "subscription-upserter.alertRule" -}}
{{- $root := .root }}
{{- $s := .settings }}
{{- $selector := printf "namespace=%q, job=%q" $root.Release.Namespace (include "subscription-upserter.job" $root) }}
{{- $threshold := "" }}
{{- $percent := "" }}
{{- if hasKey $s "threshold" }}
{{- $threshold = toString $s.threshold }}
{{- $percent = toString (mulf $s.threshold 100) }}
{{- end }}
{{- $ignored := join "|" ($s.ignoredReasons | default list) }}
{{- $fill := dict "${selector}" $selector "${threshold_percent}" $percent "${threshold}" $threshold "${for}" $s.for "${ignored_reasons}" $ignored }}
{{- $text := dict "expr" .alert.expr "summary" .alert.summary "description" .alert.description }}
{{- range $field, $value := $text }}
{{- range $placeholder := list "${selector}" "${threshold_percent}" "${threshold}" "${for}" "${ignored_reasons}" }}
{{- $value = replace $placeholder (get $fill $placeholder) $value }}
{{- end }}
{{- $_ := set $text $field $value }}
{{- end }}
{{- $base := $root.Values.prometheusRule.runbookBaseUrl | trimSuffix "#" }}
{{- $labels := merge (dict "severity" $s.severity) ($root.Values.prometheusRule.additionalAlertLabels | default dict) }}
{{- $rule := dict "alert" .alert.alert "expr" $text.expr "for" $s.for "labels" $labels }}
{{- $_ := set $rule "annotations" (dict "summary" $text.summary "description" $text.description "runbook_url" (printf "%s#%s" $base (lower .alert.alert))) }}
{{- list $rule | toYaml }}
{{- end }}

{{/*
The container's settings: the ConfigMap, the credentials Secret, extra sources and variables.
Shared by the service's pods and the redrive Job's.
*/}}
{{- define "subscription-upserter.environment" -}}
envFrom:
  - configMapRef:
      name: {{ include "subscription-upserter.fullname" . }}
  {{- if or (include "subscription-upserter.createSecret" .) .Values.secrets.existingSecret }}
  - secretRef:
      name: {{ include "subscription-upserter.secretName" . }}
  {{- end }}
  {{- with .Values.extraEnvFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.extraEnv }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The container's mounts: /tmp (the only writable path), the token file, extra mounts.
*/}}
{{- define "subscription-upserter.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if .Values.hubspotTokenFile.enabled }}
  - name: hubspot-token
    mountPath: {{ .Values.hubspotTokenFile.mountPath }}
    readOnly: true
  {{- end }}
  {{- if .Values.eventMapping.content }}
  - name: event-mapping
    mountPath: {{ .Values.eventMapping.mountPath }}
    readOnly: true
  {{- end }}
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
The pod's volumes behind those mounts.
*/}}
{{- define "subscription-upserter.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit }}
  {{- if .Values.hubspotTokenFile.enabled }}
  - name: hubspot-token
    secret:
      secretName: {{ .Values.hubspotTokenFile.secretName }}
      items:
        - key: {{ .Values.hubspotTokenFile.key }}
          path: {{ .Values.hubspotTokenFile.key }}
  {{- end }}
  {{- if .Values.eventMapping.content }}
  - name: event-mapping
    configMap:
      name: {{ include "subscription-upserter.fullname" . | trunc 49 | trimSuffix "-" }}-event-mapping
  {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
Labels of a pod or object that is part of the release but not one of the service's pods
(the redrive Job, the helm test): a name of its own, so the Deployment's selector, the
Service, the PodDisruptionBudget and the NetworkPolicy never count it. Call with
(dict "root" $ "component" "redrive").
*/}}
{{- define "subscription-upserter.componentLabels" -}}
{{- $root := .root -}}
helm.sh/chart: {{ include "subscription-upserter.chart" $root }}
app.kubernetes.io/name: {{ printf "%s-%s" (include "subscription-upserter.name" $root) .component | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ $root.Values.image.tag | default $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: subscription-upserter
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The redrive pod: `python -m service redrive ARGS` in the service's image with its settings,
credentials and hardening. On SIGTERM (the deadline, a node drain) it stops reading, commits
what it sent and exits 0; the producer's last flush takes up to 60 s, hence the grace period.
*/}}
{{- define "subscription-upserter.redrivePod" -}}
metadata:
  labels:
    {{- include "subscription-upserter.componentLabels" (dict "root" . "component" "redrive") | nindent 4 }}
spec:
  restartPolicy: Never
  serviceAccountName: {{ include "subscription-upserter.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: 90
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: redrive
      image: {{ include "subscription-upserter.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: {{ prepend .Values.redrive.args "redrive" | toJson }}
      {{- include "subscription-upserter.environment" . | nindent 6 }}
      resources:
        {{- toYaml .Values.redrive.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      {{- include "subscription-upserter.volumeMounts" . | nindent 6 }}
  {{- include "subscription-upserter.volumes" . | nindent 2 }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
The redrive Job's spec (also a CronJob's jobTemplate spec).
*/}}
{{- define "subscription-upserter.redriveJobSpec" -}}
backoffLimit: {{ .Values.redrive.backoffLimit }}
activeDeadlineSeconds: {{ .Values.redrive.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ .Values.redrive.ttlSecondsAfterFinished }}
template:
  {{- include "subscription-upserter.redrivePod" . | nindent 2 }}
{{- end }}

{{/*
The TCP port of tracing.otlpEndpoint: the URL's own, else 443 for https, else the protocol's
default (4317 for grpc, 4318 for http/protobuf).
*/}}
{{- define "subscription-upserter.otlpPort" -}}
{{- $tracing := .Values.tracing }}
{{- $host := (urlParse $tracing.otlpEndpoint).host }}
{{- if contains ":" $host }}
{{- last (splitList ":" $host) }}
{{- else if hasPrefix "https://" $tracing.otlpEndpoint }}
{{- 443 }}
{{- else if eq $tracing.otlpProtocol "http/protobuf" }}
{{- 4318 }}
{{- else }}
{{- 4317 }}
{{- end }}
{{- end }}
