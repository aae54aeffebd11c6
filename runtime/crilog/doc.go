// Package crilog writes and reads container log files in the CRI format the
// kubelet serves: one entry per line,
//
//	2026-01-02T15:04:05.999999999Z stdout F hello world
//
// with the stream (stdout or stderr) and a tag, F for a full line or P for a
// part of a long line that continues in the next entry. Files rotate when
// they reach a maximum size; readers see rotated files first.
package crilog
