{{/* The chart's name, or nameOverride. */}}
{{- define "chorus-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: every object of the release is named after it. */}}
{{- define "chorus-operator.fullname" -}}
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

{{- define "chorus-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chorus-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "chorus-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "chorus-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: chorus
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "chorus-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chorus-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether the operator watches every namespace (then kopf peers cluster-wide). */}}
{{- define "chorus-operator.clusterwide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/* Fails the render on combinations the schema cannot express. */}}
{{- define "chorus-operator.validate" -}}
{{- if and (eq .Values.rbac.scope "namespace") (not .Values.watchNamespaces) }}
{{- fail "rbac.scope=namespace needs watchNamespaces: a Role per namespace cannot cover every namespace" }}
{{- end }}
{{- if and (not .Values.peering.enabled) (gt (int .Values.replicas) 1) }}
{{- fail "peering.enabled=false runs every replica standalone: set replicas to 1" }}
{{- end }}
{{- if ne (len .Values.watchNamespaces) (len (uniq .Values.watchNamespaces)) }}
{{- fail "watchNamespaces: lists a namespace twice" }}
{{- end }}
{{- end }}

{{/*
What the operator does in each namespace it watches: reads and patches Agents and Tools
(status, finalizers for owner references that block deletion), server-side applies their
children and deletes the ones no longer desired, reads Secrets an Agent or Tool names (model
API keys, MCP bearer tokens), and records events. Nothing else: no pods, no exec, no
Secrets list/watch.
*/}}
{{- define "chorus-operator.watchedRules" -}}
- apiGroups: [chorus.dev]
  resources: [agents, tools]
  verbs: [get, list, watch, patch]
- apiGroups: [chorus.dev]
  resources: [agents/status, tools/status]
  verbs: [get, patch]
- apiGroups: [chorus.dev]
  resources: [agents/finalizers, tools/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [serviceaccounts, configmaps, services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments, flinksessionjobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
{{- end }}

{{/*
What the operator does in the Kafka namespace: KafkaTopics and KafkaUsers for each Agent
(there they cannot carry owner references, so the operator deletes them itself), the Kafka
cluster's readiness, and a Role + RoleBinding per Agent letting its ServiceAccount get its
own KafkaUser Secret and the cluster CA. The apiserver lets the operator grant only what it
holds: `get` on Secrets here (no escalate, no bind), so it can never hand out more.
*/}}
{{- define "chorus-operator.kafkaRules" -}}
- apiGroups: [kafka.strimzi.io]
  resources: [kafkatopics, kafkausers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [kafka.strimzi.io]
  resources: [kafkas]
  verbs: [get, list, watch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}

{{/*
Cluster-wide only: kopf then watches the operator's KafkaTopics and KafkaUsers (to notice
drift) across all namespaces, so it may read them everywhere; it writes them only in the
Kafka namespace.
*/}}
{{- define "chorus-operator.clusterwideKafkaRules" -}}
- apiGroups: [kafka.strimzi.io]
  resources: [kafkatopics, kafkausers]
  verbs: [get, list, watch]
{{- end }}

{{/* kopf's peering: the replicas keep their liveness in the peering object's status. */}}
{{- define "chorus-operator.peeringRules" -}}
- apiGroups: [kopf.dev]
  resources: [{{ if include "chorus-operator.clusterwide" . }}clusterkopfpeerings{{ else }}kopfpeerings{{ end }}]
  verbs: [get, list, watch, patch]
{{- end }}

{{- define "chorus-operator.subject" -}}
- kind: ServiceAccount
  name: {{ include "chorus-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}
