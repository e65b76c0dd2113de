{{/* Names, labels and derived values, defined once. */}}

{{- define "chatkit-backend.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chatkit-backend.fullname" -}}
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

{{- define "chatkit-backend.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chatkit-backend.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chatkit-backend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "chatkit-backend.labels" -}}
helm.sh/chart: {{ include "chatkit-backend.chart" . }}
{{ include "chatkit-backend.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chatkit-backend
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of the server pods (and what selects them). */}}
{{- define "chatkit-backend.serverSelectorLabels" -}}
{{ include "chatkit-backend.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "chatkit-backend.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chatkit-backend.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "chatkit-backend.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret the pods read: the user's existingSecret or the chart's own. */}}
{{- define "chatkit-backend.secretName" -}}
{{- default (include "chatkit-backend.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* True when the database is SQLite inside the pod (no DATABASE_URL given anywhere). */}}
{{- define "chatkit-backend.sqliteInPod" -}}
{{- if and (not .Values.existingSecret) (or (not .Values.secrets.databaseUrl) (hasPrefix "sqlite" .Values.secrets.databaseUrl)) }}true{{- end }}
{{- end }}

{{- define "chatkit-backend.metricsOnOwnPort" -}}
{{- if and .Values.metrics.enabled .Values.metrics.port }}true{{- end }}
{{- end }}

{{/* The container port name Prometheus scrapes. */}}
{{- define "chatkit-backend.metricsPortName" -}}
{{- if include "chatkit-backend.metricsOnOwnPort" . }}metrics{{- else }}http{{- end }}
{{- end }}

{{- define "chatkit-backend.terminationGracePeriodSeconds" -}}
{{- add (int .Values.shutdown.preStopSleepSeconds) (int .Values.shutdown.drainSeconds) (int .Values.shutdown.extraGraceSeconds) }}
{{- end }}

{{- define "chatkit-backend.replicasAboveOne" -}}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.minReplicas) 1 }}true{{- end }}
{{- else if gt (int .Values.replicaCount) 1 }}true{{- end }}
{{- end }}

{{/* PromQL label matchers that select this release's series (ServiceMonitor: job = Service). */}}
{{- define "chatkit-backend.alertSelector" -}}
namespace="{{ .Release.Namespace }}",job="{{ include "chatkit-backend.fullname" . }}"
{{- end }}

{{/* Label of client pods the NetworkPolicy admits when allowExternal is false. */}}
{{- define "chatkit-backend.clientLabel" -}}
{{ include "chatkit-backend.fullname" . }}-client
{{- end }}

{{/* True when config.authMode (comma-separated) includes a mode: (list $ "dev"). */}}
{{- define "chatkit-backend.authModeHas" -}}
{{- $root := index . 0 }}
{{- if regexMatch (printf "(^|,) *%s *(,|$)" (index . 1)) (toString $root.Values.config.authMode) }}true{{- end }}
{{- end }}

{{/* Where the API-token hashes file of auth.apiTokensSecret is mounted. */}}
{{- define "chatkit-backend.apiTokensDir" -}}
/etc/chatkit-backend/api-tokens
{{- end }}

{{/* Checks that span several values; they fail the render with a clear message. */}}
{{- define "chatkit-backend.validate" -}}
{{- if .Values.existingSecret }}
{{- range $name, $value := .Values.secrets }}
{{- if $value }}
{{- fail "existingSecret is set: leave secrets.* empty and put those keys in that Secret" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (include "chatkit-backend.sqliteInPod" .) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "SQLite keeps conversations inside one pod: set secrets.databaseUrl (PostgreSQL) or existingSecret, or run one replica without autoscaling" }}
{{- end }}
{{- if and (eq .Values.config.llmProvider "openai-compatible") (not .Values.config.openaiBaseUrl) }}
{{- fail "config.llmProvider openai-compatible needs config.openaiBaseUrl (the server's base URL)" }}
{{- end }}
{{- if and (include "chatkit-backend.authModeHas" (list . "dev")) (eq (toString .Values.config.environment) "production") }}
{{- fail "config.authMode dev is refused with config.environment production (callers could name any user): use jwt or api-token" }}
{{- end }}
{{- if and (include "chatkit-backend.authModeHas" (list . "api-token")) (not .Values.auth.apiTokensSecret) (not .Values.config.authApiTokensFile) }}
{{- fail "config.authMode api-token needs auth.apiTokensSecret (the Secret holding the token hashes file) or config.authApiTokensFile" }}
{{- end }}
{{- if and .Values.metrics.prometheusRule.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.prometheusRule needs metrics.enabled" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor needs metrics.enabled" }}
{{- end }}
{{- end }}

{{/* A setting as the service reads it: booleans true/false, whole numbers without exponent,
lists and maps as JSON. */}}
{{- define "chatkit-backend.settingValue" -}}
{{- if kindIs "bool" . }}{{ ternary "true" "false" . }}
{{- else if kindIs "float64" . }}{{ if eq (float64 (int64 .)) . }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if or (kindIs "slice" .) (kindIs "map" .) }}{{ toJson . }}
{{- else }}{{ . }}
{{- end }}
{{- end }}
