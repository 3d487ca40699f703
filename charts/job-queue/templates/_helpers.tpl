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

{{/*
The API's tokens by scope: (list scope env-name values-key component-suffix) each, for the
Secrets, the API's env and the NOTES. Call with the root context; returns JSON.
*/}}
{{- define "job-queue.apiTokens" -}}
{{- $tokens := list }}
{{- range $entry := list (list "admin" "JOBQUEUE_API_TOKEN" "apiToken" "api-token") (list "read" "JOBQUEUE_API_READ_TOKEN" "apiReadToken" "api-read-token") (list "enqueue" "JOBQUEUE_API_ENQUEUE_TOKEN" "apiEnqueueToken" "api-enqueue-token") }}
{{- $values := index $.Values (index $entry 2) }}
{{- if $values.enabled }}
{{- $name := default (include "job-queue.componentName" (dict "context" $ "component" (index $entry 3))) $values.existingSecret }}
{{- $tokens = append $tokens (dict "scope" (index $entry 0) "env" (index $entry 1) "value" (index $entry 2) "secret" $name "key" $values.existingSecretKey "generate" (not $values.existingSecret)) }}
{{- end }}
{{- end }}
{{- toJson $tokens }}
{{- end }}

{{/*
A secret value for a Secret the chart makes, base64: the one already in the cluster, else a
new random one. A render that cannot read the cluster (helm template, or a GitOps tool) cannot
know the value in use, and a new one on every sync would lock the release out of its own
database or API, so it fails and says what to set instead.
Call with (dict "context" $ "secret" name "key" key "length" n "setting" "values.path").
*/}}
{{- define "job-queue.secretValue" -}}
{{- $namespace := include "job-queue.namespace" .context }}
{{- $value := "" }}
{{- $found := lookup "v1" "Secret" $namespace .secret }}
{{- if $found }}
{{- $value = index ($found.data | default dict) .key | default "" }}
{{- end }}
{{- if not $value }}
{{- if not (lookup "v1" "Namespace" "" "kube-system") }}
{{- fail (printf "\n%s is not set, and this render cannot read the cluster (helm template, or a GitOps tool's render): a secret generated here would change on every render and lock the running release out. Create a Secret holding the key %q and name it in %s, or install with `helm install`/`helm upgrade`, which generate it once and keep it. See docs/security.md." .setting .key .setting) }}
{{- end }}
{{- $value = randAlphaNum .length | b64enc }}
{{- end }}
{{- $value }}
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
read and watch them (patch: only its jobqueue.dev/status annotation), read and replace
replicas through the scale subresource, set pod-deletion-cost on their pods, and post Events
(the scaler posts core/v1 Events, so events.k8s.io needs nothing). RBAC cannot name objects by
label: the admission policy (controller-admission-policy.yaml) narrows the two patches to the
objects the controller manages and the annotations it writes.
*/}}
{{- define "job-queue.controller.rules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["get", "update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* One of the API's token Secrets: (dict "context" $ "scope" "admin"), when generated. */}}
{{- define "job-queue.apiTokenSecret" -}}
{{- $scope := .scope }}
{{- range $token := include "job-queue.apiTokens" .context | fromJsonArray }}
{{- if and (eq $token.scope $scope) $token.generate }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $token.secret }}
  namespace: {{ include "job-queue.namespace" $.context }}
  labels:
    {{- include "job-queue.labels" (dict "context" $.context "component" "api") | nindent 4 }}
  annotations:
    jobqueue.dev/token-scope: {{ $token.scope }}
type: Opaque
data:
  {{ $token.key }}: {{ include "job-queue.secretValue" (dict "context" $.context "secret" $token.secret "key" $token.key "length" 40 "setting" (printf "%s.existingSecret" $token.value)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Cluster-scoped, so the release's namespace is in the name. */}}
{{- define "job-queue.controller.admissionPolicyName" -}}
{{- printf "%s-%s-controller" (include "job-queue.namespace" .) (include "job-queue.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
