//go:build !amd64

package pause

// Binary returns the pause executable for this machine's architecture,
// or nil when there is none (only amd64 is built).
func Binary() []byte { return nil }
