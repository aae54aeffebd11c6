package apiserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const benchClients = 16

var podsGR = schema.GroupResource{Resource: "pods"}

// concurrently runs b.N calls of op spread over benchClients goroutines,
// each with its own clientset (own TLS connection), and reports req/s and
// latency percentiles.
func concurrently(b *testing.B, ts *testServer, op func(cs *kubernetes.Clientset, client, i int) error) {
	b.Helper()
	concurrentlyWith(b, func() *kubernetes.Clientset { return clientset(b, ts.rest, true) }, op)
}

// concurrentlyWith is concurrently with clients made by mk.
func concurrentlyWith(b *testing.B, mk func() *kubernetes.Clientset, op func(cs *kubernetes.Clientset, client, i int) error) {
	b.Helper()
	clients := make([]*kubernetes.Clientset, benchClients)
	for i := range clients {
		clients[i] = mk()
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < benchClients; c++ {
		wg.Add(1)
		go func(client int, cs *kubernetes.Clientset) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(cs, client, i); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}(c, clients[c])
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func benchServer(b *testing.B) *testServer {
	ts := startServer(b, func(c *Config) { c.MaxInFlight = 1000 })
	ts.rest.QPS, ts.rest.Burst = -1, 0
	return ts
}

func BenchmarkGet(b *testing.B) {
	ts := benchServer(b)
	ctx := context.Background()
	cs := clientset(b, ts.rest, true)
	if _, err := cs.CoreV1().Pods("default").Create(ctx, testPod("default", "p", nil), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	concurrently(b, ts, func(cs *kubernetes.Clientset, _, _ int) error {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
		return err
	})
}

// BenchmarkGetEncodings compares GET of one pod with JSON, protobuf and
// CBOR responses side by side.
func BenchmarkGetEncodings(b *testing.B) {
	clientfeaturestesting.SetFeatureDuringTest(b, clientfeatures.ClientsAllowCBOR, true)
	ts := benchServer(b)
	ctx := context.Background()
	if _, err := clientset(b, ts.rest, true).CoreV1().Pods("default").Create(ctx, testPod("default", "p", nil), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for _, enc := range []string{"application/json", "application/vnd.kubernetes.protobuf", "application/cbor"} {
		b.Run(enc[strings.LastIndexAny(enc, "/.")+1:], func(b *testing.B) {
			concurrentlyWith(b, func() *kubernetes.Clientset {
				c := rest.CopyConfig(ts.rest)
				c.ContentType, c.AcceptContentTypes = enc, enc
				return kubernetes.NewForConfigOrDie(c)
			}, func(cs *kubernetes.Clientset, _, _ int) error {
				_, err := cs.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
				return err
			})
		})
	}
}

func BenchmarkList1000Pods(b *testing.B) {
	ts := benchServer(b)
	ctx := context.Background()
	cs := clientset(b, ts.rest, true)
	for i := 0; i < 1000; i++ {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, testPod("default", fmt.Sprintf("p%04d", i), map[string]string{"app": "x"}), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	concurrently(b, ts, func(cs *kubernetes.Clientset, _, _ int) error {
		l, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err == nil && len(l.Items) != 1000 {
			err = fmt.Errorf("listed %d pods", len(l.Items))
		}
		return err
	})
}

func BenchmarkCreate(b *testing.B) {
	ts := benchServer(b)
	ctx := context.Background()
	concurrently(b, ts, func(cs *kubernetes.Clientset, client, i int) error {
		_, err := cs.CoreV1().Pods("default").Create(ctx, testPod("default", fmt.Sprintf("c%02d-%07d", client, i), nil), metav1.CreateOptions{})
		return err
	})
}

func BenchmarkPatch(b *testing.B) {
	ts := benchServer(b)
	ctx := context.Background()
	cs := clientset(b, ts.rest, true)
	for i := 0; i < benchClients; i++ {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, testPod("default", fmt.Sprintf("p%02d", i), nil), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	concurrently(b, ts, func(cs *kubernetes.Clientset, client, i int) error {
		patch := fmt.Sprintf(`{"metadata":{"labels":{"n":"%d"}}}`, i)
		_, err := cs.CoreV1().Pods("default").Patch(ctx, fmt.Sprintf("p%02d", client), types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	})
}

// BenchmarkWatchFanout1000 opens 1,000 HTTP watches (one TLS connection
// each) and measures how long one change takes to reach all of them.
func BenchmarkWatchFanout1000(b *testing.B) {
	const watchers = 1000
	ts := benchServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := clientset(b, ts.rest, true)
	cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fan"}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(ts.srv.PKI().AdminCertPEM, ts.srv.PKI().AdminKeyPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.srv.PKI().CertPool(), Certificates: []tls.Certificate{cert}},
		MaxConnsPerHost: 0, MaxIdleConnsPerHost: watchers}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	got := make(chan struct{}, watchers*4)
	var ready sync.WaitGroup
	for i := 0; i < watchers; i++ {
		ready.Add(1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"/api/v1/namespaces/default/configmaps?watch=true&fieldSelector=metadata.name%3Dfan&resourceVersion="+cm.ResourceVersion, nil)
			resp, err := hc.Do(req)
			ready.Done()
			if err != nil {
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				got <- struct{}{}
			}
		}()
	}
	ready.Wait()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := cs.CoreV1().ConfigMaps("default").Patch(ctx, "fan", types.MergePatchType, []byte(fmt.Sprintf(`{"data":{"n":"%d"}}`, i)), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < watchers; j++ {
			select {
			case <-got:
			case <-time.After(30 * time.Second):
				b.Fatalf("only %d of %d watchers got event %d", j, watchers, i)
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "all-1000-delivered-p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "all-1000-delivered-p99-ms")
	cancel()
}

// BenchmarkTrackUpdate measures the managedFields bookkeeping a create
// adds (apimachinery's managedfields over the reflected schemas).
func BenchmarkTrackUpdate(b *testing.B) {
	ts := startServer(b)
	k := ts.st.Registry().ForResource(podsGR)
	if _, err := ts.srv.fieldManager(k, ""); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := testPod("default", "p", map[string]string{"a": "b"})
		out := ts.srv.trackUpdate(k, "", nil, p, "bench")
		if len(out.(*corev1.Pod).ManagedFields) != 1 {
			b.Fatal("no managed fields recorded")
		}
	}
}
