package containerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tugboatdev/tugboat/runtime"
)

const denyMkdirProfile = `{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}`

// TestSeccompProfiles runs real containers under each seccomp profile
// type: RuntimeDefault blocks unshare(CLONE_NEWUSER) (allowed only with
// CAP_SYS_ADMIN), Unconfined allows it, a Localhost profile from a file
// applies its own rules, privileged containers run unconfined.
func TestSeccompProfiles(t *testing.T) {
	r := newTestRuntime(t, testOpts{})
	ctx := context.Background()
	dir := filepath.Join(r.opts.DataDir, "seccomp", "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deny-mkdir.json"), []byte(denyMkdirProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	sb, err := r.RunPodSandbox(ctx, &runtime.PodSandboxConfig{Name: "seccomp", Namespace: "default", UID: "seccomp"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, sec runtime.SecurityContext, script string) (string, int32) {
		t.Helper()
		id, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "sc-" + randHex(3), Image: busyboxRef,
			Command: []string{"sh", "-c", script}, Security: sec})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		st := waitExit(t, r, id, 30*time.Second)
		return logsOf(t, r, id), st.ExitCode
	}
	const probe = `grep Seccomp: /proc/self/status; unshare -U true && echo unshare-ok; mkdir /tmp/made && echo mkdir-ok; true`
	for _, tc := range []struct {
		name       string
		sec        runtime.SecurityContext
		seccompTag string // the Seccomp: mode line (0 none, 2 filter)
		unshare    bool
		mkdir      bool
	}{
		{"unset is unconfined", runtime.SecurityContext{}, "0", true, true},
		{"Unconfined", runtime.SecurityContext{Seccomp: runtime.SecurityProfile{Type: runtime.ProfileUnconfined}}, "0", true, true},
		{"RuntimeDefault", runtime.SecurityContext{Seccomp: runtime.SecurityProfile{Type: runtime.ProfileRuntimeDefault}}, "2", false, true},
		{"Localhost", runtime.SecurityContext{Seccomp: runtime.SecurityProfile{Type: runtime.ProfileLocalhost, LocalhostProfile: "profiles/deny-mkdir.json"}}, "2", true, false},
		{"privileged ignores RuntimeDefault", runtime.SecurityContext{Privileged: true, Seccomp: runtime.SecurityProfile{Type: runtime.ProfileRuntimeDefault}}, "0", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(t, tc.sec, probe)
			if code != 0 {
				t.Fatalf("probe exited %d: %s", code, out)
			}
			if !strings.Contains(out, "Seccomp:\t"+tc.seccompTag) {
				t.Errorf("want Seccomp mode %s:\n%s", tc.seccompTag, out)
			}
			if got := strings.Contains(out, "unshare-ok"); got != tc.unshare {
				t.Errorf("unshare succeeded = %v, want %v:\n%s", got, tc.unshare, out)
			}
			if !tc.unshare && !strings.Contains(out, "Operation not permitted") {
				t.Errorf("blocked unshare should fail with EPERM:\n%s", out)
			}
			if got := strings.Contains(out, "mkdir-ok"); got != tc.mkdir {
				t.Errorf("mkdir succeeded = %v, want %v:\n%s", got, tc.mkdir, out)
			}
		})
	}
	t.Run("Localhost errors", func(t *testing.T) {
		for _, name := range []string{"../../etc/passwd", "/etc/passwd", "profiles/missing.json"} {
			_, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "bad", Image: busyboxRef, Command: []string{"true"},
				Security: runtime.SecurityContext{Seccomp: runtime.SecurityProfile{Type: runtime.ProfileLocalhost, LocalhostProfile: name}}})
			if err == nil {
				t.Errorf("Localhost profile %q accepted", name)
			}
		}
	})
	t.Run("AppArmor", func(t *testing.T) {
		// This machine's kernel has no AppArmor: a Localhost profile is
		// refused, RuntimeDefault has nothing to apply.
		if appArmorEnabled() {
			t.Fatal("this test expects a kernel without AppArmor; write one for an AppArmor host")
		}
		_, err := r.CreateContainer(ctx, sb, &runtime.ContainerConfig{Name: "aa", Image: busyboxRef, Command: []string{"true"},
			Security: runtime.SecurityContext{AppArmor: runtime.SecurityProfile{Type: runtime.ProfileLocalhost, LocalhostProfile: "k8s-deny-write"}}})
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "AppArmor is not enabled") {
			t.Errorf("AppArmor Localhost on a node without AppArmor: %v", err)
		}
		out, code := run(t, runtime.SecurityContext{AppArmor: runtime.SecurityProfile{Type: runtime.ProfileRuntimeDefault}}, "echo ran")
		if code != 0 || !strings.Contains(out, "ran") {
			t.Errorf("AppArmor RuntimeDefault without AppArmor: %d %s", code, out)
		}
	})
}

// TestSeccompDefaultOption: with Options.SeccompDefault an unset profile
// means RuntimeDefault.
func TestSeccompDefaultOption(t *testing.T) {
	for _, tc := range []struct {
		def     bool
		sec     runtime.SecurityContext
		filters bool
	}{
		{false, runtime.SecurityContext{}, false},
		{true, runtime.SecurityContext{}, true},
		{true, runtime.SecurityContext{Seccomp: runtime.SecurityProfile{Type: runtime.ProfileUnconfined}}, false},
		{true, runtime.SecurityContext{Privileged: true}, false},
	} {
		r := &Runtime{opts: Options{SeccompDefault: tc.def, DataDir: t.TempDir()}}
		opts, err := r.securityProfileOpts(&runtime.ContainerConfig{Security: tc.sec})
		if err != nil {
			t.Fatal(err)
		}
		s := &oci.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}, Linux: &specs.Linux{}}
		for _, o := range opts {
			if err := o(context.Background(), nil, nil, s); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.Linux.Seccomp != nil; got != tc.filters {
			t.Errorf("SeccompDefault=%v %+v: seccomp set = %v, want %v", tc.def, tc.sec, got, tc.filters)
		}
	}
}

func TestParseSeccompProfile(t *testing.T) {
	p, err := ParseSeccompProfile([]byte(denyMkdirProfile))
	if err != nil {
		t.Fatal(err)
	}
	one := uint(1)
	want := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &one}}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		``, `[]`, `{}`, `{"defaultAction": "SCMP_ACT_NOPE"}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "op": "EQ"}]}]}`,
		`{"defaultAction": "SCMP_ACT_ALLOW"} {}`,
	} {
		if _, err := ParseSeccompProfile([]byte(bad)); err == nil {
			t.Errorf("ParseSeccompProfile(%q) accepted", bad)
		}
	}
	// The Docker format's extra fields are ignored, as containerd does.
	if _, err := ParseSeccompProfile([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`)); err != nil {
		t.Errorf("Docker-format profile: %v", err)
	}
}

func FuzzParseSeccompProfile(f *testing.F) {
	f.Add([]byte(denyMkdirProfile))
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseSeccompProfile(data)
		if err != nil {
			return
		}
		if !validSeccompAction(p.DefaultAction) {
			t.Fatalf("accepted unknown default action %q", p.DefaultAction)
		}
		for _, sc := range p.Syscalls {
			if len(sc.Names) == 0 || !validSeccompAction(sc.Action) {
				t.Fatalf("accepted invalid rule %+v", sc)
			}
		}
	})
}
