package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

// macOwner maps a MAC the client saw to the node that owns it.
func macOwner(mac string) string {
	for _, n := range nodeNames {
		if strings.EqualFold(world.lab.Host(n).MAC().String(), strings.TrimSpace(mac)) {
			return n
		}
	}
	return "unknown(" + strings.TrimSpace(mac) + ")"
}

// arpOwner asks for ip with arping from the client and returns the node
// whose MAC answered.
func arpOwner(ip string) (string, error) {
	out, err := world.lab.Host("client").Output("arping", "-c", "1", "-w", "2", "-i", "eth0", "-r", ip)
	if err != nil {
		return "", err
	}
	lines := strings.Fields(out)
	if len(lines) == 0 {
		return "", fmt.Errorf("arping %s: no reply", ip)
	}
	return macOwner(lines[0]), nil
}

// ndpOwner asks for ip with ndisc6 from the client (a strict client: it
// rejects an NA whose source is not the target) and returns the owner.
func ndpOwner(ip string) (string, error) {
	out, err := world.lab.Host("client").Output("ndisc6", "-1", "-r", "2", "-w", "1000", ip, "eth0")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if _, mac, ok := strings.Cut(line, "Target link-layer address:"); ok {
			return macOwner(mac), nil
		}
	}
	return "", fmt.Errorf("ndisc6 %s: no link-layer address in %q", ip, out)
}

func waitOwner(t *testing.T, lookup func(string) (string, error), ip string, want func(string) bool) string {
	t.Helper()
	var owner string
	eventually(t, 30*time.Second, func() error {
		o, err := lookup(ip)
		if err != nil {
			return err
		}
		if !want(o) {
			return fmt.Errorf("owner %s", o)
		}
		owner = o
		return nil
	}, "owner of %s", ip)
	return owner
}

func anyNode(o string) bool { return strings.HasPrefix(o, "node") }

func layer2Pool(t *testing.T, name string, addrs ...string) {
	t.Helper()
	create(t, pool(name, addrs...), l2adv(name, name))
}

func TestDualStackServiceIsAnsweredByOneNodeForBothFamilies(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-dual", "192.0.2.200/30", "2001:db8:100::200/126")
	create(t, lbService("dual", corev1.IPFamilyPolicyRequireDualStack),
		endpoints("dual", discoveryv1.AddressTypeIPv4, "node1"), endpoints("dual", discoveryv1.AddressTypeIPv6, "node1"))
	ips := ingress(t, "dual", 2)
	v4 := waitOwner(t, arpOwner, ips[0], anyNode)
	v6 := waitOwner(t, ndpOwner, ips[1], anyNode)
	if v4 != v6 {
		t.Fatalf("families split: ARP answered by %s, NDP by %s", v4, v6)
	}
	eventually(t, 30*time.Second, func() error {
		var list v1beta1.ServiceL2StatusList
		if err := world.env.Client.List(context.Background(), &list, client.InNamespace(heraldNS)); err != nil {
			return err
		}
		for _, s := range list.Items {
			if s.Status.ServiceName == "dual" && s.Status.Node == v4 && len(s.Status.Addresses) == 2 {
				return nil
			}
		}
		return fmt.Errorf("no ServiceL2Status for dual on %s: %+v", v4, list.Items)
	}, "ServiceL2Status")
}

