{{/* Chart name, overridable. */}}
{{- define "cert-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. Kept to 63 characters (the DNS label limit some names have).
If the release name already contains the chart name it is not repeated.
*/}}
{{- define "cert-agent.fullname" -}}
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

{{/*
Name of the cluster-scoped RBAC objects. ClusterRoles share one namespace-less name space, so the
release namespace is part of the name: two releases called "cert-agent" in different namespaces (one
per watched namespace, say) must not overwrite each other's ClusterRole.
*/}}
{{- define "cert-agent.clusterRoleName" -}}
{{- printf "%s-%s" (include "cert-agent.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "cert-agent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels, on every object (the pod template too), with commonLabels: the chart's own win. */}}
{{- define "cert-agent.labels" -}}
{{- $own := dict
  "helm.sh/chart" (include "cert-agent.chart" .)
  "app.kubernetes.io/version" (include "cert-agent.tag" . | trunc 63 | trimSuffix "-")
  "app.kubernetes.io/component" "agent"
  "app.kubernetes.io/part-of" "cert-agent"
  "app.kubernetes.io/managed-by" .Release.Service }}
{{- $own = merge $own (include "cert-agent.selectorLabels" . | fromYaml) }}
{{- toYaml (merge $own (deepCopy .Values.commonLabels)) }}
{{- end }}

{{/*
The annotations of an object's metadata, as a new line indented for metadata: commonAnnotations,
with the object's own (`extra`, e.g. serviceAccount.annotations) winning; nothing when both are empty.
Use, right after the labels: {{- include "cert-agent.annotations" (dict "root" $ "extra" .Values.x.annotations) }}
*/}}
{{- define "cert-agent.annotations" -}}
{{- with merge (deepCopy (.extra | default dict)) (deepCopy .root.Values.commonAnnotations) }}
{{- printf "annotations:\n%s" (toYaml . | indent 2) | nindent 2 }}
{{- end }}
{{- end }}

{{/* Selector labels: immutable in a Deployment, so only name and instance. */}}
{{- define "cert-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cert-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /* The ServiceAccount: serviceAccount.name, else the full name when the chart creates it. There is
no fallback to the namespace's "default" account (cert-agent.validate refuses create=false without
a name): the Roles would grant Secrets to every pod that runs as it. */ -}}
{{- define "cert-agent.serviceAccountName" -}}
{{- default (include "cert-agent.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
The image tag as text: image.tag, else the chart's appVersion. A number from a values file reaches
the chart as a float (YAML `tag: 1.20` is 1.2, `tag: 20240101` would print as 2.0240101e+07): a whole
number is written as an integer, any other number is refused, since its digits are already lost.
*/}}
{{- define "cert-agent.tag" -}}
{{- $tag := .Values.image.tag }}
{{- if kindIs "string" $tag }}
{{- $tag | default .Chart.AppVersion }}
{{- else if kindIs "invalid" $tag }}
{{- .Chart.AppVersion }}
{{- else if ne (float64 $tag) (floor $tag) }}
{{- fail (printf "image.tag is the number %v: YAML read a tag such as 1.20 as a number and dropped its digits; quote it (tag: \"1.20\") or use --set-string" $tag) }}
{{- else }}
{{- int64 $tag | toString }}
{{- end }}
{{- end }}

{{/* repository@digest when image.digest is set (it wins over the tag), else repository:tag. */}}
{{- define "cert-agent.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "cert-agent.tag" .) }}
{{- end }}
{{- end }}

{{/*
A duration value (e.g. "10s") in milliseconds, as agent/config.ts parses it (a number, then ms, s, m
or h; rounded to whole milliseconds). Fails when the agent would refuse it: malformed, or zero.
Use: include "cert-agent.durationMs" (list "retry.baseDelay" .Values.retry.baseDelay) | int64
*/}}
{{- define "cert-agent.durationMs" -}}
{{- $name := index . 0 }}
{{- $text := index . 1 | toString }}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" $text) }}
{{- fail (printf "%s: %q is not a duration the agent reads: a number with ms, s, m or h (e.g. 10s, 1.5h)" $name $text) }}
{{- end }}
{{- $unit := regexFind "(ms|s|m|h)$" $text }}
{{- $ms := round (mulf (trimSuffix $unit $text | float64) (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit)) 0 }}
{{- if lt $ms 1.0 }}
{{- fail (printf "%s: %q is zero (under 1ms): the agent refuses it at start; give a positive duration" $name $text) }}
{{- end }}
{{- $ms | int64 }}
{{- end }}

{{- define "cert-agent.leaderElectionId" -}}
{{- default (include "cert-agent.fullname" .) .Values.leaderElection.id }}
{{- end }}

{{/*
Settings that the schema cannot express; fail the render with one clear line.
*/}}
{{- define "cert-agent.validate" -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- fail "serviceAccount.create=false requires serviceAccount.name: without it the agent would run as, and the Roles would be bound to, the namespace's \"default\" ServiceAccount, which every pod there uses" }}
{{- end }}
{{- range $name, $value := dict "resyncPeriod" .Values.resyncPeriod "bounce.timeout" .Values.bounce.timeout "health.stallThreshold" .Values.health.stallThreshold "health.clockSkewWarning" .Values.health.clockSkewWarning }}
{{- $_ := include "cert-agent.durationMs" (list $name $value) }}
{{- end }}
{{- $base := include "cert-agent.durationMs" (list "retry.baseDelay" .Values.retry.baseDelay) | int64 }}
{{- $max := include "cert-agent.durationMs" (list "retry.maxDelay" .Values.retry.maxDelay) | int64 }}
{{- if lt $max $base }}
{{- fail (printf "retry.maxDelay (%s) is below retry.baseDelay (%s): the agent refuses this at start" .Values.retry.maxDelay .Values.retry.baseDelay) }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.health.port)) }}
{{- fail (printf "metrics.port and health.port are both %d: the agent cannot listen twice on one port; change one" (int .Values.health.port)) }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not (and .Values.metrics.enabled .Values.metrics.service.enabled)) }}
{{- fail "serviceMonitor.enabled=true requires metrics.enabled=true and metrics.service.enabled=true: the ServiceMonitor selects the metrics Service" }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- if and (ne (toString .minAvailable) "") (ne (toString .maxUnavailable) "") }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both" }}
{{- end }}
{{- end }}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas > 1 requires leaderElection.enabled=true: several agents working the same IssuedCertificate would each generate a key" }}
{{- end }}
{{- if and .Values.prometheusRule.enabled (not .Values.metrics.enabled) }}
{{- fail "prometheusRule.enabled=true requires metrics.enabled=true: the alerts read the agent's metrics" }}
{{- end }}
{{- end }}

