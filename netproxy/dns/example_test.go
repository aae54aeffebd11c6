package dns_test

import (
	"fmt"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tugboatdev/tugboat/netproxy/dns"
)

// Serve the cluster domain on loopback and resolve a Service.
func Example() {
	cat := dns.NewCatalog()
	cat.SetService(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	})
	srv := dns.NewServer(dns.Config{Domain: "cluster.local"}, cat)
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.default.svc.cluster.local.", mdns.TypeA},
		{"_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV},
		{"nothing.default.svc.cluster.local.", mdns.TypeA},
		{"10.0.96.10.in-addr.arpa.", mdns.TypePTR}, // reverse lookup of the ClusterIP
	} {
		m := new(mdns.Msg)
		m.SetQuestion(q.name, q.qtype)
		r, err := mdns.Exchange(m, addr.String())
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(mdns.RcodeToString[r.Rcode])
		for _, rr := range r.Answer {
			fmt.Println(rr)
		}
	}
	// Output:
	// NOERROR
	// web.default.svc.cluster.local.	5	IN	A	10.96.0.10
	// NOERROR
	// _http._tcp.web.default.svc.cluster.local.	5	IN	SRV	0 100 80 web.default.svc.cluster.local.
	// NXDOMAIN
	// NOERROR
	// 10.0.96.10.in-addr.arpa.	5	IN	PTR	web.default.svc.cluster.local.
}

// Turn a reverse-lookup name back into the address it stands for.
func ExampleParseReverseName() {
	for _, name := range []string{"10.0.96.10.in-addr.arpa.", "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", "96.10.in-addr.arpa."} {
		ip, ok := dns.ParseReverseName(name)
		fmt.Println(ip, ok)
	}
	// Output:
	// 10.96.0.10 true
	// fd00:10:96::a true
	// invalid IP false
}