// The seed scenario on the wire: IPv4 first, IPv6 backfilled; NDP starts
// answering while ARP is never interrupted.
func TestBackfilledIPv6IsAnsweredWithoutInterruptingIPv4(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-seed", "192.0.2.204/30")
	create(t, lbService("seed", corev1.IPFamilyPolicyPreferDualStack),
		endpoints("seed", discoveryv1.AddressTypeIPv4, "node2"), endpoints("seed", discoveryv1.AddressTypeIPv6, "node2"))
	v4 := ingress(t, "seed", 1)[0]
	owner := waitOwner(t, arpOwner, v4, anyNode)

	// Keep asking for the IPv4 address while the IPv6 one is added.
	var asked, lost atomic.Int32
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			asked.Add(1)
			if o, err := arpOwner(v4); err != nil || o != owner {
				lost.Add(1)
			}
		}
	}()
	eventually(t, 30*time.Second, func() error {
		var p v1beta1.IPAddressPool
		if err := world.env.Client.Get(context.Background(), client.ObjectKey{Namespace: heraldNS, Name: "l2-seed"}, &p); err != nil {
			return err
		}
		p.Spec.Addresses = []string{"192.0.2.204/30", "2001:db8:100::204/126"}
		return world.env.Client.Update(context.Background(), &p)
	}, "add IPv6 to the pool")
	ips := ingress(t, "seed", 2)
	if ips[0] != v4 {
		t.Fatalf("backfill changed the IPv4: %s -> %s", v4, ips[0])
	}
	if o := waitOwner(t, ndpOwner, ips[1], anyNode); o != owner {
		t.Errorf("IPv6 answered by %s, IPv4 by %s", o, owner)
	}
	time.Sleep(time.Second)
	close(stop)
	<-done
	if lost.Load() > 0 {
		t.Errorf("IPv4 went unanswered %d of %d times during the backfill", lost.Load(), asked.Load())
	}
}

func TestLocalPolicyMovesTheAddressToTheEndpointsNode(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-local", "192.0.2.208/30")
	local := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
	eps := endpoints("local", discoveryv1.AddressTypeIPv4, "node3")
	create(t, lbService("local", corev1.IPFamilyPolicySingleStack, local), eps)
	ip := ingress(t, "local", 1)[0]
	waitOwner(t, arpOwner, ip, func(o string) bool { return o == "node3" })
	eventually(t, 10*time.Second, func() error {
		var sl discoveryv1.EndpointSlice
		if err := world.env.Client.Get(context.Background(), client.ObjectKeyFromObject(eps), &sl); err != nil {
			return err
		}
		sl.Endpoints[0].NodeName = new("node1")
		return world.env.Client.Update(context.Background(), &sl)
	}, "move the endpoint")
	waitOwner(t, arpOwner, ip, func(o string) bool { return o == "node1" })
}

// A client's NUD probe is a unicast NS straight to the owner's MAC, which the
// kernel's raw ICMPv6 socket never sees; the client entry must stay usable.
func TestNUDProbesKeepTheClientEntryReachable(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-nud", "2001:db8:100::208/126")
	create(t, lbService("nud", corev1.IPFamilyPolicySingleStack, func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} }),
		endpoints("nud", discoveryv1.AddressTypeIPv6, "node1"))
	ip := ingress(t, "nud", 1)[0]
	waitOwner(t, ndpOwner, ip, anyNode)
	c := world.lab.Host("client")
	// Short reachable time so the kernel moves to unicast probing within seconds.
	if err := c.Run("sysctl", "-qw", "net.ipv6.neigh.eth0.base_reachable_time_ms=1000", "net.ipv6.neigh.eth0.delay_first_probe_time=1"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		// Traffic to the VIP keeps the entry in use (no reply is expected:
		// nothing listens there), which drives DELAY -> PROBE -> unicast NS.
		_ = c.Run("ping", "-6", "-c", "1", "-W", "1", ip)
		out, err := c.Output("ip", "-j", "-6", "neigh", "show", ip, "dev", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		var entries []struct {
			State []string `json:"state"`
		}
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			t.Fatalf("ip neigh: %v: %s", err, out)
		}
		for _, e := range entries {
			for _, s := range e.State {
				seen[s]++
			}
		}
	}
	if seen["FAILED"] > 0 || seen["INCOMPLETE"] > 0 {
		t.Fatalf("client neighbour entry states %v: NUD probes went unanswered", seen)
	}
	if seen["REACHABLE"] == 0 {
		t.Fatalf("client neighbour entry never REACHABLE: %v", seen)
	}
}

