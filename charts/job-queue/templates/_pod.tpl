{{/* Pieces every jobqueue pod shares: security, env, the /tmp volume, the migration step. */}}

{{/* Pod-level fields of a jobqueue pod template that talks to no Kubernetes API. */}}
{{- define "job-queue.pod.common" -}}
serviceAccountName: {{ include "job-queue.serviceAccountName" . }}
automountServiceAccountToken: false
{{ include "job-queue.pod.security" . | trim }}
{{- end }}

{{/* Pull secrets and the pod security context. */}}
{{- define "job-queue.pod.security" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Annotations that roll the pods when the shared settings change. */}}
{{- define "job-queue.pod.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}

{{/* The image, pull policy and security context of a jobqueue container. */}}
{{- define "job-queue.container.common" -}}
image: {{ include "job-queue.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- /* a container that ends with an error keeps its last log lines in its status, so
`kubectl describe pod` says why even after the pod (and its logs) are gone */}}
terminationMessagePolicy: FallbackToLogsOnError
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end }}

{{/* Shared settings: the ConfigMap. */}}
{{- define "job-queue.container.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "job-queue.componentName" (dict "context" . "component" "config") }}
{{- end }}

{{/* The env entries every jobqueue container has: the database as its role, and the user's
extraEnv. Call with (dict "context" $ "role" r), r as job-queue.database.role takes it. */}}
{{- define "job-queue.container.baseEnv" -}}
{{ include "job-queue.database.env" . | trim }}
{{- with .context.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* POD_NAME from the downward API: workers register with it, the controller matches pods by it. */}}
{{- define "job-queue.container.podNameEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}

{{/* A read-only root filesystem still needs a writable /tmp. */}}
{{- define "job-queue.volumeMount.tmp" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "job-queue.volume.tmp" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{- define "job-queue.migrations.asInitContainer" -}}
{{- and .Values.migrations.enabled (eq .Values.migrations.mode "initContainer") }}
{{- end }}

{{/* The migration container: the hook Job's container, or an init container (GitOps mode). */}}
{{- define "job-queue.migrations.container" -}}
- name: migrate
  {{- include "job-queue.container.common" . | nindent 2 }}
  args:
    - migrate
  env:
    {{- include "job-queue.container.baseEnv" (dict "context" . "role" "owner") | nindent 4 }}
    {{- if eq (include "job-queue.database.separateRoles" .) "true" }}
    # the owner grants the other roles their rights once it has migrated
    - name: JOBQUEUE_DB_RUNTIME_ROLE
      value: {{ (include "job-queue.database.role" (dict "context" . "role" "runtime") | fromJson).user | quote }}
    - name: JOBQUEUE_DB_READONLY_ROLE
      value: {{ (include "job-queue.database.role" (dict "context" . "role" "readonly") | fromJson).user | quote }}
    {{- end }}
  resources:
    {{- toYaml .Values.migrations.resources | nindent 4 }}
  volumeMounts:
    {{- include "job-queue.volumeMount.tmp" . | nindent 4 }}
{{- end }}

{{/* initContainers of the API, worker and controller pods, when migrations run in them. */}}
{{- define "job-queue.pod.initContainers" -}}
{{- if eq (include "job-queue.migrations.asInitContainer" .) "true" }}
initContainers:
  {{- include "job-queue.migrations.container" . | nindent 2 }}
{{- end }}
{{- end }}

{{/* nodeSelector, tolerations, affinity and spread constraints of one component's values. */}}
{{- define "job-queue.pod.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
