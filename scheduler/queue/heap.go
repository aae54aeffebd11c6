package queue

import (
	"container/heap"

	"k8s.io/apimachinery/pkg/types"
)

// podHeap is a heap of queued pods with removal by UID.
type podHeap struct {
	items []*QueuedPodInfo
	index map[types.UID]*QueuedPodInfo
	less  func(a, b *QueuedPodInfo) bool
}

func newPodHeap(less func(a, b *QueuedPodInfo) bool) *podHeap {
	return &podHeap{index: map[types.UID]*QueuedPodInfo{}, less: less}
}

func (h *podHeap) Len() int           { return len(h.items) }
func (h *podHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *podHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].heapIndex = i
	h.items[j].heapIndex = j
}
func (h *podHeap) Push(x any) {
	q := x.(*QueuedPodInfo)
	q.heapIndex = len(h.items)
	h.index[q.Pod.UID] = q
	h.items = append(h.items, q)
}
func (h *podHeap) Pop() any {
	n := len(h.items) - 1
	q := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	delete(h.index, q.Pod.UID)
	return q
}

func (h *podHeap) get(uid types.UID) *QueuedPodInfo {
	return h.index[uid]
}

// addOrUpdate inserts q or replaces the entry with q's UID.
func (h *podHeap) addOrUpdate(q *QueuedPodInfo) {
	if old, ok := h.index[q.Pod.UID]; ok {
		i := old.heapIndex
		q.heapIndex = i
		h.items[i] = q
		h.index[q.Pod.UID] = q
		heap.Fix(h, i)
		return
	}
	heap.Push(h, q)
}

func (h *podHeap) remove(uid types.UID) *QueuedPodInfo {
	old, ok := h.index[uid]
	if !ok {
		return nil
	}
	return heap.Remove(h, old.heapIndex).(*QueuedPodInfo)
}

func (h *podHeap) peek() *QueuedPodInfo {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func (h *podHeap) pop() *QueuedPodInfo {
	if len(h.items) == 0 {
		return nil
	}
	return heap.Pop(h).(*QueuedPodInfo)
}
