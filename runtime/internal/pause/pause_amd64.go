package pause

import _ "embed"

//go:embed pause-amd64
var binary []byte

// Binary returns the pause executable for this machine's architecture,
// or nil when there is none (only amd64 is built).
func Binary() []byte { return binary }
