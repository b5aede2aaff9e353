// Package kube holds the small pieces both binaries need to talk to the
// apiserver: the scheme, the REST configuration and the logger.
package kube

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// NewScheme knows client-go's types, CRDs and Herald's API.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1beta1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // static registration; cannot fail at run time
		}
	}
	return s
}

// RESTConfig loads a kubeconfig file, or the in-cluster configuration when
// path is empty, with the given client rate limits.
func RESTConfig(path string, qps float64, burst int) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if path != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %q: %w", path, err)
	}
	cfg.QPS, cfg.Burst = float32(qps), burst
	return cfg, nil
}

// NewLogger returns a JSON logger on stderr at the given level.
func NewLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// ConfigObjects lists every Herald configuration object in namespace: the
// snapshot pkg/config builds a Config from. Controller and speaker read it
// the same way.
func ConfigObjects(ctx context.Context, c client.Reader, namespace string) (config.Objects, error) {
	var (
		pools v1beta1.IPAddressPoolList
		l2    v1beta1.L2AdvertisementList
		bgp   v1beta1.BGPAdvertisementList
		peers v1beta1.BGPPeerList
		comms v1beta1.CommunityList
		bfd   v1beta1.BFDProfileList
	)
	for _, l := range []client.ObjectList{&pools, &l2, &bgp, &peers, &comms, &bfd} {
		if err := c.List(ctx, l, client.InNamespace(namespace)); err != nil {
			return config.Objects{}, fmt.Errorf("list %T in %s: %w", l, namespace, err)
		}
	}
	return config.Objects{Pools: pools.Items, L2Advertisements: l2.Items, BGPAdvertisements: bgp.Items,
		BGPPeers: peers.Items, Communities: comms.Items, BFDProfiles: bfd.Items}, nil
}

// PeerSecrets reads the password Secrets the peers of objs name, from
// namespace, into objs.Secrets (an empty map when none is named or found),
// so that config.Build checks the passwords and hands them to the peers. A
// Secret that does not exist is simply absent (Build disables its peer); any
// other error is returned, so that a transient failure never disables a
// peer. Only processes allowed to read Secrets call it (the speaker; the
// controller never reads Secrets).
func PeerSecrets(ctx context.Context, c client.Reader, namespace string, objs *config.Objects) error {
	objs.Secrets = map[string]corev1.Secret{}
	for _, p := range objs.BGPPeers {
		ref := p.Spec.PasswordSecret
		if ref == nil || ref.Name == "" || (ref.Namespace != "" && ref.Namespace != namespace) {
			continue
		}
		if _, done := objs.Secrets[ref.Name]; done {
			continue
		}
		var s corev1.Secret
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &s)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("read password Secret %s/%s of BGPPeer %q: %w", namespace, ref.Name, p.Name, err)
		default:
			objs.Secrets[ref.Name] = s
		}
	}
	return nil
}