// Garbage and hostile frames from the client: counted and dropped, the
// speaker keeps serving.
func TestMalformedFramesLeaveTheSpeakerServing(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-fuzz", "192.0.2.212/30", "2001:db8:100::220/126")
	create(t, lbService("fuzz", corev1.IPFamilyPolicyRequireDualStack),
		endpoints("fuzz", discoveryv1.AddressTypeIPv4, "node1"), endpoints("fuzz", discoveryv1.AddressTypeIPv6, "node1"))
	ips := ingress(t, "fuzz", 2)
	owner := waitOwner(t, arpOwner, ips[0], anyNode)
	c := world.lab.Host("client")
	const etherAll = 0x0003
	conn, err := c.ListenPacket("eth0", etherAll)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	src := c.MAC()
	frames := malformedFrames(bcast, src, world.lab.Host(owner).MAC())
	for range 50 {
		for _, f := range frames {
			if _, err := conn.WriteTo(f, &packetAddr{HardwareAddr: bcast}); err != nil {
				t.Fatalf("inject: %v", err)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	if p := world.speaker(owner); p == nil {
		t.Fatal("owner's speaker missing")
	} else {
		select {
		case <-p.Done():
			t.Fatalf("speaker on %s exited: %v", owner, p.Err())
		default:
		}
	}
	if o, err := arpOwner(ips[0]); err != nil || o != owner {
		t.Fatalf("after the garbage ARP answered by %q (%v), want %s", o, err, owner)
	}
	if o, err := ndpOwner(ips[1]); err != nil || o != owner {
		t.Fatalf("after the garbage NDP answered by %q (%v), want %s", o, err, owner)
	}
}

// Graceful stop of the owner's speaker: a surviving node takes over, and
// when the old speaker returns the address is served again.
func TestOwnerSpeakerStopHandsOverAndBack(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-failover", "192.0.2.216/30", "2001:db8:100::224/126")
	create(t, lbService("failover", corev1.IPFamilyPolicyRequireDualStack),
		endpoints("failover", discoveryv1.AddressTypeIPv4, "node1", "node2", "node3"), endpoints("failover", discoveryv1.AddressTypeIPv6, "node1", "node2", "node3"))
	ips := ingress(t, "failover", 2)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		owner := waitOwner(t, arpOwner, ips[0], anyNode)
		p := world.speaker(owner)
		if err := p.Signal(sig); err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		next := waitOwner(t, arpOwner, ips[0], func(o string) bool { return anyNode(o) && o != owner })
		waitOwner(t, ndpOwner, ips[1], func(o string) bool { return o == next })
		if _, err := world.startSpeaker(owner); err != nil {
			t.Fatal(err)
		}
		// Rendezvous hashing gives the address back to its old owner.
		waitOwner(t, arpOwner, ips[0], func(o string) bool { return o == owner })
		waitOwner(t, ndpOwner, ips[1], func(o string) bool { return o == owner })
	}
}

// With the apiserver unreachable, speakers keep announcing what they last
// knew; when it returns they pick up changes made meanwhile.
func TestSpeakersKeepAnnouncingWhileTheAPIServerIsUnreachable(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-offline", "192.0.2.232/30", "2001:db8:100::230/126")
	create(t, lbService("offline", corev1.IPFamilyPolicyRequireDualStack),
		endpoints("offline", discoveryv1.AddressTypeIPv4, "node1", "node2", "node3"),
		endpoints("offline", discoveryv1.AddressTypeIPv6, "node1", "node2", "node3"))
	ips := ingress(t, "offline", 2)
	owner := waitOwner(t, arpOwner, ips[0], anyNode)
	for _, n := range nodeNames {
		world.relays[n].Pause()
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			for _, n := range nodeNames {
				world.relays[n].Resume()
			}
		}
	}
	t.Cleanup(resume)
	// Meanwhile the cluster changes: a new Service gets addresses, which the
	// cut-off speakers cannot see yet.
	create(t, lbService("offline-late", corev1.IPFamilyPolicySingleStack),
		endpoints("offline-late", discoveryv1.AddressTypeIPv4, "node1", "node2", "node3"))
	late := ingress(t, "offline-late", 1)[0]
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if o, err := arpOwner(ips[0]); err != nil || o != owner {
			t.Fatalf("while the apiserver was unreachable ARP got %q (%v), want %s", o, err, owner)
		}
		if o, err := ndpOwner(ips[1]); err != nil || o != owner {
			t.Fatalf("while the apiserver was unreachable NDP got %q (%v), want %s", o, err, owner)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, n := range nodeNames {
		select {
		case <-world.speaker(n).Done():
			t.Fatalf("speaker on %s exited while the apiserver was unreachable", n)
		default:
		}
	}
	resume()
	waitOwner(t, arpOwner, late, anyNode)
	if o, err := arpOwner(ips[0]); err != nil || o != owner {
		t.Fatalf("after the apiserver returned ARP got %q (%v), want %s", o, err, owner)
	}
}

// Ready Nodes without a speaker (Windows nodes, nodes outside the DaemonSet)
// do not count toward the partition rule: three speakers beside three such
// Nodes still answer, and fail over.
func TestSpeakerlessNodesSilenceNobody(t *testing.T) {
	dumpOnFailure(t)
	ctx := context.Background()
	for i := range 3 {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("windows%d", i+1)}}
		create(t, n)
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("203.0.113.%d", i+1)}}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
		if err := world.env.Client.Status().Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	layer2Pool(t, "l2-speakerless", "192.0.2.232/30")
	create(t, lbService("speakerless", corev1.IPFamilyPolicySingleStack), endpoints("speakerless", discoveryv1.AddressTypeIPv4, "node1", "node2", "node3"))
	ip := ingress(t, "speakerless", 1)[0]
	owner := waitOwner(t, arpOwner, ip, anyNode)
	p := world.speaker(owner)
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	waitOwner(t, arpOwner, ip, func(o string) bool { return anyNode(o) && o != owner })
	if _, err := world.startSpeaker(owner); err != nil {
		t.Fatal(err)
	}
	waitOwner(t, arpOwner, ip, func(o string) bool { return o == owner })
}

