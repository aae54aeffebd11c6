package agent

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tugboatdev/tugboat/runtime"
)

func TestParseDockerConfig(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("bob:pa:ss"))
	got, err := parseDockerConfig([]byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"`+auth+`"},"127.0.0.1:5000":{"username":"u","password":"p"},"ghcr.io":{"identitytoken":"tok"}}}`), false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]runtime.AuthConfig{
		"docker.io":      {Username: "bob", Password: "pa:ss"},
		"127.0.0.1:5000": {Username: "u", Password: "p"},
		"ghcr.io":        {IdentityToken: "tok"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	legacy, err := parseDockerConfig([]byte(`{"registry.example":{"username":"a","password":"b"}}`), true)
	if err != nil || legacy["registry.example"].Username != "a" {
		t.Errorf("legacy = %v, %v", legacy, err)
	}
	for _, bad := range []string{`{`, `{"auths":{"x":{"auth":"!!"}}}`, `{"auths":{"x":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("nocolon")) + `"}}}`} {
		if _, err := parseDockerConfig([]byte(bad), false); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	for image, host := range map[string]string{"nginx": "docker.io", "library/nginx:1": "docker.io", "127.0.0.1:5000/app:1": "127.0.0.1:5000",
		"localhost/app": "localhost", "ghcr.io/org/app@sha256:00": "ghcr.io", "index.docker.io/library/nginx": "docker.io"} {
		if got := imageRegistry(image); got != host {
			t.Errorf("imageRegistry(%q) = %q, want %q", image, got, host)
		}
	}
}

func FuzzParseDockerConfig(f *testing.F) {
	f.Add([]byte(`{"auths":{"r":{"auth":"dTpw"}}}`), false)
	f.Add([]byte(`{"r":{"username":"u"}}`), true)
	f.Fuzz(func(t *testing.T, data []byte, legacy bool) {
		auths, err := parseDockerConfig(data, legacy)
		if err != nil {
			return
		}
		for host := range auths {
			if host != normalizeRegistry(host) {
				t.Fatalf("key %q is not normalised", host)
			}
		}
	})
}
