// Package manifests holds the seeds' Kubernetes manifests as YAML files
// for kubectl (nginx Deployment and NodePort Service, Job, CronJob,
// emptyDir and init-container Pods, PodDisruptionBudgets, namespaces, a
// StatefulSet with its headless Service and volume claims, a DaemonSet,
// probes, resource limits, ConfigMap and Secret, tolerations), with only
// their images changed to the demo images of the local registry
// 127.0.0.1:5000 that examples/cluster runs. The package has no Go API;
// its test decodes every file strictly and creates every object in a
// store, and internal/e2e applies them with kubectl.
package manifests