// An address shared by two Services is answered while one of them has an
// endpoint, although its sibling has none.
func TestSharedAddressWithAnEndpointlessSiblingIsAnswered(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-shared", "192.0.2.236/30")
	share := func(s *corev1.Service) {
		s.Annotations = map[string]string{v1beta1.AnnotationAllowSharedIP: "k", v1beta1.AnnotationLoadBalancerIPs: "192.0.2.237"}
	}
	withPort := func(port int32) func(*corev1.Service) {
		return func(s *corev1.Service) { s.Spec.Ports[0].Port = port }
	}
	create(t, lbService("shared-empty", corev1.IPFamilyPolicySingleStack, share, withPort(81)),
		lbService("shared-serving", corev1.IPFamilyPolicySingleStack, share, withPort(82)),
		endpoints("shared-serving", discoveryv1.AddressTypeIPv4, "node2"))
	ingress(t, "shared-empty", 1)
	ip := ingress(t, "shared-serving", 1)[0]
	if ip != "192.0.2.237" {
		t.Fatalf("shared address %s, want 192.0.2.237", ip)
	}
	waitOwner(t, arpOwner, ip, anyNode)
}

// With no interface named, a node answers where its subnet is; pod veths
// and overlay (vxlan) devices are never answered on, even when they hold an
// address of the subnet's neighbourhood or the address is outside every subnet.
func TestDefaultInterfacesNeverIncludeVethOrVxlan(t *testing.T) {
	dumpOnFailure(t)
	for _, n := range nodeNames {
		h := world.lab.Host(n)
		for _, args := range [][]string{
			{"link", "add", "vethpod0", "type", "veth", "peer", "name", "vethpod1"},
			{"link", "add", "vxlan42", "type", "vxlan", "id", "42", "dstport", "4789", "dev", "eth0"},
			{"link", "set", "vethpod0", "up"}, {"link", "set", "vethpod1", "up"}, {"link", "set", "vxlan42", "up"},
		} {
			if out, err := h.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("%s: ip %v: %v: %s", n, args, err, out)
			}
		}
		t.Cleanup(func() {
			_ = h.Command("ip", "link", "del", "vethpod0").Run()
			_ = h.Command("ip", "link", "del", "vxlan42").Run()
		})
	}
	layer2Pool(t, "l2-ifaces", "192.0.2.244/30")
	create(t, lbService("ifaces", corev1.IPFamilyPolicySingleStack), endpoints("ifaces", discoveryv1.AddressTypeIPv4, "node1", "node2", "node3"))
	ip := ingress(t, "ifaces", 1)[0]
	owner := waitOwner(t, arpOwner, ip, anyNode)
	eventually(t, 30*time.Second, func() error {
		var list v1beta1.ServiceL2StatusList
		if err := world.env.Client.List(context.Background(), &list, client.InNamespace(heraldNS)); err != nil {
			return err
		}
		for _, s := range list.Items {
			if s.Status.ServiceName != "ifaces" || s.Status.Node != owner {
				continue
			}
			if len(s.Status.Interfaces) == 1 && s.Status.Interfaces[0].Name == "eth0" {
				return nil
			}
			return fmt.Errorf("answered on %+v, want only eth0", s.Status.Interfaces)
		}
		return fmt.Errorf("no ServiceL2Status for ifaces on %s", owner)
	}, "ServiceL2Status interfaces")
}

