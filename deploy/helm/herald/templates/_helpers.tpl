{{/* Chart name, truncated to a DNS label. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object's name: the release name, with the chart name
when the release name does not already contain it. Cluster-scoped objects
(ClusterRoles) carry it too, so two releases never collide. */}}
{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: include with (list $ "controller"). */}}
{{- define "herald.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "herald.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "herald.componentLabels" -}}
{{ include "herald.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "herald.image" -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "v%s" .Chart.AppVersion) .Values.image.tag) -}}
{{- end -}}

{{- define "herald.memberlistSecret" -}}
{{- default (printf "%s-memberlist" (include "herald.fullname" .)) .Values.speaker.memberlist.secretName -}}
{{- end -}}

{{/* Settings that cannot be expressed in values.schema.json. */}}
{{- define "herald.validate" -}}
{{- if and (gt (int .Values.controller.replicas) 1) (not .Values.controller.leaderElect) -}}
{{- fail "controller.replicas > 1 needs controller.leaderElect=true: two active controllers would hand out the same address twice" -}}
{{- end -}}
{{- if not (or .Values.speaker.layer2 .Values.speaker.bgp) -}}
{{- fail "speaker.layer2 and speaker.bgp are both false: the speaker would announce nothing" -}}
{{- end -}}
{{- end -}}
