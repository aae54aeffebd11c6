package storeapi

import "strconv"

// PortRange is an inclusive range of ports, such as the NodePort range.
type PortRange struct {
	Min, Max int32
}

// String formats the range as the API server's messages do ("30000-32767").
func (r PortRange) String() string {
	return strconv.Itoa(int(r.Min)) + "-" + strconv.Itoa(int(r.Max))
}

// defaultNodePortRange is upstream's default --service-node-port-range.
var defaultNodePortRange = PortRange{Min: 30000, Max: 32767}

// DefaultNodePortRange returns upstream's default --service-node-port-range,
// 30000-32767, which a [Config] without NodePortRange uses.
func DefaultNodePortRange() PortRange { return defaultNodePortRange }
