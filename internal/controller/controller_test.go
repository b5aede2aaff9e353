package controller_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/test/controlplane"
)

// The seed scenario: an IPv4-only pool; PreferDualStack falls back to IPv4,
// RequireDualStack stays Pending with a Warning; the pool gains IPv6 and both
// are completed, the held IPv4 untouched.
func TestPreferDualStackFallsBackThenBackfillsWhenThePoolGainsIPv6(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("shared", "198.51.100.0/28")
	s.runController()

	s.service("prefer", corev1.IPFamilyPolicyPreferDualStack)
	s.service("require", corev1.IPFamilyPolicyRequireDualStack)

	v4 := s.waitIngress("prefer", "IPv4")
	cond := meta.FindStatusCondition(s.get("prefer").Status.Conditions, controller.ConditionAddressesComplete)
	if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != controller.ReasonSingleStackFallback {
		t.Fatalf("prefer condition = %+v, want False/%s", cond, controller.ReasonSingleStackFallback)
	}
	if got := s.get("prefer").Annotations[v1beta1.AnnotationAllocatedFromPool]; got != "shared" {
		t.Errorf("annotation %s = %q, want shared", v1beta1.AnnotationAllocatedFromPool, got)
	}
	ev := s.waitEvent("require", controller.EventAllocationFailed, "IPv6")
	if ev.Type != corev1.EventTypeWarning {
		t.Errorf("AllocationFailed event type %s, want Warning", ev.Type)
	}
	if ips := ingressOf(s.get("require")); len(ips) != 0 {
		t.Fatalf("RequireDualStack service got %v from an IPv4-only pool", ips)
	}

	s.setPoolAddresses("shared", "198.51.100.0/28", "2001:db8:10::/124")
	both := s.waitIngress("prefer", "IPv4", "IPv6")
	if both[0] != v4[0] {
		t.Fatalf("backfill changed the held IPv4: %s -> %s", v4[0], both[0])
	}
	s.waitIngress("require", "IPv4", "IPv6")
	s.waitEvent("prefer", controller.EventIPBackfilled, both[1])
	for _, name := range []string{"prefer", "require"} {
		cond := meta.FindStatusCondition(s.get(name).Status.Conditions, controller.ConditionAddressesComplete)
		if cond == nil || cond.Status != metav1.ConditionTrue {
			t.Errorf("%s condition = %+v, want True", name, cond)
		}
	}
}

func TestPolicyChangeAddsThenReleasesTheSecondFamily(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("dual", "198.51.100.16/28", "2001:db8:11::/124")
	s.runController()
	s.service("svc", corev1.IPFamilyPolicySingleStack)
	v4 := s.waitIngress("svc", "IPv4")

	s.eventually(func() error {
		svc := s.get("svc")
		svc.Spec.IPFamilyPolicy = new(corev1.IPFamilyPolicyPreferDualStack)
		return s.c.Update(context.Background(), svc)
	}, "upgrade policy")
	if fams := s.get("svc").Spec.IPFamilies; len(fams) != 2 {
		t.Fatalf("apiserver did not add the second family: %v", fams)
	}
	both := s.waitIngress("svc", "IPv4", "IPv6")
	if both[0] != v4[0] {
		t.Fatalf("upgrade changed the IPv4: %s -> %s", v4[0], both[0])
	}

	s.eventually(func() error {
		svc := s.get("svc")
		svc.Spec.IPFamilyPolicy = new(corev1.IPFamilyPolicySingleStack)
		svc.Spec.IPFamilies = svc.Spec.IPFamilies[:1]
		svc.Spec.ClusterIPs = svc.Spec.ClusterIPs[:1]
		return s.c.Update(context.Background(), svc)
	}, "downgrade policy")
	after := s.waitIngress("svc", "IPv4")
	if after[0] != v4[0] {
		t.Fatalf("downgrade changed the IPv4: %s -> %s", v4[0], after[0])
	}
	s.waitEvent("svc", controller.EventIPReleased, both[1])
}

