package plugins

import (
	"github.com/tugboatdev/tugboat/scheduler/framework"
)

// Names of the default plugins, as upstream.
const (
	NodeUnschedulableName  = "NodeUnschedulable"
	NodeNameName           = "NodeName"
	NodePortsName          = "NodePorts"
	NodeResourcesFitName   = "NodeResourcesFit"
	BalancedAllocationName = "NodeResourcesBalancedAllocation"
	NodeAffinityName       = "NodeAffinity"
	TaintTolerationName    = "TaintToleration"
	InterPodAffinityName   = "InterPodAffinity"
	PodTopologySpreadName  = "PodTopologySpread"
	ImageLocalityName      = "ImageLocality"
	DefaultPreemptionName  = "DefaultPreemption"
	DefaultBinderName      = "DefaultBinder"
)

// NewRegistry returns the factories of all default plugins. Add your own
// plugins to the returned map before building a framework.
func NewRegistry() framework.Registry {
	return framework.Registry{
		NodeUnschedulableName:  newNodeUnschedulable,
		NodeNameName:           newNodeName,
		NodePortsName:          newNodePorts,
		NodeResourcesFitName:   newFit,
		BalancedAllocationName: newBalancedAllocation,
		NodeAffinityName:       newNodeAffinity,
		TaintTolerationName:    newTaintToleration,
		InterPodAffinityName:   newInterPodAffinity,
		PodTopologySpreadName:  newPodTopologySpread,
		ImageLocalityName:      newImageLocality,
		DefaultPreemptionName:  newDefaultPreemption,
		DefaultBinderName:      newDefaultBinder,
	}
}

// DefaultPlugins returns the default profile's plugins with upstream score
// weights, in the order their Filters run.
func DefaultPlugins() []framework.PluginSpec {
	return []framework.PluginSpec{
		{Name: NodeUnschedulableName},
		{Name: NodeNameName},
		{Name: TaintTolerationName, Weight: 3},
		{Name: NodeAffinityName, Weight: 2},
		{Name: NodePortsName},
		{Name: NodeResourcesFitName, Weight: 1},
		{Name: PodTopologySpreadName, Weight: 2},
		{Name: InterPodAffinityName, Weight: 2},
		{Name: DefaultPreemptionName},
		{Name: BalancedAllocationName, Weight: 1},
		{Name: ImageLocalityName, Weight: 1},
		{Name: DefaultBinderName},
	}
}
