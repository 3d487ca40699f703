{{/* Worker pools: each pool's values laid over workerDefaults. */}}

{{/*
The effective settings of one pool, as JSON: (dict "context" $ "values" $poolValues).
Keys replace the defaults, except autoscale and podDisruptionBudget, whose keys merge one by
one. Done by hand because sprig's merge drops false and 0 (autoscale.enabled: false, say).
*/}}
{{- define "job-queue.worker.pool" -}}
{{- $pool := deepCopy .context.Values.workerDefaults }}
{{- range $key, $value := (.values | default dict) }}
{{- if and (has $key (list "autoscale" "podDisruptionBudget")) (kindIs "map" $value) }}
{{- $merged := deepCopy (index $pool $key) }}
{{- range $subKey, $subValue := $value }}
{{- $_ := set $merged $subKey $subValue }}
{{- end }}
{{- $_ := set $pool $key $merged }}
{{- else }}
{{- $_ := set $pool $key $value }}
{{- end }}
{{- end }}
{{- toJson $pool }}
{{- end }}

{{/* A pool's checks, which the schema cannot express: (dict "name" $name "pool" $pool). */}}
{{- define "job-queue.worker.validate" -}}
{{- $pool := .pool }}
{{- if ge (float64 $pool.drainTimeout) (float64 $pool.terminationGracePeriodSeconds) }}
{{- fail (printf "workers.%s: drainTimeout (%v) must be less than terminationGracePeriodSeconds (%v), or the kubelet kills jobs mid-run" .name $pool.drainTimeout $pool.terminationGracePeriodSeconds) }}
{{- end }}
{{- if gt (int64 $pool.autoscale.minReplicas) (int64 $pool.autoscale.maxReplicas) }}
{{- fail (printf "workers.%s: autoscale.minReplicas (%v) must not exceed autoscale.maxReplicas (%v)" .name $pool.autoscale.minReplicas $pool.autoscale.maxReplicas) }}
{{- end }}
{{- end }}

{{/* Whether a pool can run more than one pod, and so gets a PodDisruptionBudget. */}}
{{- define "job-queue.worker.multiReplica" -}}
{{- if .autoscale.enabled }}
{{- gt (int64 .autoscale.maxReplicas) 1 }}
{{- else }}
{{- gt (int64 .replicas) 1 }}
{{- end }}
{{- end }}
