package eventhub

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/runtime"
)

func TestFanOutInOrderWithoutLoss(t *testing.T) {
	var h Hub
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := h.Subscribe(ctx), h.Subscribe(ctx)
	var want []string
	// Publish far more than any buffer before anyone reads: nothing blocks
	// and nothing is dropped.
	for i := range 1000 {
		id := fmt.Sprint(i)
		want = append(want, id)
		h.Publish(runtime.ContainerEvent{Type: runtime.EventStarted, ContainerID: id})
	}
	for name, ch := range map[string]<-chan runtime.ContainerEvent{"a": a, "b": b} {
		var got []string
		for range want {
			got = append(got, (<-ch).ContainerID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("subscriber %s (-want +got):\n%s", name, diff)
		}
	}
}

func TestSubscriptionEnds(t *testing.T) {
	var h Hub
	ctx, cancel := context.WithCancel(context.Background())
	ch := h.Subscribe(ctx)
	other := h.Subscribe(context.Background())
	cancel()
	for range ch {
	}
	h.Close()
	for range other {
	}
	if _, ok := <-h.Subscribe(context.Background()); ok {
		t.Error("subscription after Close delivered an event")
	}
	h.Publish(runtime.ContainerEvent{}) // no subscribers: a no-op
}