func TestUnchangedServiceIsSilentOnReconcile(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("p", "198.51.100.32/28")
	s.pool("other", "203.0.113.0/28")
	s.runController()
	s.service("quiet", corev1.IPFamilyPolicyPreferDualStack)
	s.service("pending", corev1.IPFamilyPolicyRequireDualStack)
	s.waitIngress("quiet", "IPv4")
	s.waitEvent("pending", controller.EventAllocationFailed, "IPv6")
	time.Sleep(500 * time.Millisecond) // let the first decisions settle
	before := len(s.events("quiet")) + len(s.events("pending"))
	rvQuiet, rvPending := s.get("quiet").ResourceVersion, s.get("pending").ResourceVersion

	// Poke both Services many times: label changes trigger reconciles.
	for i := range 10 {
		for _, n := range []string{"quiet", "pending"} {
			s.eventually(func() error {
				svc := s.get(n)
				if svc.Labels == nil {
					svc.Labels = map[string]string{}
				}
				svc.Labels["poke"] = fmt.Sprint(i)
				return s.c.Update(context.Background(), svc)
			}, "poke")
		}
	}
	// Relabel a pool too: a config change re-evaluates the waiting Services,
	// whose decision stays the same.
	s.eventually(func() error {
		var p v1beta1.IPAddressPool
		if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: "other"}, &p); err != nil {
			return err
		}
		p.Labels = map[string]string{"poked": "yes"}
		return s.c.Update(context.Background(), &p)
	}, "relabel pool")
	time.Sleep(2 * time.Second)
	if after := len(s.events("quiet")) + len(s.events("pending")); after != before {
		t.Errorf("events grew from %d to %d without any decision changing: %v", before, after, s.events("pending"))
	}
	for name, rv := range map[string]string{"quiet": rvQuiet, "pending": rvPending} {
		svc := s.get(name)
		// Label writes change the resourceVersion; status must not have been written.
		if svc.Status.LoadBalancer.Ingress == nil && name == "quiet" {
			t.Errorf("%s lost its address", name)
		}
		_ = rv
	}
}

func TestServicesOfAnotherClassAreNeverTouched(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("p", "198.51.100.48/28")
	s.runController()
	s.service("foreign", corev1.IPFamilyPolicySingleStack, func(svc *corev1.Service) {
		svc.Spec.LoadBalancerClass = new("example.com/other")
	})
	s.service("mine", corev1.IPFamilyPolicySingleStack)
	s.waitIngress("mine", "IPv4")
	time.Sleep(time.Second)
	f := s.get("foreign")
	if len(f.Status.LoadBalancer.Ingress) != 0 || len(f.Finalizers) != 0 || len(f.Status.Conditions) != 0 {
		t.Fatalf("foreign-class Service was touched: status %+v finalizers %v", f.Status, f.Finalizers)
	}
}

func TestDeletingAServiceReleasesItsAddressForTheNextOne(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("tiny", "198.51.100.64/32")
	s.runController()
	s.service("first", corev1.IPFamilyPolicySingleStack)
	ip := s.waitIngress("first", "IPv4")
	// Status is written before the metadata, so the finalizer may land a
	// moment after the address.
	s.eventually(func() error {
		if f := s.get("first").Finalizers; !slices.Contains(f, controller.FinalizerCleanup) {
			return fmt.Errorf("finalizer %s missing from %v", controller.FinalizerCleanup, f)
		}
		return nil
	}, "finalizer on first")
	s.service("second", corev1.IPFamilyPolicySingleStack)
	s.waitEvent("second", controller.EventAllocationFailed, "")
	s.deleteService("first")
	got := s.waitIngress("second", "IPv4")
	if got[0] != ip[0] {
		t.Fatalf("second got %s, want the freed %s", got[0], ip[0])
	}
	s.eventually(func() error {
		var svc corev1.Service
		err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: "first"}, &svc)
		if err == nil {
			return fmt.Errorf("still present, finalizers %v", svc.Finalizers)
		}
		return nil
	}, "first deleted")
}

