package migrate

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// manifest is what is written for each object: only what a user would
// write, so no status, creation timestamp or empty metadata.
type manifest struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   manifestMeta `json:"metadata"`
	Spec       any          `json:"spec"`
}

type manifestMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Render writes objs as a YAML stream for kubectl apply. Objects that others
// refer to come first (communities, BFD profiles, pools, peers), then the
// advertisements; each kind in the order of objs.
func Render(objs config.Objects) ([]byte, error) {
	var items []manifest
	add := func(kind, name, ns string, labels map[string]string, spec any) {
		items = append(items, manifest{
			APIVersion: v1beta1.GroupVersion.String(), Kind: kind,
			Metadata: manifestMeta{Name: name, Namespace: ns, Labels: labels}, Spec: spec,
		})
	}
	for _, o := range objs.Communities {
		add(kindCommunity, o.Name, o.Namespace, o.Labels, o.Spec)
	}
	for _, o := range objs.BFDProfiles {
		add(kindBFDProfile, o.Name, o.Namespace, o.Labels, o.Spec)
	}
	for _, o := range objs.Pools {
		add(kindIPAddressPool, o.Name, o.Namespace, o.Labels, o.Spec)
	}
	for _, o := range objs.BGPPeers {
		add(kindBGPPeer, o.Name, o.Namespace, o.Labels, o.Spec)
	}
	for _, o := range objs.L2Advertisements {
		add(kindL2Advertisement, o.Name, o.Namespace, o.Labels, o.Spec)
	}
	for _, o := range objs.BGPAdvertisements {
		add(kindBGPAdvertisement, o.Name, o.Namespace, o.Labels, o.Spec)
	}
	var buf bytes.Buffer
	buf.WriteString("# Herald configuration written by heraldctl migrate from MetalLB's.\n")
	for _, it := range items {
		b, err := yaml.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", it.Kind, it.Metadata.Name, err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
