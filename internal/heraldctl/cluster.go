package heraldctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/pkg/migrate"
)

// newClient connects the way kubectl does: an explicit --kubeconfig, else
// $KUBECONFIG or ~/.kube/config, else the in-cluster configuration.
func newClient(kubeconfig, kubecontext string) (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubecontext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return newClientFor(cfg)
}

func newClientFor(cfg *rest.Config) (client.Client, error) {
	c, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	return c, nil
}

// listStatus lists what status reports on: LoadBalancer Services of every
// namespace, and Herald's pools and announcement records in its namespace.
func listStatus(ctx context.Context, c client.Reader, namespace, lbClass string) (StatusInput, error) {
	in := StatusInput{LBClass: lbClass}
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return in, fmt.Errorf("list Services: %w", err)
	}
	in.Services = svcs.Items
	var pools v1beta1.IPAddressPoolList
	if err := c.List(ctx, &pools, client.InNamespace(namespace)); err != nil {
		return in, heraldListError("IPAddressPools", namespace, err)
	}
	in.Pools = pools.Items
	objs, err := kube.ConfigObjects(ctx, c, namespace)
	if err != nil {
		return in, heraldListError("configuration objects", namespace, err)
	}
	in.Config = objs
	var l2 v1beta1.ServiceL2StatusList
	if err := c.List(ctx, &l2, client.InNamespace(namespace)); err != nil {
		return in, heraldListError("ServiceL2Statuses", namespace, err)
	}
	in.L2Statuses = l2.Items
	var bgp v1beta1.ServiceBGPStatusList
	if err := c.List(ctx, &bgp, client.InNamespace(namespace)); err != nil {
		return in, heraldListError("ServiceBGPStatuses", namespace, err)
	}
	in.BGPStatuses = bgp.Items
	return in, nil
}

func heraldListError(what, namespace string, err error) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("list %s in namespace %s: %w (are Herald's CRDs installed?)", what, namespace, err)
	}
	return fmt.Errorf("list %s in namespace %s: %w", what, namespace, err)
}

// metallbKinds are the MetalLB kinds migrate reads from a cluster, each
// with the versions to try in order: BGPPeer is stored as v1beta2 since
// MetalLB 0.13.8 and only v1beta1 before.
var metallbKinds = []struct {
	kind     string
	versions []string
}{
	{"Community", []string{"v1beta1"}},
	{"BFDProfile", []string{"v1beta1"}},
	{"IPAddressPool", []string{"v1beta1"}},
	{"AddressPool", []string{"v1beta1"}},
	{"BGPPeer", []string{"v1beta2", "v1beta1"}},
	{"L2Advertisement", []string{"v1beta1"}},
	{"BGPAdvertisement", []string{"v1beta1"}},
}

// listMetalLB reads MetalLB's configuration from a cluster as migrate
// documents: the metallb.io objects in namespace, and the pre-0.13
// ConfigMap. Kinds the cluster does not serve are skipped, as a MetalLB of
// another version lacks some.
func listMetalLB(ctx context.Context, c client.Reader, namespace, configMap string) ([]migrate.Document, error) {
	var docs []migrate.Document
	add := func(u *unstructured.Unstructured) error {
		b, err := json.Marshal(u.Object)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		docs = append(docs, migrate.Document{Source: fmt.Sprintf("cluster: %s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName()), JSON: b})
		return nil
	}
	for _, k := range metallbKinds {
		for _, v := range k.versions {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(schema.GroupVersionKind{Group: "metallb.io", Version: v, Kind: k.kind + "List"})
			err := c.List(ctx, list, client.InNamespace(namespace))
			if meta.IsNoMatchError(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list metallb.io/%s %s in namespace %s: %w", v, k.kind, namespace, err)
			}
			for i := range list.Items {
				if err := add(&list.Items[i]); err != nil {
					return nil, err
				}
			}
			break
		}
	}
	if configMap != "" {
		cm := &unstructured.Unstructured{}
		cm.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"})
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: configMap}, cm)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("get ConfigMap %s/%s: %w", namespace, configMap, err)
		default:
			if err := add(cm); err != nil {
				return nil, err
			}
		}
	}
	if len(docs) == 0 {
		return nil, errors.New("no MetalLB configuration in namespace " + namespace + ": neither metallb.io resources nor ConfigMap " + configMap)
	}
	return docs, nil
}