func TestTypeChangeAwayFromLoadBalancerClearsStatus(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("p", "198.51.100.80/28")
	s.runController()
	s.service("svc", corev1.IPFamilyPolicySingleStack)
	s.waitIngress("svc", "IPv4")
	s.eventually(func() error {
		svc := s.get("svc")
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		svc.Spec.LoadBalancerClass = nil
		svc.Spec.AllocateLoadBalancerNodePorts = nil
		return s.c.Update(context.Background(), svc)
	}, "type change")
	s.eventually(func() error {
		svc := s.get("svc")
		if len(svc.Status.LoadBalancer.Ingress) != 0 || slices.Contains(svc.Finalizers, controller.FinalizerCleanup) {
			return fmt.Errorf("status %v finalizers %v", svc.Status.LoadBalancer.Ingress, svc.Finalizers)
		}
		if _, ok := svc.Annotations[v1beta1.AnnotationAllocatedFromPool]; ok {
			return fmt.Errorf("annotation still set")
		}
		return nil
	}, "cleared")
}

func TestRequestedAddressesAndMetalLBAnnotations(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("a", "198.51.100.96/28", "2001:db8:12::/124")
	s.pool("b", "203.0.113.16/28")
	s.runController()
	s.service("herald", corev1.IPFamilyPolicyPreferDualStack, func(svc *corev1.Service) {
		svc.Annotations = map[string]string{v1beta1.AnnotationLoadBalancerIPs: "198.51.100.100"}
	})
	s.service("metallb", corev1.IPFamilyPolicySingleStack, func(svc *corev1.Service) {
		svc.Annotations = map[string]string{"metallb.universe.tf/address-pool": "b"}
	})
	s.service("both", corev1.IPFamilyPolicySingleStack, func(svc *corev1.Service) {
		svc.Annotations = map[string]string{"metallb.io/loadBalancerIPs": "203.0.113.20", v1beta1.AnnotationLoadBalancerIPs: "203.0.113.21"}
	})
	if got := s.waitIngress("herald", "IPv4"); got[0] != "198.51.100.100" {
		t.Errorf("requested address: got %s", got[0])
	}
	if got := s.waitIngress("metallb", "IPv4"); !strings.HasPrefix(got[0], "203.0.113.") {
		t.Errorf("MetalLB pool annotation ignored: got %s", got[0])
	}
	if got := s.waitIngress("both", "IPv4"); got[0] != "203.0.113.21" {
		t.Errorf("Herald's key must win over MetalLB's: got %s", got[0])
	}
	// A request outside every pool: a Warning, nothing held, nothing crashes.
	s.service("outside", corev1.IPFamilyPolicySingleStack, func(svc *corev1.Service) {
		svc.Annotations = map[string]string{v1beta1.AnnotationLoadBalancerIPs: "192.0.2.200"}
	})
	s.waitEvent("outside", controller.EventAllocationFailed, "192.0.2.200")
	// A malformed request on a Service that holds an address keeps the address.
	held := s.waitIngress("metallb", "IPv4")
	s.eventually(func() error {
		svc := s.get("metallb")
		svc.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "not-an-ip"
		return s.c.Update(context.Background(), svc)
	}, "malformed request")
	s.waitEvent("metallb", controller.EventAllocationFailed, "not-an-ip")
	if got := ingressOf(s.get("metallb")); !slices.Equal(got, held) {
		t.Errorf("malformed request changed the held address: %v -> %v", held, got)
	}
}

