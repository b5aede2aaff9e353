package heraldctl

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

func TestServiceChecksFindAddressesHeraldWouldMove(t *testing.T) {
	cfg, errs := config.Build(config.Objects{Pools: []v1beta1.IPAddressPool{
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/24", "2001:db8::/64"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/24"}}},
	}})
	if errs != nil {
		t.Fatal(errs)
	}
	pinned := func(key, pool string) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Annotations = map[string]string{key: pool} }
	}
	for _, tc := range []struct {
		name  string
		svc   corev1.Service
		class string
		want  []string
	}{
		{name: "addresses inside pools", svc: svc("ns", "ok", corev1.IPFamilyPolicyPreferDualStack, dual, []string{"192.0.2.1", "2001:db8::1"})},
		{
			name: "address outside every pool",
			svc:  svc("ns", "lost", corev1.IPFamilyPolicySingleStack, v4, []string{"203.0.113.1"}),
			want: []string{"Service ns/lost: holds 203.0.113.1, which no migrated pool contains: Herald would give the Service a new address; add 203.0.113.1 to a pool to keep it"},
		},
		{
			name: "MetalLB annotation naming a pool that was renamed",
			svc:  svc("ns", "pinned", corev1.IPFamilyPolicySingleStack, v4, []string{"198.51.100.1"}, pinned("metallb.universe.tf/address-pool", "B_Pool")),
			want: []string{`Service ns/pinned: annotation metallb.universe.tf/address-pool names pool "B_Pool", which the migrated configuration does not have; change it to one of a, b`},
		},
		{name: "annotation naming a migrated pool", svc: svc("ns", "pinned-ok", corev1.IPFamilyPolicySingleStack, v4, nil, pinned("metallb.io/address-pool", "b"))},
		{name: "another class is not Herald's", svc: svc("ns", "other", corev1.IPFamilyPolicySingleStack, v4, []string{"203.0.113.1"}, withClass("example.com/lb"))},
		{
			name:  "the class Herald is told to handle",
			svc:   svc("ns", "classed", corev1.IPFamilyPolicySingleStack, v4, []string{"203.0.113.2"}, withClass("example.com/lb")),
			class: "example.com/lb",
			want:  []string{"Service ns/classed: holds 203.0.113.2, which no migrated pool contains: Herald would give the Service a new address; add 203.0.113.2 to a pool to keep it"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := serviceChecks(cfg, []corev1.Service{tc.svc}, tc.class)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
