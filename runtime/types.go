package runtime

import (
	"io"
	"time"
)

// PodSandboxConfig describes a pod sandbox.
type PodSandboxConfig struct {
	// Name, Namespace and UID identify the pod.
	Name      string
	Namespace string
	UID       string
	// Attempt counts sandbox re-creations for the same pod.
	Attempt uint32
	// Hostname of the pod's containers; defaults to Name.
	Hostname string
	// Labels and Annotations are kept and reported back.
	Labels      map[string]string
	Annotations map[string]string
	// HostNetwork runs the pod in the node's network namespace.
	HostNetwork bool
	// PortMappings publish container ports on the node (hostPort).
	PortMappings []PortMapping
	// DNS is written to the pod's /etc/resolv.conf. Empty means the node's.
	DNS DNSConfig
	// HostAliases are added to the pod's /etc/hosts.
	HostAliases []HostAlias
	// LogDirectory holds the containers' log files. Empty means a directory
	// chosen by the runtime.
	LogDirectory string
	// ShareProcessNamespace puts all the pod's containers in one PID
	// namespace (pod.spec.shareProcessNamespace): they see each other's
	// processes, and the sandbox's pause process is PID 1.
	ShareProcessNamespace bool
	// HostPID and HostIPC run the pod in the node's PID and IPC
	// namespaces. Without HostIPC the pod's containers share one IPC
	// namespace and one /dev/shm, as in Kubernetes.
	HostPID bool
	HostIPC bool
	// QOSClass places the pod's cgroup as the kubelet does
	// (kubepods/pod<uid>, kubepods/burstable/pod<uid> or
	// kubepods/besteffort/pod<uid>); empty derives it from Resources.
	QOSClass QOSClass
	// Resources are the pod's totals (the sums over its containers, as
	// the kubelet computes them), enforced on the pod-level cgroup that
	// holds the containers' cgroups. Zero fields mean no pod-level limit.
	Resources Resources
}

// QOSClass is a pod's quality of service class.
type QOSClass string

// Quality of service classes.
const (
	QOSGuaranteed QOSClass = "Guaranteed"
	QOSBurstable  QOSClass = "Burstable"
	QOSBestEffort QOSClass = "BestEffort"
)

// ProfileType selects a seccomp or AppArmor profile, as
// securityContext.seccompProfile.type and appArmorProfile.type do.
type ProfileType string

// Profile types. The zero ProfileType means "not set".
const (
	// ProfileUnconfined runs without a profile.
	ProfileUnconfined ProfileType = "Unconfined"
	// ProfileRuntimeDefault is the runtime's default profile.
	ProfileRuntimeDefault ProfileType = "RuntimeDefault"
	// ProfileLocalhost is a profile the node provides (LocalhostProfile).
	ProfileLocalhost ProfileType = "Localhost"
)

// SecurityProfile is a seccomp or AppArmor profile choice.
type SecurityProfile struct {
	Type ProfileType
	// LocalhostProfile names the profile for ProfileLocalhost: for
	// seccomp a JSON file relative to the runtime's seccomp profile
	// directory, for AppArmor a profile loaded on the node.
	LocalhostProfile string
}

// Protocol is a transport protocol of a port mapping.
type Protocol string

// Transport protocols.
const (
	ProtocolTCP Protocol = "TCP"
	ProtocolUDP Protocol = "UDP"
)

// PortMapping publishes ContainerPort of the pod on HostPort of the node.
type PortMapping struct {
	Protocol      Protocol
	ContainerPort int32
	HostPort      int32
	HostIP        string
}

// DNSConfig is the content of a pod's /etc/resolv.conf.
type DNSConfig struct {
	Servers  []string
	Searches []string
	Options  []string
}

// HostAlias is one extra /etc/hosts line.
type HostAlias struct {
	IP        string
	Hostnames []string
}

// SandboxState is the state of a sandbox.
type SandboxState string

// Sandbox states.
const (
	SandboxReady    SandboxState = "Ready"
	SandboxNotReady SandboxState = "NotReady"
)