// An overlapping pool created later is frozen, naming the older pool; the
// older pool keeps serving and no Service changes. Its validity Event fires
// once per change, not on every reconcile.
func TestOverlappingPoolCreatedLaterIsFrozenAndTheOlderKeepsServing(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("good", "198.51.100.112/28")
	s.runController()
	s.service("svc", corev1.IPFamilyPolicySingleStack)
	held := s.waitIngress("svc", "IPv4")
	time.Sleep(500 * time.Millisecond) // let the finalizer and annotation land
	rv := s.get("svc").ResourceVersion

	s.pool("overlap", "198.51.100.112/30")
	s.waitValid(&v1beta1.IPAddressPool{}, "overlap", metav1.ConditionFalse, v1beta1.ReasonOverlapping, `"good"`)
	s.waitValid(&v1beta1.IPAddressPool{}, "good", metav1.ConditionTrue, v1beta1.ReasonValid, "")
	s.waitObjectEvent("IPAddressPool", "overlap", controller.EventConfigInvalid, "good")
	// Poke the frozen pool: reconciles must not repeat the Event.
	for i := range 5 {
		s.eventually(func() error {
			var p v1beta1.IPAddressPool
			if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: "overlap"}, &p); err != nil {
				return err
			}
			p.Labels = map[string]string{"poke": fmt.Sprint(i)}
			return s.c.Update(context.Background(), &p)
		}, "poke pool")
	}
	s.service("later", corev1.IPFamilyPolicySingleStack)
	got := s.waitIngress("later", "IPv4")
	if got[0] == held[0] {
		t.Fatalf("address handed out twice: %s", got[0])
	}
	s.waitServedFrom("later", "good")
	if now := s.get("svc"); now.ResourceVersion != rv || !slices.Equal(ingressOf(now), held) {
		t.Fatalf("the overlapping pool changed a Service: %v (rv %s) -> %v (rv %s)", held, rv, ingressOf(now), now.ResourceVersion)
	}
	if n := s.objectEventCount("IPAddressPool", "overlap", controller.EventConfigInvalid); n != 1 {
		t.Errorf("%d ConfigurationInvalid Events on the frozen pool, want 1", n)
	}
	// Fixed: valid again, one Normal Event.
	s.setPoolAddresses("overlap", "203.0.113.64/30")
	s.waitValid(&v1beta1.IPAddressPool{}, "overlap", metav1.ConditionTrue, v1beta1.ReasonValid, "")
	s.waitObjectEvent("IPAddressPool", "overlap", controller.EventConfigValid, "valid again")
	if n := s.objectEventCount("IPAddressPool", "overlap", controller.EventConfigInvalid); n != 1 {
		t.Errorf("%d ConfigurationInvalid Events after the fix, want 1", n)
	}
	// Pool status counts are written.
	s.eventually(func() error {
		var p v1beta1.IPAddressPool
		if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: "good"}, &p); err != nil {
			return err
		}
		if p.Status.AssignedIPv4 != 2 || p.Status.AvailableIPv4 != 14 {
			return fmt.Errorf("status %+v", p.Status)
		}
		return nil
	}, "pool counts")
}

// Every configuration kind gets its Valid condition: an advertisement
// naming a community that does not exist is disabled, and valid again once
// the community exists.
func TestEveryConfigurationKindGetsItsValidCondition(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("p", "198.51.100.240/29")
	ctx := context.Background()
	mk := func(o client.Object) {
		t.Helper()
		o.SetNamespace(s.namespace)
		if err := s.c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	mk(&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2"}})
	mk(&v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: "bfd"}})
	mk(&v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "peer"}, Spec: v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "192.0.2.1"}})
	mk(&v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "bgp"}, Spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"later"}}})
	s.runController()
	s.waitValid(&v1beta1.L2Advertisement{}, "l2", metav1.ConditionTrue, v1beta1.ReasonValid, "")
	s.waitValid(&v1beta1.BFDProfile{}, "bfd", metav1.ConditionTrue, v1beta1.ReasonValid, "")
	s.waitValid(&v1beta1.BGPPeer{}, "peer", metav1.ConditionTrue, v1beta1.ReasonValid, "")
	s.waitValid(&v1beta1.BGPAdvertisement{}, "bgp", metav1.ConditionFalse, v1beta1.ReasonMissingReference, "later")
	s.waitObjectEvent("BGPAdvertisement", "bgp", controller.EventConfigInvalid, "later")
	mk(&v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "later", Value: "64500:1"}}}})
	s.waitValid(&v1beta1.Community{}, "c", metav1.ConditionTrue, v1beta1.ReasonValid, "")
	s.waitValid(&v1beta1.BGPAdvertisement{}, "bgp", metav1.ConditionTrue, v1beta1.ReasonValid, "")
	s.waitObjectEvent("BGPAdvertisement", "bgp", controller.EventConfigValid, "valid again")
}

