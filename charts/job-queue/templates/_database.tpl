{{/* Where the database is, bundled or external, and how pods connect to it. */}}

{{- define "job-queue.postgresql.fullname" -}}
{{- include "job-queue.componentName" (dict "context" . "component" "postgresql") }}
{{- end }}

{{- define "job-queue.database.host" -}}
{{- if .Values.postgresql.enabled }}
{{- include "job-queue.postgresql.fullname" . }}
{{- else }}
{{- required "externalDatabase.host is required when postgresql.enabled is false" .Values.externalDatabase.host }}
{{- end }}
{{- end }}

{{- define "job-queue.database.port" -}}
{{- ternary .Values.postgresql.service.port .Values.externalDatabase.port .Values.postgresql.enabled }}
{{- end }}

{{- define "job-queue.database.name" -}}
{{- ternary .Values.postgresql.auth.database .Values.externalDatabase.database .Values.postgresql.enabled }}
{{- end }}

{{- define "job-queue.database.username" -}}
{{- ternary .Values.postgresql.auth.username .Values.externalDatabase.username .Values.postgresql.enabled }}
{{- end }}

{{- define "job-queue.database.secretName" -}}
{{- if .Values.postgresql.enabled }}
{{- default (include "job-queue.postgresql.fullname" .) .Values.postgresql.auth.existingSecret }}
{{- else }}
{{- required "externalDatabase.existingSecret is required when postgresql.enabled is false" .Values.externalDatabase.existingSecret }}
{{- end }}
{{- end }}

{{- define "job-queue.database.passwordKey" -}}
{{- ternary .Values.postgresql.auth.existingSecretPasswordKey .Values.externalDatabase.existingSecretPasswordKey .Values.postgresql.enabled }}
{{- end }}

{{/*
The connection env of every jobqueue container. The password never enters DB_URL or a
ConfigMap: PGPASSWORD comes from the Secret, and asyncpg reads it when the URL has none (so a
password needs no URL escaping either).
*/}}
{{- define "job-queue.database.env" -}}
{{- $user := include "job-queue.database.username" . }}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecretUsernameKey }}
- name: DB_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "job-queue.database.secretName" . }}
      key: {{ .Values.externalDatabase.existingSecretUsernameKey }}
{{- $user = "$(DB_USER)" }}
{{- end }}
- name: DB_URL
  value: {{ printf "postgresql://%s@%s:%v/%s" $user (include "job-queue.database.host" .) (include "job-queue.database.port" .) (include "job-queue.database.name" .) | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "job-queue.database.secretName" . }}
      key: {{ include "job-queue.database.passwordKey" . }}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.sslMode }}
- name: PGSSLMODE
  value: {{ .Values.externalDatabase.sslMode | quote }}
{{- end }}
{{- end }}
