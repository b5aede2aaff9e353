package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// The per-object validity gauge follows the configuration: 0 for a
// disabled object, 1 once fixed, and no series for an object that is gone.
func TestConfigObjectValidGaugeFollowsEachObject(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New(nil, events.NewFakeRecorder(16), Options{Registerer: reg})
	pool := func(name, cidr string, age int) v1beta1.IPAddressPool {
		return v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(int64(age), 0)},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{cidr}}}
	}
	gauge := func(name string) float64 {
		return testutil.ToFloat64(c.metrics.configObjectValid.WithLabelValues(config.KindPool, name))
	}
	objs := config.Objects{Pools: []v1beta1.IPAddressPool{pool("a", "192.0.2.0/24", 1), pool("b", "192.0.2.0/25", 2)}}
	cfg, _ := config.Build(objs)
	c.setValidityGauges(objs, cfg)
	if a, b := gauge("a"), gauge("b"); a != 1 || b != 0 {
		t.Errorf("valid a=%v b=%v, want 1 and 0 (b overlaps the older a)", a, b)
	}
	objs = config.Objects{Pools: []v1beta1.IPAddressPool{pool("b", "192.0.2.0/25", 2)}}
	cfg, _ = config.Build(objs)
	c.setValidityGauges(objs, cfg)
	if n := testutil.CollectAndCount(c.metrics.configObjectValid); n != 1 {
		t.Errorf("%d series after pool a is gone, want 1", n)
	}
	if b := gauge("b"); b != 1 {
		t.Errorf("valid b=%v once a is gone, want 1", b)
	}
}