// A controller killed and started again while a pool overlaps an older one
// changes no address (also those a now-frozen pool handed out) and serves a
// new Service from a valid pool.
func TestRestartWhileAPoolOverlapsChangesNoAddress(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("a", "198.51.100.192/27")
	s.pool("x", "203.0.113.32/28")
	cmd := s.startControllerProcess()
	const n = 20
	for i := range n {
		s.service(fmt.Sprintf("svc-%02d", i), corev1.IPFamilyPolicySingleStack, func(svc *corev1.Service) {
			if i%2 == 0 {
				svc.Annotations = map[string]string{v1beta1.AnnotationAddressPool: "x"}
			}
		})
	}
	want := s.waitAllAssigned(n)
	// x now overlaps the older a: x is frozen, keeping what it handed out.
	s.setPoolAddresses("x", "203.0.113.32/28", "198.51.100.192/30")
	s.waitValid(&v1beta1.IPAddressPool{}, "x", metav1.ConditionFalse, v1beta1.ReasonOverlapping, `"a"`)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	s.startControllerProcess()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var list corev1.ServiceList
		if err := s.c.List(context.Background(), &list, client.InNamespace(s.namespace)); err != nil {
			t.Fatal(err)
		}
		for _, svc := range list.Items {
			if w, ok := want[svc.Name]; ok && !slices.Equal(ingressOf(&svc), w) {
				t.Fatalf("restart while x overlaps changed %s: %v -> %v", svc.Name, w, ingressOf(&svc))
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.service("new", corev1.IPFamilyPolicySingleStack)
	s.waitIngress("new", "IPv4")
	s.waitServedFrom("new", "a")
	s.waitValid(&v1beta1.IPAddressPool{}, "x", metav1.ConditionFalse, v1beta1.ReasonOverlapping, `"a"`)
}

// With 100 pools exhausted a Pending Service still gets its Warning Event:
// the note fits the apiserver's 1024-byte limit.
func TestExhaustedPoolsStillWarnWithABoundedNote(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	const n = 100
	for i := range n {
		s.pool(fmt.Sprintf("pool-with-a-rather-long-name-%03d", i), fmt.Sprintf("198.51.100.%d/32", i))
	}
	s.runController()
	for i := range n {
		s.service(fmt.Sprintf("svc-%03d", i), corev1.IPFamilyPolicySingleStack)
	}
	s.waitAllAssigned(n)
	s.service("one-too-many", corev1.IPFamilyPolicySingleStack)
	ev := s.waitEvent("one-too-many", controller.EventAllocationFailed, "")
	if ev.Type != corev1.EventTypeWarning || len(ev.Message) > controller.MaxEventNote {
		t.Fatalf("Warning Event %s with a %d-byte note, want Warning and <= %d", ev.Type, len(ev.Message), controller.MaxEventNote)
	}
	if ips := ingressOf(s.get("one-too-many")); len(ips) != 0 {
		t.Fatalf("exhausted pools handed out %v", ips)
	}
}

// waitServedFrom waits until the Service's pool annotation names pool (it
// is written after the status).
func (s *scope) waitServedFrom(name, pool string) {
	s.t.Helper()
	s.eventually(func() error {
		if got := s.get(name).Annotations[v1beta1.AnnotationAllocatedFromPool]; got != pool {
			return fmt.Errorf("served from pool %q, want %q", got, pool)
		}
		return nil
	}, "pool of %s", name)
}

// waitValid waits until the configuration object has its Valid condition
// with this status and reason, and a message containing msg.
func (s *scope) waitValid(o client.Object, name string, status metav1.ConditionStatus, reason, msg string) {
	s.t.Helper()
	s.eventually(func() error {
		if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: name}, o); err != nil {
			return err
		}
		var conds []metav1.Condition
		if c := v1beta1.ConditionsOf(o); c != nil {
			conds = *c
		}
		c := meta.FindStatusCondition(conds, controller.ConditionValid)
		if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, msg) {
			return fmt.Errorf("Valid condition %+v, want %s/%s containing %q", c, status, reason, msg)
		}
		return nil
	}, "Valid condition of %T %s", o, name)
}