// PodSandbox reports a sandbox.
type PodSandbox struct {
	ID        string
	Config    PodSandboxConfig
	State     SandboxState
	CreatedAt time.Time
	// IP is the pod's primary IP (the node's for host-network pods).
	IP string
	// NetNSPath is the network namespace file (empty for host network).
	NetNSPath string
	// CgroupPath is the pod-level cgroup (relative to the cgroup
	// hierarchies' root) when the runtime makes one.
	CgroupPath string
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string
	Value string
}

// Mount mounts a prepared host path (or a tmpfs) into a container.
type Mount struct {
	// ContainerPath is where the mount appears in the container.
	ContainerPath string
	// HostPath is the source on the node (hostPath, emptyDir, configMap or
	// secret projection directories prepared by the agent).
	HostPath string
	// SubPath mounts only this relative path of HostPath.
	SubPath string
	// ReadOnly mounts read-only.
	ReadOnly bool
	// Tmpfs mounts a fresh tmpfs instead of HostPath (emptyDir with medium
	// Memory); SizeLimitBytes bounds it when positive.
	Tmpfs          bool
	SizeLimitBytes int64
}

// SecurityContext is the part of a container's security context the runtime
// enforces.
type SecurityContext struct {
	RunAsUser              *int64
	RunAsGroup             *int64
	Privileged             bool
	AddCapabilities        []string
	DropCapabilities       []string
	ReadOnlyRootFilesystem bool
	// SupplementalGroups are added to the process's groups (the pod's
	// supplementalGroups and fsGroup, set by the node agent).
	SupplementalGroups []int64
	// Seccomp is the container's seccomp profile; unset means the
	// runtime's default choice (Unconfined, as the kubelet without
	// --seccomp-default). Privileged containers run unconfined.
	Seccomp SecurityProfile
	// AppArmor is the container's AppArmor profile; it needs a kernel
	// with AppArmor enabled.
	AppArmor SecurityProfile
	// SELinuxLabel is the process label "user:role:type:level" from
	// seLinuxOptions (empty: the runtime's default); it matters only where
	// SELinux is enabled.
	SELinuxLabel string
}

// Resources are a container's limits and requests as the kernel sees them.
type Resources struct {
	// CPULimitMilli caps CPU time (CFS quota); 0 means none.
	CPULimitMilli int64
	// CPURequestMilli sets the CPU weight (shares); 0 means the default.
	CPURequestMilli int64
	// MemoryLimitBytes caps memory; 0 means none. A container over its
	// limit is OOM-killed and reported with Reason OOMKilled.
	MemoryLimitBytes int64
}

// ContainerConfig describes a container.
type ContainerConfig struct {
	// Name of the container within the pod; Attempt counts its restarts.
	Name    string
	Attempt uint32
	// Image reference; it must be present on the node.
	Image string
	// Command replaces the image's ENTRYPOINT and Args its CMD, as in
	// Kubernetes: Command alone drops CMD; Args alone keeps ENTRYPOINT.
	Command []string
	Args    []string
	// Env adds to (and overrides) the image's environment.
	Env []EnvVar
	// WorkingDir overrides the image's working directory.
	WorkingDir string
	Mounts     []Mount
	// Labels and Annotations are kept and reported back.
	Labels      map[string]string
	Annotations map[string]string
	// Stdin keeps the container's stdin open for Attach; TTY allocates a
	// terminal.
	Stdin bool
	TTY   bool
	// Security and Resources are enforced by the runtime.
	Security  SecurityContext
	Resources Resources
	// LogPath is the log file relative to the sandbox's log directory;
	// empty means "<Name>/<Attempt>.log" as the kubelet lays it out.
	LogPath string
}

// ContainerState is the state of a container.
type ContainerState string

// Container states.
const (
	ContainerCreated ContainerState = "Created"
	ContainerRunning ContainerState = "Running"
	ContainerExited  ContainerState = "Exited"
	ContainerUnknown ContainerState = "Unknown"
)

