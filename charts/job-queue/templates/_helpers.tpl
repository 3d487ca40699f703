{{/* Names, labels and the image: shared by every template. */}}

{{- define "job-queue.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name; component names append to it, so keep room (trunc 40). */}}
{{- define "job-queue.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "job-queue.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "job-queue.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A component's object name. Call with (dict "context" $ "component" "api"). */}}
{{- define "job-queue.componentName" -}}
{{- printf "%s-%s" (include "job-queue.fullname" .context) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: immutable once a Deployment or StatefulSet exists, so they hold only what
identifies the pods. Call with (dict "context" $ "component" "api"), plus "pool" for workers.
*/}}
{{- define "job-queue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "job-queue.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .pool }}
jobqueue.dev/pool: {{ . }}
{{- end }}
{{- end }}

{{/* Every object's labels: the selector labels plus the descriptive ones. Same arguments. */}}
{{- define "job-queue.labels" -}}
{{ include "job-queue.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: {{ include "job-queue.name" .context }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
helm.sh/chart: {{ include "job-queue.chart" .context }}
{{- with .context.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The jobqueue image reference; the tag defaults to the chart's appVersion. */}}
{{- define "job-queue.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of the API, workers, migrations and tests: it mounts no token. */}}
{{- define "job-queue.serviceAccountName" -}}
{{- include "job-queue.fullname" . }}
{{- end }}

{{- define "job-queue.controller.serviceAccountName" -}}
{{- include "job-queue.componentName" (dict "context" . "component" "controller") }}
{{- end }}

{{- define "job-queue.apiToken.secretName" -}}
{{- default (include "job-queue.componentName" (dict "context" . "component" "api-token")) .Values.apiToken.existingSecret }}
{{- end }}

{{/* The namespaces the controller watches when it is not cluster-wide. */}}
{{- define "job-queue.controller.namespaces" -}}
{{- $namespaces := .Values.controller.namespaces }}
{{- if not $namespaces }}
{{- $namespaces = list (include "job-queue.namespace" .) }}
{{- end }}
{{- toJson (uniq $namespaces) }}
{{- end }}

{{/*
What the controller needs on the Deployments it scales, in every namespace it watches:
read and watch them (patch: only its jobqueue.dev/status annotation), write replicas through
the scale subresource, set pod-deletion-cost on their pods, and post Events (kopf and the
scaler post core/v1 Events, so events.k8s.io needs nothing).
*/}}
{{- define "job-queue.controller.rules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