func (s *scope) objectEvents(kind, name, reason string) []corev1.Event {
	s.t.Helper()
	var list corev1.EventList
	if err := s.c.List(context.Background(), &list, client.InNamespace(s.namespace)); err != nil {
		s.t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name && (reason == "" || e.Reason == reason) {
			out = append(out, e)
		}
	}
	return out
}

func (s *scope) waitObjectEvent(kind, name, reason, contains string) {
	s.t.Helper()
	s.eventually(func() error {
		for _, e := range s.objectEvents(kind, name, reason) {
			if strings.Contains(e.Message, contains) {
				return nil
			}
		}
		var all []string
		for _, e := range s.objectEvents(kind, name, "") {
			all = append(all, e.Reason+": "+e.Message)
		}
		return fmt.Errorf("no %s Event containing %q; have %q", reason, contains, all)
	}, "Event on %s %s", kind, name)
}

// objectEventCount counts the Events of a reason on an object, series included.
func (s *scope) objectEventCount(kind, name, reason string) int {
	s.t.Helper()
	n := 0
	for _, e := range s.objectEvents(kind, name, reason) {
		n += max(int(e.Count), 1)
		if e.Series != nil {
			n = max(n, int(e.Series.Count))
		}
	}
	return n
}

// A restarted controller rebuilds from status and changes nobody's address.
func TestRestartsChangeNoAddress(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("v4", "198.51.100.128/25")
	s.pool("dual", "203.0.113.128/25", "2001:db8:13::/120")
	cmd := s.startControllerProcess()
	policies := []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack}
	const n = 200
	for i := range n {
		s.service(fmt.Sprintf("svc-%03d", i), policies[i%3], func(svc *corev1.Service) {
			if i%5 == 0 {
				svc.Annotations = map[string]string{v1beta1.AnnotationAddressPool: "v4"}
			}
		})
	}
	want := s.waitAllAssigned(n)
	for round := range 3 {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		cmd = s.startControllerProcess()
		// Give the new controller time to act on everything it would change.
		time.Sleep(3 * time.Second)
		got := s.waitAllAssigned(n)
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Fatalf("restart %d changed %s: %v -> %v", round+1, k, v, got[k])
			}
		}
	}
}

// waitAllAssigned waits until every Service in the scope holds what its
// policy can get (RequireDualStack from a dual pool: both; pinned to the IPv4
// pool: one) and returns name -> addresses.
func (s *scope) waitAllAssigned(n int) map[string][]string {
	s.t.Helper()
	out := map[string][]string{}
	s.eventually(func() error {
		var list corev1.ServiceList
		if err := s.c.List(context.Background(), &list, client.InNamespace(s.namespace)); err != nil {
			return err
		}
		clear(out)
		missing := 0
		for _, svc := range list.Items {
			cond := meta.FindStatusCondition(svc.Status.Conditions, controller.ConditionAddressesComplete)
			if len(svc.Status.LoadBalancer.Ingress) == 0 && (cond == nil || cond.Reason != controller.ReasonPending) {
				missing++
			}
			out[svc.Name] = ingressOf(&svc)
		}
		if len(list.Items) < n || missing > 0 {
			return fmt.Errorf("%d of %d services undecided", missing, len(list.Items))
		}
		return nil
	}, "all assigned")
	return out
}

