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

{{/* Standard labels, on every object. */}}
{{- define "cert-agent.labels" -}}
helm.sh/chart: {{ include "cert-agent.chart" . }}
{{ include "cert-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | toString | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: cert-agent
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels: immutable in a Deployment, so only name and instance. */}}
{{- define "cert-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cert-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cert-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cert-agent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cert-agent.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{- define "cert-agent.leaderElectionId" -}}
{{- default (include "cert-agent.fullname" .) .Values.leaderElection.id }}
{{- end }}

{{/*
Settings that the schema cannot express; fail the render with one clear line.
*/}}
{{- define "cert-agent.validate" -}}
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
