package nodeproc_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/tugboatdev/tugboat/orchestrator/agent"
	"github.com/tugboatdev/tugboat/orchestrator/agent/nodeproc"
	"github.com/tugboatdev/tugboat/runtime/containerd"
)

// A node process: the agent with a private containerd, reaching the API
// server of admin.kubeconfig, until SIGTERM; a component beside the agent
// (a service proxy, say) gets the node's store client and agent. On the
// way out Run removes the node's containers and the containerd daemon.
// (Compiled, not run: it needs root, containerd and an API server.)
func ExampleRun() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := nodeproc.Run(ctx, nodeproc.Config{
		Kubeconfig: "/var/lib/tugboat/admin.kubeconfig",
		DataDir:    "/var/lib/tugboat/node-1",
		Runtime:    containerd.Options{ImagesDir: "/var/lib/tugboat/images"},
		Agent: agent.Config{
			NodeName: "node-1",
			NodeIP:   "10.0.0.11",
			Labels:   map[string]string{"topology.kubernetes.io/zone": "a"},
		},
		// MemoryLimit 0: nodeproc.DefaultMemoryLimit unless GOMEMLIMIT is set.
	}, func(ctx context.Context, n *nodeproc.Node) error {
		n.Log.Info("node process running", "node", n.Agent.NodeName())
		<-ctx.Done()
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
