// Package eventhub fans container events out to subscribers without ever
// blocking the publisher or dropping events: each subscriber has its own
// unbounded queue drained by a goroutine.
package eventhub
