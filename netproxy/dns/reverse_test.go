package dns

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func reverseName(t testing.TB, ip string) string {
	t.Helper()
	n, err := mdns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParseReverseName(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for not an address
	}{
		{"4.3.2.1.in-addr.arpa.", "1.2.3.4"},
		{"10.0.96.10.IN-ADDR.ARPA", "10.96.0.10"},
		{"0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "fd00::10"},
		{"A.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "fd00::a"},
		{"3.2.1.in-addr.arpa.", ""},
		{"5.4.3.2.1.in-addr.arpa.", ""},
		{"256.3.2.1.in-addr.arpa.", ""},
		{"04.3.2.1.in-addr.arpa.", ""},
		{"-1.3.2.1.in-addr.arpa.", ""},
		{"0.1.ip6.arpa.", ""},
		{"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", ""},
		{"10.0.96.10.in-addr.arpa.example.", ""},
		{"in-addr.arpa.", ""},
	}
	for _, tt := range tests {
		got, ok := ParseReverseName(tt.name)
		if ok != (tt.want != "") || (ok && got != netip.MustParseAddr(tt.want)) {
			t.Errorf("ParseReverseName(%q) = %v, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

// FuzzParseReverseName: whatever parses must be the address whose reverse
// name (as miekg/dns writes it) parses back to itself.
func FuzzParseReverseName(f *testing.F) {
	for _, s := range []string{"4.3.2.1.in-addr.arpa.", "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "in-addr.arpa", "...ip6.arpa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ip, ok := ParseReverseName(name)
		if !ok {
			return
		}
		back, ok := ParseReverseName(reverseName(t, ip.String()))
		if !ok || back != ip {
			t.Fatalf("%q -> %v -> %v, %v", name, ip, back, ok)
		}
	})
}

func TestPTR(t *testing.T) {
	c := testCatalog()
	c.SetPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "plain"},
		Status: corev1.PodStatus{PodIP: "10.244.2.3", PodIPs: []corev1.PodIP{{IP: "10.244.2.3"}, {IP: "fd00:244::3"}}}})
	srv := NewServer(Config{}, c)
	tests := []struct {
		ip    string
		qtype uint16
		rcode int
		ptr   string
	}{
		{"10.96.0.10", mdns.TypePTR, mdns.RcodeSuccess, "web.default.svc.cluster.local."},       // ClusterIP
		{"fd00::10", mdns.TypePTR, mdns.RcodeSuccess, "web.default.svc.cluster.local."},         // second ClusterIP
		{"10.244.0.5", mdns.TypePTR, mdns.RcodeSuccess, "pg-0.pg.db.svc.cluster.local."},        // endpoint with hostname
		{"10.244.0.6", mdns.TypePTR, mdns.RcodeSuccess, "10-244-0-6.pg.db.svc.cluster.local."},  // endpoint without
		{"10.244.1.9", mdns.TypePTR, mdns.RcodeSuccess, "w1.pg.db.svc.cluster.local."},          // pod with hostname/subdomain
		{"10.244.2.3", mdns.TypePTR, mdns.RcodeSuccess, "10-244-2-3.apps.pod.cluster.local."},   // plain pod
		{"fd00:244::3", mdns.TypePTR, mdns.RcodeSuccess, "fd00-244--3.apps.pod.cluster.local."}, // its IPv6 address
		{"10.96.0.10", mdns.TypeA, mdns.RcodeSuccess, ""},                                       // exists, other type
		{"10.244.0.7", mdns.TypePTR, mdns.RcodeNameError, ""},                                   // not-ready endpoint
		{"192.0.2.1", mdns.TypePTR, mdns.RcodeNameError, ""},                                    // unknown
	}
	for _, tt := range tests {
		q := new(mdns.Msg)
		q.SetQuestion(reverseName(t, tt.ip), tt.qtype)
		r := srv.Answer(context.Background(), q)
		var got []string
		for _, rr := range r.Answer {
			got = append(got, rr.(*mdns.PTR).Ptr)
		}
		var want []string
		if tt.ptr != "" {
			want = []string{tt.ptr}
		}
		if r.Rcode != tt.rcode || !r.Authoritative || !cmp.Equal(want, got) {
			t.Errorf("%s %s: rcode %s aa %v answers %v; want %s %v", tt.ip, mdns.TypeToString[tt.qtype],
				mdns.RcodeToString[r.Rcode], r.Authoritative, got, mdns.RcodeToString[tt.rcode], want)
		}
		if len(r.Answer) == 0 && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA) {
			t.Errorf("%s: negative answer without SOA: %v", tt.ip, r.Ns)
		}
	}
	// Deleting the objects removes their PTR records.
	c.DeleteService("default", "web")
	c.DeletePod("apps", "plain")
	c.DeleteEndpointSlice("db", "pg-abc")
	for _, ip := range []string{"10.96.0.10", "fd00::10", "10.244.2.3", "10.244.0.5"} {
		q := new(mdns.Msg)
		q.SetQuestion(reverseName(t, ip), mdns.TypePTR)
		if r := srv.Answer(context.Background(), q); r.Rcode != mdns.RcodeNameError {
			t.Errorf("%s after delete: %s", ip, mdns.RcodeToString[r.Rcode])
		}
	}
}
