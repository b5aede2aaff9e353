package allocate

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Port is one port a Service exposes; sharers of an address must not
// collide on (Protocol, Port).
type Port struct {
	Protocol string
	Port     int32
}

func (p Port) String() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Port) }

// Service is what the allocator needs to know about a LoadBalancer Service.
type Service struct {
	Key       string // "namespace/name"
	Namespace string // defaults to the part of Key before "/"
	// Labels and NamespaceLabels feed the pools' serviceSelectors and
	// namespaceSelectors.
	Labels, NamespaceLabels map[string]string
	// Families is spec.ipFamilies, primary first: the wanted families,
	// never guessed from anything else.
	Families []Family
	Policy   Policy
	// Pool pins a pool by name; "" lets the allocator choose.
	Pool string
	// Requested is the complete wish when not empty: at most one address
	// per family, each of a family in Families.
	Requested []netip.Addr
	// SharingKey ("" = no sharing) and Ports decide who may share an
	// address.
	SharingKey string
	Ports      []Port
	// BackendKey identifies the selected pods under externalTrafficPolicy
	// Local and is "" under Cluster. Sharers must have equal keys: Cluster
	// shares with Cluster, Local with Local selecting the same pods, as in
	// MetalLB.
	BackendKey string
}

// normalize fills in defaults the caller may leave out.
func (svc *Service) normalize() {
	if svc.Namespace == "" {
		svc.Namespace, _, _ = strings.Cut(svc.Key, "/")
	}
}

// validate rejects Services no allocation can satisfy whatever the pools
// hold. It checks shape only; what the policy means is decide's business.
func (svc *Service) validate() error {
	if svc.Key == "" {
		return errors.New("service has no key")
	}
	if n := len(svc.Families); n < 1 || n > 2 {
		return fmt.Errorf("ipFamilies must list one or two families, not %d", n)
	}
	for _, f := range svc.Families {
		if !f.valid() {
			return fmt.Errorf("ipFamilies lists unknown family %s", f)
		}
	}
	if len(svc.Families) == 2 && svc.Families[0] == svc.Families[1] {
		return fmt.Errorf("ipFamilies lists %s twice", svc.Families[0])
	}
	switch svc.Policy {
	case SingleStack, PreferDualStack, RequireDualStack:
	default:
		return fmt.Errorf("unknown ipFamilyPolicy %s", svc.Policy)
	}
	for _, a := range svc.Requested {
		if !a.IsValid() {
			return errors.New("a requested address is empty")
		}
		if err := noZone(a); err != nil {
			return fmt.Errorf("requested address: %w", err)
		}
	}
	return nil
}

// State summarises how much of its wish a Service holds.
type State uint8

const (
	// Complete: every wanted family is held (with requested addresses: every
	// requested address).
	Complete State = iota
	// SingleStackFallback: some but not all wanted families are held, e.g. a
	// PreferDualStack Service whose pool has no IPv6 addresses.
	SingleStackFallback
	// Pending: nothing is held.
	Pending
)

func (s State) String() string {
	switch s {
	case Complete:
		return "Complete"
	case SingleStackFallback:
		return "SingleStackFallback"
	case Pending:
		return "Pending"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Result is what Assign decided and committed.
type Result struct {
	// Pool the addresses are held from ("" when none are held).
	Pool string
	// Addrs are every held address, in the Service's ipFamilies order.
	Addrs []netip.Addr
	// Added and Released are the difference to what the Service held
	// before: what the speaker must start and stop announcing.
	Added, Released []netip.Addr
	// Missing lists the wanted families not held, primary first.
	Missing []Family
	State   State
	// Reason says, for a human, why State is not Complete or why Err
	// happened; "" otherwise.
	Reason string
	// Err is set when the Service's wish cannot be honoured as asked and it
	// keeps what it had (Addrs); it wraps one of ErrInvalidService,
	// ErrNotInPool, ErrInUse or ErrStale. Running out of addresses is not an
	// error: State and Reason report it.
	Err error
	// Changed is true when the held addresses or their pool changed.
	Changed bool
}

// The kinds of Result.Err and Restore errors; test with errors.Is.
var (
	// ErrInvalidService: the Service asks for something no pool
	// configuration can give (malformed families, requested addresses that
	// contradict ipFamilies or the policy). Only a change to the Service
	// helps.
	ErrInvalidService = errors.New("invalid service")
	// ErrNotInPool: a requested address lies in no pool the Service may use,
	// or the requested addresses lie in different pools.
	ErrNotInPool = errors.New("address not in an eligible pool")
	// ErrInUse: a requested or held address is used by a Service it may not
	// share with.
	ErrInUse = errors.New("address in use")
	// ErrStale: held addresses are no longer in a pool the Service may use.
	// The allocator never moves them on its own: the caller decides, and
	// Release followed by Assign moves the Service.
	ErrStale = errors.New("held address no longer valid")
	// ErrConflict: Restore found an address already held by a Service it may
	// not share with; the earlier Service keeps it.
	ErrConflict = errors.New("address held twice")
)

// allocError carries a human message (the Result's Reason) and its kind.
type allocError struct {
	key  string
	msg  string
	kind error
}

func (e *allocError) Error() string { return fmt.Sprintf("service %s: %s", e.key, e.msg) }
func (e *allocError) Unwrap() error { return e.kind }

// Invalid is a held allocation that a pool change made invalid: its pool was
// removed or shrunk, or no longer admits the Service. The addresses stay
// held until the caller decides (Release then Assign moves the Service).
type Invalid struct {
	Key    string
	Pool   string // the pool the addresses were held from
	Addrs  []netip.Addr
	Reason string
}

// Usage counts a pool's addresses of one family. Assigned counts addresses
// the pool can hand out that some Service holds, whichever pool it holds
// them from (pools may overlap); Available counts the others. Both
// saturate at 2^64-1, which only a pool larger than a /64 reaches.
type Usage struct {
	Assigned, Available uint64
}
