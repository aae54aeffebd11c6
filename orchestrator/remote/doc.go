// Package remote implements [store.Interface] over the HTTP API of
// tugboat's API server (orchestrator/apiserver), so components such as
// node agents, controllers and the scheduler run on other hosts exactly as
// they run in-process over the embedded store.
//
// It is built on client-go's REST machinery. Objects come back without
// apiVersion/kind, as the embedded store returns them, and watches
// reconnect from the last resourceVersion they delivered when the server
// ends a watch (timeout, restart); an expired resourceVersion is reported
// in-stream as a 410 ERROR event, as from the embedded store.
//
// [Client.CreateToken] requests ServiceAccount tokens (the TokenRequest
// API) with the signature of serviceaccount.Issuer.CreateToken, so a node
// agent on another host fills projected token volumes through it.
package remote