// Exit reasons reported in ContainerStatus.Reason.
const (
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// ContainerStatus reports a container.
type ContainerStatus struct {
	ID        string
	SandboxID string
	Name      string
	Attempt   uint32
	Image     string
	// ImageRef is the image's digest (ID).
	ImageRef   string
	State      ContainerState
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	// ExitCode, Reason (Completed, Error, OOMKilled) and Message describe an
	// exited container.
	ExitCode    int32
	Reason      string
	Message     string
	Labels      map[string]string
	Annotations map[string]string
	// LogPath is the absolute path of the container's log file.
	LogPath string
}

// ContainerFilter selects containers; zero fields match everything.
type ContainerFilter struct {
	SandboxID string
	State     ContainerState
	// Labels must all be present with equal values.
	Labels map[string]string
}

// Matches reports whether c passes the filter.
func (f ContainerFilter) Matches(c *ContainerStatus) bool {
	if f.SandboxID != "" && c.SandboxID != f.SandboxID {
		return false
	}
	if f.State != "" && c.State != f.State {
		return false
	}
	for k, v := range f.Labels {
		if got, ok := c.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ContainerStats is a usage sample of a container.
type ContainerStats struct {
	ContainerID string
	Timestamp   time.Time
	// CPUUsageNanoSeconds is the cumulative CPU time used.
	CPUUsageNanoSeconds uint64
	// MemoryUsageBytes is the memory charged to the container;
	// MemoryWorkingSetBytes excludes inactive file pages (what the kubelet
	// reports and evicts on).
	MemoryUsageBytes      uint64
	MemoryWorkingSetBytes uint64
	// WritableLayerBytes and WritableLayerInodes are what the container's
	// writable layer (its root filesystem's upper layer, the containerd
	// active snapshot) uses on the image filesystem, as the CRI's
	// ContainerStats.WritableLayer; 0 when the runtime cannot tell.
	WritableLayerBytes  uint64
	WritableLayerInodes uint64
	// Processes is the number of processes (tasks, threads included) in
	// the container's cgroup (pids.current); 0 when unknown.
	Processes uint64
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width  uint16
	Height uint16
}

// ExecOptions describes a command to run in a container.
type ExecOptions struct {
	// Cmd is the command and its arguments.
	Cmd []string
	// Stdin, Stdout and Stderr are the streams; nil means none. With TTY,
	// Stderr is unused (the terminal merges the output).
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	TTY    bool
	// Resize delivers terminal size changes (TTY only).
	Resize <-chan TerminalSize
}

// AttachOptions describes an attach to a container's main process.
type AttachOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Resize <-chan TerminalSize
}

// LogOptions selects what ContainerLogs writes.
type LogOptions struct {
	// Follow keeps streaming until the container exits or ctx ends.
	Follow bool
	// Timestamps prefixes each line with its RFC 3339 timestamp.
	Timestamps bool
	// TailLines keeps only the last lines; negative means all.
	TailLines int64
	// Since drops lines logged before it when not zero.
	Since time.Time
	// LimitBytes stops after this many bytes when positive.
	LimitBytes int64
}

// EventType is the kind of a container event.
type EventType string

// Container event types.
const (
	EventCreated EventType = "Created"
	EventStarted EventType = "Started"
	EventExited  EventType = "Exited"
	EventOOM     EventType = "OOM"
	EventRemoved EventType = "Removed"
)

// ContainerEvent reports a change of a container.
type ContainerEvent struct {
	Type        EventType
	ContainerID string
	SandboxID   string
	Time        time.Time
	// ExitCode is set for EventExited.
	ExitCode int32
}

// AuthConfig holds registry credentials for a pull.
type AuthConfig struct {
	Username string
	Password string
	// IdentityToken is used instead of a password when set.
	IdentityToken string
}

// Image reports an image present on the node.
type Image struct {
	// ID is the image's config digest.
	ID string
	// RepoTags are the references naming the image.
	RepoTags []string
	// RepoDigests are name@digest references of the image's manifest.
	RepoDigests []string
	// Size is the image's size in bytes (compressed content).
	Size int64
}
