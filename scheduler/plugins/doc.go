// Package plugins holds the scheduler's default plugins, with upstream
// kube-scheduler semantics and rejection messages:
//
//   - NodeUnschedulable: cordoned nodes, unless the pod tolerates the
//     node.kubernetes.io/unschedulable taint;
//   - NodeName: spec.nodeName;
//   - NodePorts: hostPort conflicts (protocol, IP with 0.0.0.0 wildcard);
//   - NodeResourcesFit: cpu, memory, ephemeral-storage, pod count and
//     extended resources against allocatable, with the effective request
//     max(sum of app containers, largest init container) plus overhead; it
//     also scores with LeastAllocated;
//   - NodeResourcesBalancedAllocation;
//   - NodeAffinity: nodeSelector, required and preferred node affinity
//     (In, NotIn, Exists, DoesNotExist, Gt, Lt, matchFields);
//   - TaintToleration: NoSchedule and NoExecute filter, PreferNoSchedule
//     scores;
//   - InterPodAffinity: required and preferred (anti-)affinity with
//     topologyKey, namespaces and namespaceSelector, including the
//     anti-affinity of pods already running;
//   - PodTopologySpread: maxSkew, whenUnsatisfiable, minDomains,
//     matchLabelKeys, node inclusion policies, and the default spreading of
//     pods selected by a Service, ReplicaSet, StatefulSet or
//     ReplicationController;
//   - ImageLocality;
//   - DefaultPreemption (PostFilter);
//   - DefaultBinder.
//
// [NewRegistry] returns their factories and [DefaultPlugins] the default
// profile with upstream score weights.
//
// Every plugin that filters registers the cluster events that may make a
// pod it rejected fit, with upstream-style queueing hints that look at the
// changed node or pod: NodeAffinity queues a pod only for a node that now
// matches its selector, TaintToleration for a node whose taints it now
// tolerates, NodeResourcesFit for a deleted or shrunk pod and for a node
// large enough, NodePorts for the deletion of a pod that held a wanted
// host port, InterPodAffinity and PodTopologySpread for pods their terms
// select and for topology label changes.
package plugins
