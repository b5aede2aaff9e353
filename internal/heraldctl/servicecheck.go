package heraldctl

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// serviceChecks finds the Services whose addresses would change when
// Herald takes over with cfg. Herald's controller rebuilds its allocations
// from the Services' status, so an address survives the migration only if
// a pool holds it; one that no pool holds is released and the Service
// gets a new one. A pool named in an annotation that no longer exists
// (a legacy pool renamed on the way) leaves the Service without a pool.
// Services of another class than lbClass are not Herald's and are skipped.
func serviceChecks(cfg *config.Config, svcs []corev1.Service, lbClass string) []string {
	var out []string
	for i := range svcs {
		s := &svcs[i]
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || !classMatches(s, lbClass) {
			continue
		}
		ref := "Service " + s.Namespace + "/" + s.Name
		for _, in := range s.Status.LoadBalancer.Ingress {
			a, err := netip.ParseAddr(in.IP)
			if err != nil {
				continue
			}
			if cfg.PoolFor(a.Unmap()) == nil {
				out = append(out, fmt.Sprintf("%s: holds %s, which no migrated pool contains: Herald would give the Service a new address; add %s to a pool to keep it", ref, in.IP, in.IP))
			}
		}
		if key, pool := pinnedPool(s); pool != "" && cfg.Pool(pool) == nil {
			out = append(out, fmt.Sprintf("%s: annotation %s names pool %q, which the migrated configuration does not have; change it to one of %s", ref, key, pool, poolNames(cfg)))
		}
	}
	return out
}

// pinnedPool returns the annotation that pins the Service to a pool, with
// Herald's key winning over MetalLB's as in the controller.
func pinnedPool(s *corev1.Service) (key, pool string) {
	keys := []string{v1beta1.AnnotationAddressPool}
	for _, p := range v1beta1.LegacyAnnotationPrefixes {
		keys = append(keys, p+"/address-pool")
	}
	for _, k := range keys {
		if v, ok := s.Annotations[k]; ok {
			return k, v
		}
	}
	return "", ""
}

func poolNames(cfg *config.Config) string {
	var names []string
	for _, p := range cfg.Pools {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
