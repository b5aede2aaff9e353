package v1beta1

// Keys of the Service annotations Herald reads and writes (DESIGN.md, Names).
// They live here, next to the API, so the controller, the speaker and the
// tools spell them one way.
const (
	// AnnotationAddressPool pins a Service to the named IPAddressPool.
	AnnotationAddressPool = "lb.herald.dev/address-pool"
	// AnnotationLoadBalancerIPs requests addresses: comma-separated, at most
	// one per family.
	AnnotationLoadBalancerIPs = "lb.herald.dev/loadBalancerIPs"
	// AnnotationAllowSharedIP is the sharing key: Services with the same key
	// may share an address when their ports do not collide.
	AnnotationAllowSharedIP = "lb.herald.dev/allow-shared-ip"
	// AnnotationAllocatedFromPool is written by the controller: the pool the
	// Service's addresses came from.
	AnnotationAllocatedFromPool = "lb.herald.dev/ip-allocated-from-pool"

	// ConditionAddressesComplete is the Service condition saying whether every
	// family the Service wants holds an address.
	ConditionAddressesComplete = "lb.herald.dev/AddressesComplete"
)

// LegacyAnnotationPrefixes are MetalLB's annotation prefixes, read (never
// written) for migration: "<prefix>/address-pool" and so on. Herald's own
// key wins when both are present.
var LegacyAnnotationPrefixes = []string{"metallb.universe.tf", "metallb.io"}