// A speaker that starts while the configuration holds an invalid object
// has no "last good configuration" to fall back on: it derives the same
// per-object configuration as everyone else. Here the older pool is widened
// over a newer pool that a Service holds an address from; the newer pool is
// frozen (invalid, gives nothing new) yet its held address stays announced,
// also by speakers started from scratch while the overlap exists.
func TestSpeakersStartedWhileAPoolOverlapsAnswerForHeldAddresses(t *testing.T) {
	dumpOnFailure(t)
	ctx := context.Background()
	layer2Pool(t, "l2-older", "192.0.2.220/30")
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has whole seconds: make "older" unambiguous
	layer2Pool(t, "l2-newer", "192.0.2.224/30")
	create(t, lbService("frozen", corev1.IPFamilyPolicySingleStack, func(s *corev1.Service) {
		s.Annotations = map[string]string{v1beta1.AnnotationAddressPool: "l2-newer"}
	}), endpoints("frozen", discoveryv1.AddressTypeIPv4, "node1", "node2", "node3"))
	ip := ingress(t, "frozen", 1)[0]
	waitOwner(t, arpOwner, ip, anyNode)

	var older v1beta1.IPAddressPool
	if err := world.env.Client.Get(ctx, client.ObjectKey{Namespace: heraldNS, Name: "l2-older"}, &older); err != nil {
		t.Fatal(err)
	}
	older.Spec.Addresses = []string{"192.0.2.220-192.0.2.227"} // now overlaps l2-newer, which loses
	if err := world.env.Client.Update(ctx, &older); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		var newer v1beta1.IPAddressPool
		if err := world.env.Client.Get(ctx, client.ObjectKey{Namespace: heraldNS, Name: "l2-newer"}, &newer); err != nil {
			return err
		}
		c := meta.FindStatusCondition(newer.Status.Conditions, v1beta1.ConditionValid)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1beta1.ReasonOverlapping {
			return fmt.Errorf("l2-newer Valid condition %+v", c)
		}
		return nil
	}, "l2-newer marked overlapping")

	// Every speaker restarts from nothing while the overlap exists.
	for _, n := range nodeNames {
		p := world.speaker(n)
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.Done()
	}
	t0 := time.Now()
	for _, n := range nodeNames {
		if _, err := world.startSpeaker(n); err != nil {
			t.Fatal(err)
		}
	}
	owner := waitOwner(t, arpOwner, ip, anyNode)
	t.Logf("held address %s of the frozen pool answered by %s %s after the speakers started", ip, owner, time.Since(t0).Round(time.Millisecond))
	if got := ingress(t, "frozen", 1)[0]; got != ip {
		t.Fatalf("the Service's address changed from %s to %s", ip, got)
	}
}