// Kill the controller at random moments while 1000 Services are created;
// afterwards all hold addresses and none is held twice.
func TestChaosKillsDuringCreationLeaveNoDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	s := newScope(t)
	s.pool("big", "198.51.100.0/24", "203.0.113.0/24", "2001:db8:14::/112")
	const n = 1000
	var (
		mu   sync.Mutex
		cmd  = s.startControllerProcess()
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 2))
		for range 6 {
			time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
			mu.Lock()
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			cmd = s.startControllerProcess()
			mu.Unlock()
		}
	}()
	ctx := context.Background()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			policy := []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack}[i%2]
			svc := &corev1.Service{}
			svc.Name, svc.Namespace = fmt.Sprintf("c-%04d", i), s.namespace
			svc.Spec.Type = corev1.ServiceTypeLoadBalancer
			svc.Spec.IPFamilyPolicy = &policy
			svc.Spec.LoadBalancerClass = &s.class
			svc.Spec.AllocateLoadBalancerNodePorts = new(false)
			svc.Spec.Ports = []corev1.ServicePort{{Port: 80}}
			if i%2 == 0 {
				// Half IPv6-only: the pool's 512 IPv4 addresses serve the other half.
				svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
			}
			if err := s.c.Create(ctx, svc); err != nil {
				t.Errorf("create %s: %v", svc.Name, err)
			}
		}()
	}
	wg.Wait()
	<-done
	got := s.waitAllAssigned(n)
	seen := map[string]string{}
	for name, ips := range got {
		if len(ips) == 0 {
			t.Errorf("%s holds nothing", name)
		}
		for _, ip := range ips {
			if other, dup := seen[ip]; dup {
				t.Errorf("%s held by both %s and %s", ip, other, name)
			}
			seen[ip] = name
		}
	}
}

// Two controllers with leader election: only one writes; killing it hands
// over and assignments continue.
func TestLeaderElectionHandsOverWhenTheLeaderDies(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("p", "198.51.100.0/26")
	le := []string{"--leader-elect", "--leader-lease-duration", "4s"}
	a := s.startControllerProcess(le...)
	s.service("one", corev1.IPFamilyPolicySingleStack)
	s.waitIngress("one", "IPv4")
	b := s.startControllerProcess(le...)
	// a started first and leads; b must stay a follower until a dies.
	if !strings.Contains(a.log.String(), controller.LogElected) {
		t.Fatalf("the first controller never logged %q", controller.LogElected)
	}
	time.Sleep(time.Second)
	if strings.Contains(b.log.String(), controller.LogElected) {
		t.Fatal("two controllers lead at once")
	}
	leader, other := a, b
	_ = leader.Process.Signal(syscall.SIGKILL)
	_ = leader.Wait()
	s.service("two", corev1.IPFamilyPolicySingleStack)
	s.waitIngress("two", "IPv4")
	if other.ProcessState != nil || !strings.Contains(other.log.String(), controller.LogElected) {
		t.Fatalf("the follower did not take over (exited: %v)", other.ProcessState)
	}
	if ingressOf(s.get("one"))[0] == ingressOf(s.get("two"))[0] {
		t.Fatal("the new leader handed out a held address")
	}
}

