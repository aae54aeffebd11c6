// Package informer adapts the shared list-watch cache (store/informer) to
// the proxy's event loop: it delivers one full list once the resource has
// been listed, then every change in order, on a channel. After a broken
// watch the shared cache lists again and the difference arrives as
// ordinary changes, so the receiver converges without a second full list.
package informer
