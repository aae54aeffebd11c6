// Package informer lists and watches one resource of a store.Interface and
// delivers the changes on a channel: first the full list, then each watch
// event, and again a full list whenever the watch has to be restarted (for
// example after 410 Expired).
package informer
