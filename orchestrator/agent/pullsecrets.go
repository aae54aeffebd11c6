package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/tugboatdev/tugboat/runtime"
	"github.com/tugboatdev/tugboat/store/storeapi"
)

// dockerAuth is one registry entry of a docker config file.
type dockerAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// parseDockerConfig decodes a kubernetes.io/dockerconfigjson secret's
// ".dockerconfigjson" ({"auths": {...}}) or, with legacy, a
// kubernetes.io/dockercfg secret's ".dockercfg" (the map itself), and
// returns credentials by normalised registry host.
func parseDockerConfig(data []byte, legacy bool) (map[string]runtime.AuthConfig, error) {
	var auths map[string]dockerAuth
	if legacy {
		if err := json.Unmarshal(data, &auths); err != nil {
			return nil, fmt.Errorf("invalid .dockercfg: %w", err)
		}
	} else {
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("invalid .dockerconfigjson: %w", err)
		}
		auths = cfg.Auths
	}
	out := map[string]runtime.AuthConfig{}
	for key, a := range auths {
		ac := runtime.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("registry %s: invalid auth: %w", key, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("registry %s: auth is not user:password", key)
			}
			ac.Username, ac.Password = user, pass
		}
		out[normalizeRegistry(key)] = ac
	}
	return out, nil
}

// normalizeRegistry reduces a docker config key ("https://index.docker.io/v1/",
// "registry.example:5000") to a host, with Docker Hub's names folded into
// "docker.io".
func normalizeRegistry(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key, _, _ = strings.Cut(key, "/")
	switch key {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return key
}

// imageRegistry returns the registry host of an image reference.
func imageRegistry(image string) string {
	first, _, ok := strings.Cut(image, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return normalizeRegistry(first)
	}
	return "docker.io"
}

// pullAuth finds credentials for image in the pod's imagePullSecrets.
func (w *podWorker) pullAuth(ctx context.Context, pod *corev1.Pod, image string) *runtime.AuthConfig {
	host := imageRegistry(image)
	for _, ref := range pod.Spec.ImagePullSecrets {
		sec, err := storeapi.Get[*corev1.Secret](ctx, w.a.s, pod.Namespace, ref.Name)
		if err != nil {
			continue
		}
		var auths map[string]runtime.AuthConfig
		switch {
		case sec.Type == corev1.SecretTypeDockerConfigJson || len(sec.Data[corev1.DockerConfigJsonKey]) > 0:
			auths, err = parseDockerConfig(sec.Data[corev1.DockerConfigJsonKey], false)
		case sec.Type == corev1.SecretTypeDockercfg || len(sec.Data[corev1.DockerConfigKey]) > 0:
			auths, err = parseDockerConfig(sec.Data[corev1.DockerConfigKey], true)
		}
		if err != nil {
			w.event(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret", "Unable to retrieve some image pull secrets (%s): %v", ref.Name, err)
			continue
		}
		if a, ok := auths[host]; ok {
			return &a
		}
	}
	return nil
}