// On an IPv4-only cluster a PreferDualStack Service lists one family and gets
// exactly one address, and its status never changes again.
func TestSingleStackClusterPreferDualStackGetsOneAddressAndStaysPut(t *testing.T) {
	if env == nil {
		t.Skip("needs the real control plane (not -short)")
	}
	t.Parallel()
	single, err := controlplane.Start(controlplane.Options{SingleStack: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = single.Stop() })
	s := &scope{t: t, env: single, c: single.Client, namespace: "single", class: "herald.test/single"}
	if err := s.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.namespace}}); err != nil {
		t.Fatal(err)
	}
	s.pool("dual", "198.51.100.0/28", "2001:db8:15::/124")
	s.runController()
	s.service("prefer", corev1.IPFamilyPolicyPreferDualStack)
	ips := s.waitIngress("prefer", "IPv4")
	if fams := s.get("prefer").Spec.IPFamilies; len(fams) != 1 {
		t.Fatalf("ipFamilies %v on a single-stack cluster", fams)
	}
	cond := meta.FindStatusCondition(s.get("prefer").Status.Conditions, controller.ConditionAddressesComplete)
	if cond == nil || cond.Status != metav1.ConditionTrue {
		t.Fatalf("condition %+v: one family wanted, one held: complete", cond)
	}
	var list corev1.ServiceList
	if err := s.c.List(context.Background(), &list, client.InNamespace(s.namespace)); err != nil {
		t.Fatal(err)
	}
	wc, err := client.NewWithWatch(single.Config, client.Options{Scheme: single.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &corev1.ServiceList{}, client.InNamespace(s.namespace),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Modified {
				t.Fatalf("status changed again after settling: %+v", ev.Object.(*corev1.Service).Status)
			}
		case <-timeout:
			if got := ingressOf(s.get("prefer")); !slices.Equal(got, ips) {
				t.Fatalf("address changed: %v -> %v", ips, got)
			}
			return
		}
	}
}

// Shrinking a pool under a valid configuration moves the Services whose
// addresses left it; the rest keep theirs.
func TestShrunkPoolMovesOnlyTheServicesOutsideIt(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("p", "198.51.100.240/29")
	s.runController()
	s.service("a", corev1.IPFamilyPolicySingleStack)
	a := s.waitIngress("a", "IPv4")
	s.service("b", corev1.IPFamilyPolicySingleStack)
	b := s.waitIngress("b", "IPv4")
	// Keep only the upper half, which holds neither address (both are low).
	s.setPoolAddresses("p", "198.51.100.244/30")
	var na, nb []string
	s.eventually(func() error {
		na, nb = ingressOf(s.get("a")), ingressOf(s.get("b"))
		if len(na) != 1 || len(nb) != 1 || na[0] == a[0] || nb[0] == b[0] {
			return fmt.Errorf("a %v b %v", na, nb)
		}
		return nil
	}, "moved")
	for _, ip := range append(na, nb...) {
		if !strings.HasPrefix(ip, "198.51.100.24") || ip < "198.51.100.244" {
			t.Errorf("moved to %s, outside the shrunk pool", ip)
		}
	}
	s.waitEvent("a", controller.EventIPReleased, a[0])
}

// A pool reaching into the cluster's service CIDRs (read from the
// apiserver's ServiceCIDR objects) gets a condition saying so.
func TestPoolOverlappingTheServiceCIDRIsFlagged(t *testing.T) {
	t.Parallel()
	s := newScope(t)
	s.pool("clash", "10.96.200.0/28")
	s.pool("fine", "198.51.100.224/28")
	s.runController()
	for name, want := range map[string]metav1.ConditionStatus{"clash": metav1.ConditionTrue, "fine": metav1.ConditionFalse} {
		s.eventually(func() error {
			var p v1beta1.IPAddressPool
			if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: name}, &p); err != nil {
				return err
			}
			c := meta.FindStatusCondition(p.Status.Conditions, controller.PoolConditionOverlapsServiceCIDR)
			if c == nil || c.Status != want {
				return fmt.Errorf("%s: condition %+v, want %s", name, c, want)
			}
			return nil
		}, "condition on %s", name)
	}
}
