{{/*
Helpers of the rekindle chart. Every name carries the chart's prefix and is
truncated to 63 characters (the DNS label limit) without a trailing dash.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "rekindle.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name: fullnameOverride, else "<release>-<name>" unless the release already contains the name. */}}
{{- define "rekindle.fullname" -}}
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

{{/* A name derived from the full name with a suffix, still at most 63 characters. */}}
{{- define "rekindle.suffixed" -}}
{{- $suffix := index . 1 -}}
{{- $base := include "rekindle.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" -}}
{{- printf "%s-%s" $base $suffix -}}
{{- end -}}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "rekindle.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator pods (never change them: selectors are immutable). */}}
{{- define "rekindle.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rekindle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels on every object of the release. */}}
{{- define "rekindle.labels" -}}
helm.sh/chart: {{ include "rekindle.chart" . }}
app.kubernetes.io/name: {{ include "rekindle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rekindle
{{- end -}}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "rekindle.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rekindle.fullname" .) .Values.serviceAccount.name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- required "serviceAccount.name: set the name of an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "rekindle.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The kopf peering name: operator.peeringName, else the release name. */}}
{{- define "rekindle.peeringName" -}}
{{- default .Release.Name .Values.operator.peeringName | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* True ("true") when the operator watches every namespace. */}}
{{- define "rekindle.clusterScoped" -}}
{{- if eq .Values.watch.scope "cluster" -}}true{{- end -}}
{{- end -}}

{{/* The watched namespaces as a list (scope "namespaced"); fails with the fix when there are none. */}}
{{- define "rekindle.watchNamespaces" -}}
{{- if and (eq .Values.watch.scope "namespaced") (not .Values.watch.namespaces) -}}
{{- fail "watch.namespaces: list at least one namespace when watch.scope is \"namespaced\" (or set watch.scope to \"cluster\")" -}}
{{- end -}}
{{- toJson (.Values.watch.namespaces | uniq) -}}
{{- end -}}

{{/* Labels of the trainer pods the operator creates (fixed by the operator). */}}
{{- define "rekindle.trainerSelectorLabels" -}}
app.kubernetes.io/name: rekindle-trainer
{{- end -}}

{{/*
The release labels plus app.kubernetes.io/component and extra labels, as YAML.
Args: (list $ component extraLabels). Chart labels win over extra ones with
the same key, so user labels can never break a selector.
*/}}
{{- define "rekindle.labelsWith" -}}
{{- $ctx := index . 0 -}}
{{- $own := include "rekindle.labels" $ctx | fromYaml -}}
{{- $component := index . 1 -}}
{{- if $component -}}
{{- $_ := set $own "app.kubernetes.io/component" $component -}}
{{- end -}}
{{- $extra := index . 2 | default dict -}}
{{- toYaml (merge $own (deepCopy $extra)) -}}
{{- end -}}
