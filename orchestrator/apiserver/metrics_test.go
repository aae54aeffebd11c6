package apiserver

import (
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/tugboatdev/tugboat/store"
)

// TestMetricsCollectors serves the store's and a caller's collectors on
// /metrics.
func TestMetricsCollectors(t *testing.T) {
	proxied := prometheus.NewCounter(prometheus.CounterOpts{Name: "tugboat_netproxy_test_connections_total", Help: "test"})
	proxied.Add(3)
	var st *store.Store
	ts := startServer(t, func(c *Config) {
		st = c.Store.(*store.Store)
		c.Collectors = append(st.Collectors(), proxied)
	})
	hc, err := rest.HTTPClientFor(ts.rest)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tugboat_store_revision ",
		"tugboat_store_transactions_total",
		"tugboat_netproxy_test_connections_total 3",
		"apiserver_current_inflight_requests",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// A collector clashing with the server's own is refused.
	_, err = New(Config{Store: st, DataDir: t.TempDir(), Collectors: []prometheus.Collector{prometheus.NewGoCollector()}})
	if err == nil {
		t.Error("New accepted a duplicate Go collector")
	}
}
