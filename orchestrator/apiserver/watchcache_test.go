package apiserver

import (
	"bufio"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func TestFrameCacheEncodesOnce(t *testing.T) {
	var c frameCache
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}
	var calls atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.frame(frameKey{obj: obj, typ: watch.Added, media: mediaJSON}, func() ([]byte, error) {
				calls.Add(1)
				return []byte("frame"), nil
			})
			if err != nil || string(b) != "frame" {
				t.Errorf("frame = %q, %v", b, err)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("encoded %d times, want once", n)
	}
	// Another media type, event type or object is another frame.
	for _, k := range []frameKey{{obj, watch.Added, mediaProtobuf}, {obj, watch.Modified, mediaJSON}, {obj.DeepCopy(), watch.Added, mediaJSON}} {
		if _, err := c.frame(k, func() ([]byte, error) { calls.Add(1); return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("encoded %d times, want 4", n)
	}
	// Old entries are dropped once frameCacheSize newer ones came.
	for i := 0; i < frameCacheSize; i++ {
		if _, err := c.frame(frameKey{obj: &corev1.ConfigMap{}, typ: watch.Added, media: mediaJSON}, func() ([]byte, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.entries) != frameCacheSize {
		t.Errorf("%d entries, want %d", len(c.entries), frameCacheSize)
	}
	if _, err := c.frame(frameKey{obj: obj, typ: watch.Added, media: mediaJSON}, func() ([]byte, error) { calls.Add(1); return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("an evicted frame was not encoded again (%d encodes)", n)
	}
}

// TestWatchersShareFrames opens watches in each media type and checks that
// every watcher of a type receives the same bytes for one change, and that
// the change was encoded once per media type.
func TestWatchersShareFrames(t *testing.T) {
	ts := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := ts.httpClient(true)
	cm, err := ts.st.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "default"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := cm.(*corev1.ConfigMap).ResourceVersion
	const perType = 5
	media := []string{mediaJSON, mediaProtobuf, mediaCBOR}
	got := make(chan [2]string, perType*len(media))
	var ready sync.WaitGroup
	for _, m := range media {
		for i := 0; i < perType; i++ {
			ready.Add(1)
			go func() {
				req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion="+rv, nil)
				req.Header.Set("Accept", m)
				resp, err := c.Do(req)
				ready.Done()
				if err != nil {
					return
				}
				defer resp.Body.Close()
				r := bufio.NewReader(resp.Body)
				buf := make([]byte, 64<<10)
				n, err := r.Read(buf)
				if err != nil {
					return
				}
				got <- [2]string{m, string(buf[:n])}
			}()
		}
	}
	ready.Wait()
	if _, err := ts.st.Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "default"}, Data: map[string]string{"k": "v"}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	frames := map[string]map[string]int{}
	for i := 0; i < perType*len(media); i++ {
		f := <-got
		if frames[f[0]] == nil {
			frames[f[0]] = map[string]int{}
		}
		frames[f[0]][f[1]]++
	}
	for _, m := range media {
		if len(frames[m]) != 1 {
			t.Errorf("%s watchers got %d different frames, want 1", m, len(frames[m]))
		}
	}
	ts.srv.frames.mu.Lock()
	n := len(ts.srv.frames.entries)
	ts.srv.frames.mu.Unlock()
	if n != len(media) {
		t.Errorf("%d frames cached, want %d (one per media type)", n, len(media))
	}
}
