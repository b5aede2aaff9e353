package controller

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// The per-object validity gauge follows each report: 0 for an object with
// errors, 1 once fixed, and no series for an object that is gone.
func TestConfigObjectValidGaugeFollowsEachObject(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New(nil, events.NewFakeRecorder(16), Options{Registerer: reg})
	pool := func(name string) v1beta1.IPAddressPool {
		return v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	bad := config.Errors{{Kind: config.KindPool, Name: "b", Field: "spec.addresses", Message: "overlaps pool a"}}
	c.reportConfig(context.Background(), config.Objects{Pools: []v1beta1.IPAddressPool{pool("a"), pool("b")}}, bad, nil)
	if a, b := testutil.ToFloat64(c.metrics.configObjectValid.WithLabelValues(config.KindPool, "a")), testutil.ToFloat64(c.metrics.configObjectValid.WithLabelValues(config.KindPool, "b")); a != 1 || b != 0 {
		t.Errorf("valid a=%v b=%v, want 1 and 0", a, b)
	}
	c.reportConfig(context.Background(), config.Objects{Pools: []v1beta1.IPAddressPool{pool("b")}}, nil, nil)
	if n := testutil.CollectAndCount(c.metrics.configObjectValid); n != 1 {
		t.Errorf("%d series after pool a is gone, want 1", n)
	}
	if b := testutil.ToFloat64(c.metrics.configObjectValid.WithLabelValues(config.KindPool, "b")); b != 1 {
		t.Errorf("valid b=%v after the fix, want 1", b)
	}
}
