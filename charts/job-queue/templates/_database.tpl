{{/* Where the database is, bundled or external, and how each component connects to it. */}}

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
A component's database role, as JSON {user, secret, key, userKey}: (dict "context" $ "role" r),
r one of runtime (the API and workers), owner (the migrations) and readonly (the controller).
The bundled PostgreSQL has one role each; an external database has its owner and readonly
roles when externalDatabase.owner / .readonly name them, else the one user.
*/}}
{{- define "job-queue.database.role" -}}
{{- $ := .context }}
{{- $role := dict "user" "" "secret" (include "job-queue.database.secretName" $) "key" (include "job-queue.database.passwordKey" $) "userKey" "" }}
{{- if $.Values.postgresql.enabled }}
{{- $auth := $.Values.postgresql.auth }}
{{- $_ := set $role "user" $auth.username }}
{{- if $auth.separateRoles }}
{{- if eq .role "owner" }}
{{- $_ := set $role "user" $auth.ownerUsername }}
{{- $_ := set $role "key" $auth.existingSecretOwnerPasswordKey }}
{{- else if eq .role "readonly" }}
{{- $_ := set $role "user" $auth.readonlyUsername }}
{{- $_ := set $role "key" $auth.existingSecretReadonlyPasswordKey }}
{{- end }}
{{- end }}
{{- else }}
{{- $db := $.Values.externalDatabase }}
{{- $_ := set $role "user" $db.username }}
{{- $_ := set $role "userKey" $db.existingSecretUsernameKey }}
{{- $own := dict }}
{{- if eq .role "owner" }}{{ $own = $db.owner }}{{ else if eq .role "readonly" }}{{ $own = $db.readonly }}{{ end }}
{{- if $own.username }}
{{- $_ := set $role "user" $own.username }}
{{- $_ := set $role "userKey" "" }}
{{- $_ := set $role "secret" (default $db.existingSecret $own.existingSecret) }}
{{- $_ := set $role "key" $own.existingSecretPasswordKey }}
{{- end }}
{{- end }}
{{- toJson $role }}
{{- end }}

{{/* Whether the components have roles of their own ("true"), or share one. */}}
{{- define "job-queue.database.separateRoles" -}}
{{- if .Values.postgresql.enabled }}
{{- .Values.postgresql.auth.separateRoles }}
{{- else }}
{{- or .Values.externalDatabase.owner.username .Values.externalDatabase.readonly.username | toString | ne "" }}
{{- end }}
{{- end }}

{{/* A component's DB_URL, no password in it: (dict "context" $ "role" r), and "host" and
"port" for another server (the read replica). */}}
{{- define "job-queue.database.url" -}}
{{- $ := .context }}
{{- $role := include "job-queue.database.role" (dict "context" $ "role" .role) | fromJson }}
{{- $user := ternary "$(DB_USER)" $role.user (ne $role.userKey "") }}
{{- printf "postgresql://%s@%s:%v/%s" $user (default (include "job-queue.database.host" $) .host) (default (include "job-queue.database.port" $) .port) (include "job-queue.database.name" $) }}
{{- end }}

{{/*
The connection env of a jobqueue container: (dict "context" $ "role" r). The password never
enters DB_URL or a ConfigMap: PGPASSWORD comes from the Secret, and asyncpg reads it when the
URL has none (so a password needs no URL escaping either).
*/}}
{{- define "job-queue.database.env" -}}
{{- $ := .context }}
{{- $role := include "job-queue.database.role" (dict "context" $ "role" .role) | fromJson }}
{{- if $role.userKey }}
- name: DB_USER
  valueFrom:
    secretKeyRef:
      name: {{ $role.secret }}
      key: {{ $role.userKey }}
{{- end }}
- name: DB_URL
  value: {{ include "job-queue.database.url" (dict "context" $ "role" .role) | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $role.secret }}
      key: {{ $role.key }}
{{- if and (not $.Values.postgresql.enabled) $.Values.externalDatabase.sslMode }}
- name: PGSSLMODE
  value: {{ $.Values.externalDatabase.sslMode | quote }}
{{- end }}
{{- end }}
