package containerd_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"time"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/runtime/cni"
	"github.com/tugboatdev/tugboat/runtime/containerd"
	"github.com/tugboatdev/tugboat/runtime/images"
)

// Example runs a pod on a private containerd with a bridge pod network,
// using a busybox image built from the node's busybox-static (no registry,
// no Docker). It needs root, containerd, runc and the CNI plugins, so it is
// compiled but not run by go test.
func Example() {
	ctx := context.Background()
	network, err := cni.New(cni.Config{Name: "example", Bridge: "tbexample0", PodCIDR: netip.MustParsePrefix("10.244.7.0/24")})
	if err != nil {
		log.Fatal(err)
	}
	defer network.Destroy(ctx)
	rt, err := containerd.New(ctx, containerd.Options{DataDir: "/var/lib/tugboat-example", Namespace: "example", Network: network})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Destroy(ctx) // a real node would call Close and keep its pods

	img, err := images.Busybox()
	if err != nil {
		log.Fatal(err)
	}
	var archive bytes.Buffer
	if err := images.WriteArchive(&archive, "example.local/busybox:1", img); err != nil {
		log.Fatal(err)
	}
	if _, err := rt.ImportImage(ctx, &archive); err != nil {
		log.Fatal(err)
	}

	sb, err := rt.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "hello", Namespace: "default", UID: "1"})
	if err != nil {
		log.Fatal(err)
	}
	id, err := rt.CreateContainer(ctx, sb, &runtime.ContainerConfig{
		Name: "main", Image: "example.local/busybox:1",
		Command:   []string{"sh", "-c", "echo hello from $(hostname); sleep 3600"},
		Resources: runtime.Resources{MemoryLimitBytes: 64 << 20},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	code, err := rt.Exec(ctx, id, runtime.ExecOptions{Cmd: []string{"cat", "/etc/hostname"}, Stdout: &out})
	fmt.Println(out.String(), code, err)

	_ = rt.StopContainer(ctx, id, 10*time.Second)
	_ = rt.ContainerLogs(ctx, id, runtime.LogOptions{TailLines: -1}, os.Stdout, os.Stderr)
	_ = rt.RemovePodSandbox(ctx, sb)
}

// Example_sharedProcessNamespace runs a pod whose two containers share
// one PID namespace (shareProcessNamespace: true; the sandbox's pause
// process is PID 1), the pod's IPC namespace and /dev/shm, inside a
// Burstable pod cgroup limited to the pod's totals, with the runtime's
// default seccomp profile on one container. Like Example it needs root and
// containerd, so it is compiled but not run by go test.
func Example_sharedProcessNamespace() {
	ctx := context.Background()
	rt, err := containerd.New(ctx, containerd.Options{DataDir: "/var/lib/tugboat-example2", Namespace: "example2"})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Destroy(ctx)
	img, err := images.Busybox()
	if err != nil {
		log.Fatal(err)
	}
	var archive bytes.Buffer
	if err := images.WriteArchive(&archive, "example.local/busybox:1", img); err != nil {
		log.Fatal(err)
	}
	if _, err := rt.ImportImage(ctx, &archive); err != nil {
		log.Fatal(err)
	}

	sb, err := rt.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "shared", Namespace: "default", UID: "2",
		ShareProcessNamespace: true,
		QOSClass:              runtime.QOSBurstable,
		Resources:             runtime.Resources{MemoryLimitBytes: 128 << 20, CPURequestMilli: 200},
	})
	if err != nil {
		log.Fatal(err)
	}
	var ids []string
	for _, c := range []*runtime.ContainerConfig{
		{Name: "app", Image: "example.local/busybox:1", Command: []string{"sleep", "3600"},
			Security: runtime.SecurityContext{Seccomp: runtime.SecurityProfile{Type: runtime.ProfileRuntimeDefault}}},
		{Name: "debug", Image: "example.local/busybox:1", Command: []string{"sleep", "3600"}},
	} {
		id, err := rt.CreateContainer(ctx, sb, c)
		if err != nil {
			log.Fatal(err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			log.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The debug container sees the app's processes, PID 1 being pause.
	_, _ = rt.Exec(ctx, ids[1], runtime.ExecOptions{Cmd: []string{"ps", "-o", "pid,args"}, Stdout: os.Stdout})
	st, _ := rt.PodSandboxStatus(ctx, sb)
	fmt.Println("pod cgroup:", st.CgroupPath)
	_ = rt.RemovePodSandbox(ctx, sb)
}