{{/* ---------------------------------------------------------------------------------------------
RBAC. The permissions fall into three sets, each granted either cluster-wide (ClusterRole) or per
namespace (Role), see "cert-agent.rbacPlan":
  mesh     the three certificates.mesh.gloo.solo.io resources and Events about them: cluster-wide,
           or a Role in watchNamespace when it is set (the agent then lists and watches only there).
  secrets  the generated private key (next to its IssuedCertificate), the target secret (by default
           istio-system/cacerts, i.e. usually NOT the watched namespace) and rootCertSync's source
           secret: a Role in each of "cert-agent.secretNamespaces" (the agent gets the same list as
           --secret-namespaces and watches each), cluster-wide only with rbac.allSecretNamespaces.
  pods     pods to bounce and rootCertSync's ConfigMaps in the namespaces of PodBounceDirective
           selectors (istiod, gateways, workloads): cluster-wide unless rbac.podNamespaces is set.
The Lease for leader election is always a Role in the release namespace (role.yaml).
---------------------------------------------------------------------------------------------- */}}
{{- /* Each verb is one the agent calls (the README's RBAC table says which code calls it and why). */ -}}
{{- define "cert-agent.rules.mesh" -}}
- apiGroups: ["certificates.mesh.gloo.solo.io"]
  resources: ["issuedcertificates"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["certificates.mesh.gloo.solo.io"]
  resources: ["issuedcertificates/status"]
  verbs: ["update"]
- apiGroups: ["certificates.mesh.gloo.solo.io"]
  resources: ["issuedcertificates/finalizers"]
  verbs: ["update"]
- apiGroups: ["certificates.mesh.gloo.solo.io"]
  resources: ["certificaterequests"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: ["certificates.mesh.gloo.solo.io"]
  resources: ["podbouncedirectives"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["certificates.mesh.gloo.solo.io"]
  resources: ["podbouncedirectives/status"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{- define "cert-agent.rules.secrets" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "delete"]
- apiGroups: ["certificates.mesh.gloo.solo.io"]
  resources: ["issuedcertificates"]
  verbs: ["get"]
{{- end }}

{{- /* What the pod bouncer needs, by --bounce-strategy: rollout restarts workloads (and evicts bare
pods), evict uses the Eviction API, delete deletes pods. */ -}}
{{- define "cert-agent.rules.pods" -}}
{{- $strategy := .Values.bounce.strategy }}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"{{ if eq $strategy "delete" }}, "delete"{{ end }}]
{{- if ne $strategy "delete" }}
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
{{- end }}
{{- if eq $strategy "rollout" }}
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["get", "update"]
{{- end }}
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
The namespaces where the agent reads and writes Secrets, comma-separated (its --secret-namespaces):
rbac.secretNamespaces (the targets' namespaces) plus the namespace whose IssuedCertificates it
watches (the staged private keys live next to them): watchNamespace, else the release namespace,
where Gloo Mesh's management plane writes the IssuedCertificates for its agent.
*/}}
{{- define "cert-agent.secretNamespaces" -}}
{{- append .Values.rbac.secretNamespaces (.Values.watchNamespace | default .Release.Namespace) | uniq | join "," }}
{{- end }}

{{/*
Which rule sets go where, as YAML: {cluster: [set...], namespaces: {ns: [set...]}}.
Use: $plan := include "cert-agent.rbacPlan" . | fromYaml
*/}}
{{- define "cert-agent.rbacPlan" -}}
{{- $cluster := list }}
{{- $namespaces := dict }}
{{- $watch := .Values.watchNamespace }}
{{- if $watch }}
{{- $_ := set $namespaces $watch (list "mesh") }}
{{- else }}
{{- $cluster = append $cluster "mesh" }}
{{- end }}
{{- if .Values.rbac.allSecretNamespaces }}
{{- $cluster = append $cluster "secrets" }}
{{- else }}
{{- range $ns := include "cert-agent.secretNamespaces" . | splitList "," }}
{{- $_ := set $namespaces $ns (append (get $namespaces $ns | default list) "secrets") }}
{{- end }}
{{- end }}
{{- if .Values.rbac.podNamespaces }}
{{- range $ns := uniq .Values.rbac.podNamespaces }}
{{- $_ := set $namespaces $ns (append (get $namespaces $ns | default list) "pods") }}
{{- end }}
{{- else }}
{{- $cluster = append $cluster "pods" }}
{{- end }}
cluster: {{ toJson $cluster }}
namespaces: {{ toJson $namespaces }}
{{- end }}
