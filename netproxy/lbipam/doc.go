// Package lbipam gives Services of type LoadBalancer an address from a
// configured pool and writes it to status.loadBalancer.ingress, as k3s's
// servicelb or MetalLB do for a bare-metal cluster. The proxy then serves
// the address like an external IP.
package lbipam
