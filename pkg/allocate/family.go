package allocate

import (
	"fmt"
	"net/netip"
)

// Family is an IP address family. The zero value is no family, so a Service
// that forgot to say which family it wants is caught instead of guessed.
type Family uint8

const (
	IPv4 Family = iota + 1
	IPv6
)

// FamilyOf returns the family of a, or 0 for the zero Addr. An IPv4-mapped
// IPv6 address is IPv6, as netip sees it; pools and requests reject those.
func FamilyOf(a netip.Addr) Family {
	switch {
	case a.Is4():
		return IPv4
	case a.Is6():
		return IPv6
	}
	return 0
}

// ParseFamily accepts the Kubernetes spellings "IPv4" and "IPv6".
func ParseFamily(s string) (Family, error) {
	switch s {
	case "IPv4":
		return IPv4, nil
	case "IPv6":
		return IPv6, nil
	}
	return 0, fmt.Errorf("unknown IP family %q (want IPv4 or IPv6)", s)
}

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

func (f Family) valid() bool { return f == IPv4 || f == IPv6 }

// index is f's slot in the per-family arrays; only valid families have one.
func (f Family) index() int { return int(f) - 1 }

// familyAt is the inverse of index.
func familyAt(i int) Family { return Family(i + 1) }

// Policy is a Service's spec.ipFamilyPolicy. The zero value is SingleStack,
// which is also what Kubernetes defaults an unset policy to.
type Policy uint8

const (
	SingleStack Policy = iota
	PreferDualStack
	RequireDualStack
)

// ParsePolicy accepts the Kubernetes spellings; "" is SingleStack.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "SingleStack":
		return SingleStack, nil
	case "PreferDualStack":
		return PreferDualStack, nil
	case "RequireDualStack":
		return RequireDualStack, nil
	}
	return 0, fmt.Errorf("unknown IP family policy %q (want SingleStack, PreferDualStack or RequireDualStack)", s)
}

func (p Policy) String() string {
	switch p {
	case SingleStack:
		return "SingleStack"
	case PreferDualStack:
		return "PreferDualStack"
	case RequireDualStack:
		return "RequireDualStack"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}
