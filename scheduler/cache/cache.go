package cache

import (
	"fmt"
	"maps"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tugboatdev/tugboat/scheduler/framework"
)

type nodeItem struct {
	name       string
	info       *framework.NodeInfo
	prev, next *nodeItem
}

type podState struct {
	info    *framework.PodInfo
	node    string
	assumed bool
	bound   bool
}

// Cache holds the nodes and the pods placed on them, including pods the
// scheduler assumed but whose binding is not yet confirmed by the store.
// It is safe for concurrent use: informer handlers, the scheduling loop and
// the binders all call it.
type Cache struct {
	mu         sync.Mutex
	nodes      map[string]*nodeItem
	head       *nodeItem // most recently changed first
	pods       map[types.UID]*podState
	removed    map[string]int64
	generation int64
	newPodInfo func(*v1.Pod) *framework.PodInfo
}

// New returns an empty cache. newPodInfo builds the cached facts of a pod
// (nil means framework.NewPodInfo); the scheduler passes one that resolves
// PriorityClass names.
func New(newPodInfo func(*v1.Pod) *framework.PodInfo) *Cache {
	if newPodInfo == nil {
		newPodInfo = framework.NewPodInfo
	}
	return &Cache{nodes: map[string]*nodeItem{}, pods: map[types.UID]*podState{}, removed: map[string]int64{}, newPodInfo: newPodInfo}
}

func (c *Cache) touch(name string) *nodeItem {
	it := c.nodes[name]
	if it == nil {
		it = &nodeItem{name: name, info: framework.NewNodeInfo()}
		c.nodes[name] = it
		delete(c.removed, name)
	} else if it != c.head {
		if it.prev != nil {
			it.prev.next = it.next
		}
		if it.next != nil {
			it.next.prev = it.prev
		}
		it.prev, it.next = nil, nil
	}
	if it != c.head {
		it.next = c.head
		if c.head != nil {
			c.head.prev = it
		}
		c.head = it
	}
	c.generation++
	it.info.Generation = c.generation
	return it
}

func (c *Cache) unlink(name string) {
	it := c.nodes[name]
	if it == nil {
		return
	}
	if it.prev != nil {
		it.prev.next = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	if c.head == it {
		c.head = it.next
	}
	delete(c.nodes, name)
	c.generation++
	c.removed[name] = c.generation
}

// AddNode adds or replaces a node.
func (c *Cache) AddNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touch(node.Name).info.SetNode(node)
}

// UpdateNode replaces a node.
func (c *Cache) UpdateNode(node *v1.Node) { c.AddNode(node) }

// RemoveNode removes a node. Pods still on it stay in the cache until they
// are deleted, but the node is no longer offered to the scheduler.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.nodes[name]
	if it == nil {
		return
	}
	if len(it.info.Pods) == 0 {
		c.unlink(name)
		return
	}
	c.touch(name).info.RemoveNode()
}

func (c *Cache) addPodLocked(pi *framework.PodInfo, node string) {
	c.touch(node).info.AddPodInfo(pi)
}

func (c *Cache) removePodLocked(ps *podState, pod *v1.Pod) {
	it := c.nodes[ps.node]
	if it == nil {
		return
	}
	_ = c.touch(ps.node).info.RemovePod(pod)
	if it.info.Node() == nil && len(it.info.Pods) == 0 {
		c.unlink(ps.node)
	}
}

// AssumePod places pod on node before its binding is written, so the next
// scheduling cycle already sees it there.
func (c *Cache) AssumePod(pi *framework.PodInfo, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[pi.Pod.UID]; ok {
		return fmt.Errorf("cache: pod %s/%s is already in the cache", pi.Pod.Namespace, pi.Pod.Name)
	}
	c.pods[pi.Pod.UID] = &podState{info: pi, node: node, assumed: true}
	c.addPodLocked(pi, node)
	return nil
}

// FinishBinding records that the binding of an assumed pod was written.
func (c *Cache) FinishBinding(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps := c.pods[pod.UID]; ps != nil && ps.assumed {
		ps.bound = true
	}
}

// ForgetPod undoes AssumePod after a failed binding.
func (c *Cache) ForgetPod(pod *v1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.pods[pod.UID]
	if ps == nil {
		return fmt.Errorf("cache: pod %s/%s is not in the cache", pod.Namespace, pod.Name)
	}
	if !ps.assumed {
		return fmt.Errorf("cache: pod %s/%s is bound, not assumed", pod.Namespace, pod.Name)
	}
	c.removePodLocked(ps, ps.info.Pod)
	delete(c.pods, pod.UID)
	return nil
}

// IsAssumed reports whether pod is assumed and not yet confirmed.
func (c *Cache) IsAssumed(pod *v1.Pod) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.pods[pod.UID]
	return ps != nil && ps.assumed
}

// AddPod records a pod the store reports as assigned to a node. It
// confirms an assumed pod.
func (c *Cache) AddPod(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setPodLocked(pod)
}

func (c *Cache) setPodLocked(pod *v1.Pod) {
	if ps := c.pods[pod.UID]; ps != nil && ps.assumed && ps.node == pod.Spec.NodeName && maps.Equal(ps.info.Pod.Labels, pod.Labels) {
		// The store confirms what we assumed: the placement and every fact
		// derived from the pod are unchanged, so the node stays as it is.
		ps.assumed = false
		return
	}
	if ps := c.pods[pod.UID]; ps != nil {
		c.removePodLocked(ps, ps.info.Pod)
	}
	pi := c.newPodInfo(pod)
	c.pods[pod.UID] = &podState{info: pi, node: pod.Spec.NodeName}
	c.addPodLocked(pi, pod.Spec.NodeName)
}

// UpdatePod records a new version of an assigned pod.
func (c *Cache) UpdatePod(pod *v1.Pod) { c.AddPod(pod) }

// RemovePod forgets an assigned pod (deleted, or finished).
func (c *Cache) RemovePod(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.pods[pod.UID]
	if ps == nil {
		return
	}
	c.removePodLocked(ps, ps.info.Pod)
	delete(c.pods, pod.UID)
}

// GetPod returns the cached pod info, or nil.
func (c *Cache) GetPod(uid types.UID) *framework.PodInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps := c.pods[uid]; ps != nil {
		return ps.info
	}
	return nil
}

// NodeCount returns the number of nodes.
func (c *Cache) NodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, it := range c.nodes {
		if it.info.Node() != nil {
			n++
		}
	}
	return n
}

// PodCount returns the number of pods, assumed ones included.
func (c *Cache) PodCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pods)
}

// UpdateSnapshot brings s up to date, copying only the nodes changed since
// s.Generation. A cache is meant to feed one snapshot.
func (c *Cache) UpdateSnapshot(s *framework.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.Generation == c.generation {
		return
	}
	for it := c.head; it != nil && it.info.Generation > s.Generation; it = it.next {
		s.Set(it.name, it.info.Clone())
	}
	for name, g := range c.removed {
		if g > s.Generation {
			s.Set(name, nil)
		}
		delete(c.removed, name)
	}
	s.Commit(c.generation)
}
