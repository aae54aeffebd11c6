package agent

import (
	"io/fs"
	"syscall"
)

// statDev is the device of a file (0 when unknown).
func statDev(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Dev
	}
	return 0
}

// statBlocks is the space a file takes on disk, in bytes.
func statBlocks(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
