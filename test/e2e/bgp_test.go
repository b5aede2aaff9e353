package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/test/netlab"
)

// BGP end to end: the controller allocates, the speakers in the node
// namespaces peer with FRR (zebra, bgpd, bfdd) in "router" and BIRD 2 in
// "router2", and every assertion reads the routers' own RIBs, logs and
// kernel FIBs. The routers start once, on first use, and keep a static
// configuration that accepts every session the tests open:
//
//	FRR  AS 64500  192.0.2.11-13      AS 64501 eBGP, BFD profile 300 ms x 3
//	               2001:db8:100::11   AS 64500 iBGP (node1; carries LOCAL_PREF)
//	               2001:db8:100::12   AS 64501 eBGP with TCP MD5 (node2)
//	BIRD AS 64500  192.0.2.11-13      AS 64501 eBGP
//
// The client routes the BGP-only ranges through router. Every session
// carries both families, so IPv6 routes travel over the IPv4
// sessions (MP-BGP) and IPv4 routes over the IPv6 ones. Each test creates
// its BGPPeers, pools and advertisements and deletes them when it ends; the
// pools lie outside the LAN (198.51.100.0/24, 2001:db8:200::/64,
// 203.0.113.0/24), one block per test.

const (
	routerASN   = 64500
	nodeASN     = 64501
	md5Password = "herald-e2e-md5"
	// bgpHold is the hold time of every session: failure detection without
	// BFD takes this long, so BFD must beat it clearly.
	bgpHold = 9 * time.Second
)

var (
	frrV4  = netip.MustParseAddr("192.0.2.1")
	frrV6  = netip.MustParseAddr("2001:db8:100::1")
	birdV4 = netip.MustParseAddr("192.0.2.2")
)

// labRouters are the two routers of the lab, started once per test binary.
type labRouters struct {
	frr  *netlab.FRR
	bird *netlab.BIRD
}

var theRouters struct {
	once sync.Once
	r    *labRouters
	err  error
}

// routers starts FRR and BIRD on first use and returns them; on failure it
// prints bgpd's log tail.
func routers(t *testing.T) *labRouters {
	t.Helper()
	if why := netlab.FRRAvailable(); why != "" {
		t.Skip(why)
	}
	if _, err := exec.LookPath("birdc"); err != nil {
		t.Skip("BIRD 2 is not installed (birdc)")
	}
	theRouters.once.Do(func() { theRouters.r, theRouters.err = startRouters() })
	if theRouters.err != nil {
		t.Fatal(theRouters.err)
	}
	r := theRouters.r
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if log, err := r.frr.Log(); err == nil {
			t.Logf("bgpd.log tail:\n%s", tail(log, 40))
		}
		if out, err := r.bird.Birdc("show", "protocols"); err == nil {
			t.Logf("BIRD protocols:\n%s", out)
		}
	})
	return r
}

func startRouters() (*labRouters, error) {
	lab := world.lab
	fc := netlab.FRRConfig{ASN: routerASN, RouterID: frrV4}
	bc := netlab.BIRDConfig{ASN: routerASN, RouterID: birdV4}
	for _, n := range nodeNames {
		h := lab.Host(n)
		fc.Neighbors = append(fc.Neighbors, netlab.FRRNeighbor{Address: h.Addr4(), ASN: nodeASN, BFD: true, HoldTime: bgpHold})
		bc.Neighbors = append(bc.Neighbors, netlab.BIRDNeighbor{Name: n, Address: h.Addr4(), ASN: nodeASN, HoldTime: bgpHold})
	}
	fc.Neighbors = append(fc.Neighbors,
		netlab.FRRNeighbor{Address: lab.Host("node1").Addr6(), ASN: routerASN, HoldTime: bgpHold},
		netlab.FRRNeighbor{Address: lab.Host("node2").Addr6(), ASN: nodeASN, Password: md5Password, HoldTime: bgpHold})
	// The client reaches the BGP-only ranges through router, as a host
	// behind it would.
	client := lab.Host("client")
	for _, rt := range [][]string{
		{"route", "replace", "198.51.100.0/24", "via", frrV4.String()},
		{"route", "replace", "203.0.113.0/24", "via", frrV4.String()},
		{"-6", "route", "replace", "2001:db8:200::/64", "via", frrV6.String()},
	} {
		if err := client.Run("ip", rt...); err != nil {
			return nil, err
		}
	}
	r := &labRouters{}
	var err error
	if r.frr, err = lab.Host("router").StartFRR(fc); err != nil {
		return nil, err
	}
	if r.bird, err = lab.Host("router2").StartBIRD(bc); err != nil {
		r.frr.Close()
		return nil, err
	}
	return r, nil
}

// closeRouters stops the routers and removes their state directories; the
// cluster calls it on teardown.
func closeRouters() {
	if r := theRouters.r; r != nil {
		r.frr.Close()
		r.bird.Close()
	}
}

func node(n string) *netlab.Host { return world.lab.Host(n) }

func addrs4(nodes ...string) []netip.Addr {
	out := make([]netip.Addr, len(nodes))
	for i, n := range nodes {
		out[i] = node(n).Addr4()
	}
	return out
}

func addrs6(nodes ...string) []netip.Addr {
	out := make([]netip.Addr, len(nodes))
	for i, n := range nodes {
		out[i] = node(n).Addr6()
	}
	return out
}

// onNodes selects nodes by their hostname label.
func onNodes(nodes ...string) []metav1.LabelSelector {
	return []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "kubernetes.io/hostname", Operator: metav1.LabelSelectorOpIn, Values: nodes}}}}
}

// bgpPeer is a BGPPeer with the lab's timers: hold 9 s, retry every second.
func bgpPeer(name string, myASN uint32, addr netip.Addr, peerASN uint32, mutate ...func(*v1beta1.BGPPeerSpec)) *v1beta1.BGPPeer {
	p := &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: heraldNS}, Spec: v1beta1.BGPPeerSpec{
		MyASN: myASN, PeerASN: peerASN, PeerAddress: addr.String(),
		HoldTime: &metav1.Duration{Duration: bgpHold}, ConnectTime: &metav1.Duration{Duration: time.Second},
	}}
	for _, m := range mutate {
		m(&p.Spec)
	}
	return p
}

// The peers the tests use: eBGP over IPv4 to each router from every node.
func frrPeer(mutate ...func(*v1beta1.BGPPeerSpec)) *v1beta1.BGPPeer {
	return bgpPeer("frr", nodeASN, frrV4, routerASN, mutate...)
}

func birdPeer() *v1beta1.BGPPeer { return bgpPeer("bird", nodeASN, birdV4, routerASN) }

func bgpAdv(name string, pools, peers []string, mutate ...func(*v1beta1.BGPAdvertisementSpec)) *v1beta1.BGPAdvertisement {
	a := &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: heraldNS},
		Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: pools, Peers: peers}}
	for _, m := range mutate {
		m(&a.Spec)
	}
	return a
}

// bgpPool creates a pool and a BGPAdvertisement of it to peers (all when
// none are named).
func bgpPool(t *testing.T, name string, addrs []string, peers ...string) {
	t.Helper()
	create(t, pool(name, addrs...), bgpAdv(name, []string{name}, peers))
}

// bgpService creates a Service with ready endpoints of both families on
// the nodes and returns its addresses once allocated (n of them).
func bgpService(t *testing.T, name string, policy corev1.IPFamilyPolicy, n int, nodes []string, mutate ...func(*corev1.Service)) []netip.Prefix {
	t.Helper()
	create(t, endpoints(name, discoveryv1.AddressTypeIPv4, nodes...), endpoints(name, discoveryv1.AddressTypeIPv6, nodes...),
		lbService(name, policy, mutate...))
	return hostPrefixes(ingress(t, name, n))
}

func hostPrefixes(ips []string) []netip.Prefix {
	out := make([]netip.Prefix, len(ips))
	for i, s := range ips {
		a := netip.MustParseAddr(s)
		out[i] = netip.PrefixFrom(a, a.BitLen())
	}
	return out
}

func sortedAddrs(a []netip.Addr) []netip.Addr {
	s := slices.Clone(a)
	slices.SortFunc(s, netip.Addr.Compare)
	return s
}

// frrPeersOf lists the neighbours FRR holds valid paths from.
func frrPeersOf(paths []netlab.FRRPath) []netip.Addr {
	var out []netip.Addr
	for _, p := range paths {
		if p.Valid {
			out = append(out, p.Peer)
		}
	}
	return sortedAddrs(out)
}

// waitFRR waits until FRR's valid paths for p come from exactly the
// neighbours from (none: FRR has no path) and returns them.
func (r *labRouters) waitFRR(t *testing.T, p netip.Prefix, timeout time.Duration, from ...netip.Addr) []netlab.FRRPath {
	t.Helper()
	return r.waitFRRWith(t, p, timeout, nil, from...)
}

// waitFRRWith is waitFRR that also waits for check to accept the paths:
// bgpd runs best-path selection after it stores a path, so flags such as
// best and multipath settle a moment after the path appears.
func (r *labRouters) waitFRRWith(t *testing.T, p netip.Prefix, timeout time.Duration, check func([]netlab.FRRPath) error, from ...netip.Addr) []netlab.FRRPath {
	t.Helper()
	want := sortedAddrs(from)
	var paths []netlab.FRRPath
	eventually(t, timeout, func() (err error) {
		if paths, err = r.frr.BGPRoute(p); err != nil {
			return err
		}
		if got := frrPeersOf(paths); !slices.Equal(got, want) {
			return fmt.Errorf("paths from %v, want from %v", got, want)
		}
		if check != nil {
			return check(paths)
		}
		return nil
	}, "FRR's paths for %s", p)
	return paths
}

// waitBIRD waits until BIRD's routes for p come from exactly the protocols
// (one per node; none: no route) and returns them.
func (r *labRouters) waitBIRD(t *testing.T, p netip.Prefix, timeout time.Duration, protos ...string) []netlab.BIRDRoute {
	t.Helper()
	return r.waitBIRDWith(t, p, timeout, nil, protos...)
}

// waitBIRDWith is waitBIRD that also waits for check to accept the routes.
func (r *labRouters) waitBIRDWith(t *testing.T, p netip.Prefix, timeout time.Duration, check func([]netlab.BIRDRoute) error, protos ...string) []netlab.BIRDRoute {
	t.Helper()
	want := slices.Sorted(slices.Values(protos))
	var routes []netlab.BIRDRoute
	eventually(t, timeout, func() error {
		all, err := r.bird.Routes()
		if err != nil {
			return err
		}
		routes = routes[:0]
		var got []string
		for _, x := range all {
			if x.Prefix == p {
				routes = append(routes, x)
				got = append(got, x.Protocol)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("routes from %v, want from %v", got, want)
		}
		if check != nil {
			return check(routes)
		}
		return nil
	}, "BIRD's routes for %s", p)
	return routes
}

// waitKernel waits until the host's kernel routes p via exactly the next
// hops want (none: no route).
func waitKernel(t *testing.T, h *netlab.Host, p netip.Prefix, timeout time.Duration, want ...netip.Addr) {
	t.Helper()
	want = sortedAddrs(want)
	eventually(t, timeout, func() error {
		r, ok, err := h.KernelRoute(p)
		if err != nil {
			return err
		}
		if len(want) == 0 {
			if ok {
				return fmt.Errorf("still routed via %v", r.NextHops)
			}
			return nil
		}
		if got := sortedAddrs(r.NextHops); !ok || !slices.Equal(got, want) {
			return fmt.Errorf("routed via %v (present %v), want via %v", got, ok, want)
		}
		return nil
	}, "%s's kernel route to %s", h.Spec.Name, p)
}

// waitFRRUp waits until FRR's sessions with addrs are established (and
// their BFD up, with bfd) and returns their states.
func (r *labRouters) waitFRRUp(t *testing.T, timeout time.Duration, bfd bool, addrs ...netip.Addr) map[netip.Addr]netlab.FRRNeighborState {
	t.Helper()
	var nb map[netip.Addr]netlab.FRRNeighborState
	eventually(t, timeout, func() (err error) {
		if nb, err = r.frr.Neighbors(); err != nil {
			return err
		}
		for _, a := range addrs {
			if st := nb[a]; st.State != "Established" || (bfd && st.BFDStatus != "Up") {
				return fmt.Errorf("neighbour %s: %+v", a, st)
			}
		}
		return nil
	}, "FRR sessions with %v", addrs)
	return nb
}

func (r *labRouters) waitBIRDUp(t *testing.T, timeout time.Duration, protos ...string) {
	t.Helper()
	eventually(t, timeout, func() error {
		ps, err := r.bird.Protocols()
		if err != nil {
			return err
		}
		for _, n := range protos {
			if p := ps[n]; p.Info != "Established" {
				return fmt.Errorf("protocol %s: %+v", n, p)
			}
		}
		return nil
	}, "BIRD sessions %v", protos)
}

// frrEvents returns bgpd's log events of one kind about p (any prefix when
// zero) from any of the neighbours, at or after since.
func (r *labRouters) frrEvents(t *testing.T, kind string, p netip.Prefix, since time.Time, from ...netip.Addr) []netlab.FRRLogEvent {
	t.Helper()
	evs, err := r.frr.LogEvents()
	if err != nil {
		t.Fatal(err)
	}
	var out []netlab.FRRLogEvent
	for _, e := range evs {
		if e.Kind == kind && (!p.IsValid() || e.Prefix == p) && !e.Time.Before(since) && (len(from) == 0 || slices.Contains(from, e.Neighbor)) {
			out = append(out, e)
		}
	}
	return out
}

// sameSession reports whether FRR's session with a neighbour is the same one
// at both observations: FRR counts every establishment and every drop.
func sameSession(a, b netlab.FRRNeighborState) bool {
	return a.State == "Established" && b.State == "Established" &&
		a.ConnectionsEstablished == b.ConnectionsEstablished && a.ConnectionsDropped == b.ConnectionsDropped
}

// lastUpdates maps each neighbour's path to when FRR last changed it
// (whole seconds): a path that was withdrawn or replaced gets a new time.
func lastUpdates(paths []netlab.FRRPath) map[netip.Addr]time.Time {
	out := map[netip.Addr]time.Time{}
	for _, p := range paths {
		out[p.Peer] = p.LastUpdate
	}
	return out
}

// bgpStatus returns, per node, the peers and addresses its ServiceBGPStatus
// for the Service lists, as "peer,peer/address,address".
func bgpStatus(name string) (map[string]string, error) {
	var list v1beta1.ServiceBGPStatusList
	if err := world.env.Client.List(context.Background(), &list, client.InNamespace(heraldNS)); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range list.Items {
		if s.Status.ServiceName == name && s.Status.ServiceNamespace == "default" {
			out[s.Status.Node] = strings.Join(slices.Sorted(slices.Values(s.Status.Peers)), ",") + "/" +
				strings.Join(slices.Sorted(slices.Values(s.Status.Addresses)), ",")
		}
	}
	return out, nil
}

// planFailures counts, per node, the plans the speaker failed to apply
// because of a localPref towards an eBGP peer.
func planFailures() map[string]int {
	out := map[string]int{}
	for _, n := range nodeNames {
		if p := world.speaker(n); p != nil {
			for _, line := range strings.Split(p.Output(), "\n") {
				if strings.Contains(line, "applying the plan partly failed") && strings.Contains(line, "localPref") {
					out[n]++
				}
			}
		}
	}
	return out
}

func deleteService(t *testing.T, name string) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if err := world.env.Client.Delete(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
}

// deliveredTo sends UDP datagrams from the client to addr until one arrives
// on a node's eth0 from the router (the client's default gateway) and
// returns that node: the data path the routers' FIBs promise.
func deliveredTo(t *testing.T, addr netip.Addr) string {
	t.Helper()
	et, dst := uint16(0x0800), [2]int{14 + 16, 14 + 20}
	if addr.Is6() {
		et, dst = 0x86dd, [2]int{14 + 24, 14 + 40}
	}
	routerMAC := node("router").MAC()
	got := make(chan string, len(nodeNames))
	for _, n := range nodeNames {
		c, err := node(n).ListenPacket("eth0", et)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			buf := make([]byte, 2048)
			for {
				k, _, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				if k < dst[1] || !slices.Equal(buf[6:12], routerMAC) {
					continue
				}
				if a, ok := netip.AddrFromSlice(buf[dst[0]:dst[1]]); ok && a == addr {
					got <- n
					return
				}
			}
		}()
	}
	client := node("client")
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// An ICMP redirect from the one-armed router would send later
		// datagrams straight to a node: forget it before each one.
		_ = client.Run("ip", "route", "flush", "cache")
		_ = client.Run("ip", "-6", "route", "flush", "cache")
		if err := client.Do(func() error {
			c, err := net.Dial("udp", netip.AddrPortFrom(addr, 9).String())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("herald-e2e"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-got:
			return n
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no datagram to %s reached a node through the router within 10 s", addr)
		}
	}
}

// updateObj re-reads obj, applies mutate and writes it back, retrying on
// conflicts.
func updateObj[T client.Object](t *testing.T, obj T, mutate func(T)) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if err := world.env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return world.env.Client.Update(context.Background(), obj)
	}, "update %T %s", obj, obj.GetName())
}

// Scenario 1 and 6: a dual-stack Service reaches both routers as a /32 and
// a /128 with the advertisement's communities (literal, large and named)
// and, on the iBGP session, its LOCAL_PREF; the /128 crosses the IPv4
// sessions with the node's IPv6 address as next hop and the /32 the IPv6
// session with the node's IPv4 address. Deleting the Service withdraws both.
func TestBGPDualStackServiceReachesBothRoutersWithAttributes(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	router, router2 := node("router"), node("router2")
	create(t,
		&v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: "bgp-e2e", Namespace: heraldNS},
			Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "gold", Value: "64500:300"}}}},
		frrPeer(), birdPeer(),
		bgpPeer("frr-ibgp", routerASN, frrV6, routerASN, func(s *v1beta1.BGPPeerSpec) { s.NodeSelectors = onNodes("node1") }),
		pool("bgp-dual", "198.51.100.16/30", "2001:db8:200::10/126"),
		bgpAdv("bgp-dual", []string{"bgp-dual"}, []string{"frr", "frr-ibgp", "bird"}, func(s *v1beta1.BGPAdvertisementSpec) {
			s.Communities = []string{"64500:100", "large:64500:1:2", "gold"}
			s.LocalPref = new(uint32(250))
		}))
	since := time.Now()
	failures := planFailures()
	pfx := bgpService(t, "bgp-dual", corev1.IPFamilyPolicyRequireDualStack, 2, nodeNames)
	v4, v6 := pfx[0], pfx[1]
	r.waitFRRUp(t, 20*time.Second, false, append(addrs4(nodeNames...), node("node1").Addr6())...)
	r.waitBIRDUp(t, 20*time.Second, nodeNames...)

	ebgp := addrs4(nodeNames...)
	ibgp := node("node1").Addr6()
	all := append(slices.Clone(ebgp), ibgp)
	for _, p := range []netip.Prefix{v4, v6} {
		r.waitFRRWith(t, p, 20*time.Second, func(paths []netlab.FRRPath) error {
			for _, path := range paths {
				wantNH := node(nodeFor(path.Peer)).Addr4()
				if p.Addr().Is6() {
					wantNH = node(nodeFor(path.Peer)).Addr6()
				}
				switch {
				case len(path.NextHops) == 0 || path.NextHops[0] != wantNH:
					return fmt.Errorf("%s from %s has next hops %v, want %s", p, path.Peer, path.NextHops, wantNH)
				case path.Communities != "64500:100 64500:300" || path.LargeCommunities != "64500:1:2":
					return fmt.Errorf("%s from %s carries communities %q and large %q, want \"64500:100 64500:300\" and \"64500:1:2\"",
						p, path.Peer, path.Communities, path.LargeCommunities)
				case path.Peer == ibgp && (path.LocalPref != 250 || !path.Best):
					return fmt.Errorf("%s over iBGP from %s has localPref %d (best %v), want 250 and best", p, ibgp, path.LocalPref, path.Best)
				case path.Peer != ibgp && path.LocalPref == 250:
					return fmt.Errorf("%s over eBGP from %s carries the iBGP localPref", p, path.Peer)
				}
			}
			return nil
		}, all...)
	}
	// The iBGP path wins on LOCAL_PREF, so FRR installs node1 alone.
	waitKernel(t, router, v4, 10*time.Second, node("node1").Addr4())
	waitKernel(t, router, v6, 10*time.Second, node("node1").Addr6())

	for _, p := range []netip.Prefix{v4, v6} {
		for _, br := range r.waitBIRD(t, p, 20*time.Second, nodeNames...) {
			if c, l := br.Attrs["BGP.community"], br.Attrs["BGP.large_community"]; c != "(64500,100) (64500,300)" || l != "(64500, 1, 2)" {
				t.Errorf("BIRD: %s from %s carries communities %q and large %q", p, br.Protocol, c, l)
			}
		}
	}
	waitKernel(t, router2, v4, 10*time.Second, addrs4(nodeNames...)...)
	waitKernel(t, router2, v6, 10*time.Second, addrs6(nodeNames...)...)

	eventually(t, 10*time.Second, func() error {
		got, err := bgpStatus("bgp-dual")
		if err != nil {
			return err
		}
		ips := "/" + strings.Join(slices.Sorted(slices.Values([]string{v4.Addr().String(), v6.Addr().String()})), ",")
		want := map[string]string{"node1": "bird,frr,frr-ibgp" + ips, "node2": "bird,frr" + ips, "node3": "bird,frr" + ips}
		if !maps.Equal(got, want) {
			return fmt.Errorf("ServiceBGPStatus %v, want %v", got, want)
		}
		return nil
	}, "ServiceBGPStatus of bgp-dual")

	// A localPref that cannot reach the eBGP peers is a warning (the
	// configuration reports it), not a failure to retry forever.
	if now := planFailures(); !maps.Equal(now, failures) {
		t.Errorf("speakers logged failed plans: %v, before %v", now, failures)
	}

	// Scenario 6: deleting the Service withdraws both families everywhere.
	deleteService(t, "bgp-dual")
	for _, p := range []netip.Prefix{v4, v6} {
		r.waitFRR(t, p, 10*time.Second)
		r.waitBIRD(t, p, 10*time.Second)
		waitKernel(t, router, p, 10*time.Second)
		waitKernel(t, router2, p, 10*time.Second)
	}
	if n := len(r.frrEvents(t, "withdraw", v4, since, all...)); n != len(all) {
		t.Errorf("FRR logged %d withdrawals of %s, want one per session (%d)", n, v4, len(all))
	}
}

// Scenario 2: three nodes announce one address; FRR (maximum-paths 8) and
// BIRD (merge paths) install three-way ECMP for both families.
func TestBGPECMPAcrossTheThreeNodes(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	create(t, frrPeer(), birdPeer())
	bgpPool(t, "bgp-ecmp", []string{"198.51.100.20/30", "2001:db8:200::20/126"}, "frr", "bird")
	pfx := bgpService(t, "bgp-ecmp", corev1.IPFamilyPolicyRequireDualStack, 2, nodeNames)
	for _, p := range pfx {
		r.waitFRRWith(t, p, 20*time.Second, func(paths []netlab.FRRPath) error {
			used := 0
			for _, x := range paths {
				if x.Best || x.Multipath {
					used++
				}
			}
			if used != 3 {
				return fmt.Errorf("FRR uses %d of the paths, want 3: %+v", used, paths)
			}
			return nil
		}, addrs4(nodeNames...)...)
		want := addrs4(nodeNames...)
		if p.Addr().Is6() {
			want = addrs6(nodeNames...)
		}
		waitKernel(t, node("router"), p, 10*time.Second, want...)
		r.waitBIRD(t, p, 20*time.Second, nodeNames...)
		waitKernel(t, node("router2"), p, 10*time.Second, want...)
		// The client reaches the address through the router (one flow
		// hashes to one of the three nodes).
		t.Logf("client -> %s: delivered to %s via the router", p.Addr(), deliveredTo(t, p.Addr()))
	}
}

// Scenario 3: with externalTrafficPolicy Local only the nodes holding an
// endpoint advertise, and the route follows the endpoint when it moves.
func TestBGPLocalPolicyIsAdvertisedOnlyByTheEndpointsNode(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	create(t, frrPeer(), birdPeer())
	bgpPool(t, "bgp-local", []string{"198.51.100.24/30"}, "frr", "bird")
	since := time.Now()
	local := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
	eps := endpoints("bgp-local", discoveryv1.AddressTypeIPv4, "node2")
	create(t, eps, lbService("bgp-local", corev1.IPFamilyPolicySingleStack, local))
	lp := hostPrefixes(ingress(t, "bgp-local", 1))[0]
	// A Cluster-policy Service created afterwards is a barrier: once every
	// node advertises it, every speaker has seen the Local one as well.
	cp := bgpService(t, "bgp-cluster", corev1.IPFamilyPolicySingleStack, 1, []string{"node1"})[0]
	r.waitFRR(t, cp, 20*time.Second, addrs4(nodeNames...)...)
	r.waitBIRD(t, cp, 20*time.Second, nodeNames...)

	r.waitFRR(t, lp, 10*time.Second, node("node2").Addr4())
	r.waitBIRD(t, lp, 10*time.Second, "node2")
	waitKernel(t, node("router"), lp, 10*time.Second, node("node2").Addr4())
	if n := deliveredTo(t, lp.Addr()); n != "node2" {
		t.Errorf("the client's traffic to %s reached %s, want node2", lp.Addr(), n)
	}
	if evs := r.frrEvents(t, "announce", lp, since, addrs4("node1", "node3")...); len(evs) != 0 {
		t.Errorf("nodes without an endpoint announced %s to FRR: %+v", lp, evs)
	}

	updateObj(t, eps, func(sl *discoveryv1.EndpointSlice) { sl.Endpoints[0].NodeName = new("node3") })
	r.waitFRR(t, lp, 10*time.Second, node("node3").Addr4())
	r.waitBIRD(t, lp, 10*time.Second, "node3")
	waitKernel(t, node("router"), lp, 10*time.Second, node("node3").Addr4())
	if n := deliveredTo(t, lp.Addr()); n != "node3" {
		t.Errorf("after the move the client's traffic to %s reached %s, want node3", lp.Addr(), n)
	}
}

// Scenarios 4 and 5, the seed scenario: a PreferDualStack Service on an
// IPv4-only pool is announced as a /32; adding IPv6 to the pool adds the
// /128 while the /32 is neither withdrawn nor re-sent; going back to
// SingleStack withdraws only the /128.
func TestBGPBackfilledFamilyIsAnnouncedAndReleasedAloneTheOtherUntouched(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	create(t, frrPeer(), birdPeer())
	p := pool("bgp-seed", "198.51.100.28/30")
	create(t, p, bgpAdv("bgp-seed", []string{"bgp-seed"}, []string{"frr", "bird"}))
	since := time.Now()
	v4 := bgpService(t, "bgp-seed", corev1.IPFamilyPolicyPreferDualStack, 1, nodeNames)[0]
	nodes4 := addrs4(nodeNames...)
	before := lastUpdates(r.waitFRR(t, v4, 20*time.Second, nodes4...))
	r.waitBIRD(t, v4, 20*time.Second, nodeNames...)
	learnt := r.frrEvents(t, "announce", v4, since, nodes4...)
	announced := len(learnt)
	// FRR reports a path's age in whole seconds (and the epoch it derives
	// jitters by one): let the /32 age past that before touching anything,
	// so a re-learnt path would show.
	time.Sleep(time.Until(learnt[len(learnt)-1].Time.Add(2500 * time.Millisecond)))

	// The /32 must not move while the other family comes and goes: same
	// age at FRR, no UPDATE about it in bgpd's log.
	untouched := func(step string) {
		t.Helper()
		if got := lastUpdates(r.waitFRR(t, v4, time.Second, nodes4...)); !sameAges(got, before) {
			t.Errorf("%s: the /32's paths at FRR were replaced: last update %v, before %v", step, got, before)
		}
		if n := len(r.frrEvents(t, "withdraw", v4, since, nodes4...)); n != 0 {
			t.Errorf("%s: FRR logged %d withdrawals of %s", step, n, v4)
		}
		if n := len(r.frrEvents(t, "announce", v4, since, nodes4...)); n != announced {
			t.Errorf("%s: %s was re-sent to FRR %d times", step, v4, n-announced)
		}
		waitKernel(t, node("router"), v4, time.Second, nodes4...)
	}

	updateObj(t, p, func(p *v1beta1.IPAddressPool) {
		p.Spec.Addresses = []string{"198.51.100.28/30", "2001:db8:200::28/126"}
	})
	both := hostPrefixes(ingress(t, "bgp-seed", 2))
	if both[0] != v4 {
		t.Fatalf("backfill changed the IPv4 address: %s -> %s", v4, both[0])
	}
	v6 := both[1]
	for _, path := range r.waitFRR(t, v6, 20*time.Second, nodes4...) {
		if want := node(nodeFor(path.Peer)).Addr6(); len(path.NextHops) == 0 || path.NextHops[0] != want {
			t.Errorf("FRR: %s over the IPv4 session %s has next hops %v, want %s", v6, path.Peer, path.NextHops, want)
		}
	}
	r.waitBIRD(t, v6, 20*time.Second, nodeNames...)
	waitKernel(t, node("router"), v6, 10*time.Second, addrs6(nodeNames...)...)
	untouched("IPv6 backfilled")

	updateObj(t, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bgp-seed", Namespace: "default"}}, func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = new(corev1.IPFamilyPolicySingleStack)
		s.Spec.IPFamilies = s.Spec.IPFamilies[:1]
		s.Spec.ClusterIPs = s.Spec.ClusterIPs[:1]
	})
	if after := hostPrefixes(ingress(t, "bgp-seed", 1)); after[0] != v4 {
		t.Fatalf("downgrade changed the IPv4 address: %s -> %s", v4, after[0])
	}
	r.waitFRR(t, v6, 10*time.Second)
	r.waitBIRD(t, v6, 10*time.Second)
	waitKernel(t, node("router"), v6, 10*time.Second)
	waitKernel(t, node("router2"), v6, 10*time.Second)
	untouched("back to SingleStack")
}

func nodeFor(a netip.Addr) string {
	for _, n := range nodeNames {
		if node(n).Addr4() == a || node(n).Addr6() == a {
			return n
		}
	}
	return ""
}

// sameAges compares FRR's per-path update times, which jitter by a second.
func sameAges(a, b map[netip.Addr]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v.Sub(w).Abs() > time.Second {
			return false
		}
	}
	return true
}

// Scenario 7: a session with a TCP MD5 password from a Secret; with the
// wrong password it never establishes, with the right one it does and
// carries routes (IPv4 over this IPv6 session).
func TestBGPMD5PasswordFromASecret(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	n2 := node("node2")
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bgp-md5", Namespace: heraldNS}, Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{"password": []byte("wrong-" + md5Password)}}
	create(t, sec, bgpPeer("frr-md5", nodeASN, frrV6, routerASN, func(s *v1beta1.BGPPeerSpec) {
		s.NodeSelectors = onNodes("node2")
		s.PasswordSecret = &corev1.SecretReference{Name: "bgp-md5"}
	}))
	bgpPool(t, "bgp-md5", []string{"198.51.100.32/30"}, "frr-md5")
	p := bgpService(t, "bgp-md5", corev1.IPFamilyPolicySingleStack, 1, []string{"node2"})[0]
	// The speaker has configured the peer once its status names it.
	eventually(t, 20*time.Second, func() error {
		got, err := bgpStatus("bgp-md5")
		if err != nil {
			return err
		}
		if want := "frr-md5/" + p.Addr().String(); got["node2"] != want {
			return fmt.Errorf("ServiceBGPStatus %v, want node2: %s", got, want)
		}
		return nil
	}, "node2 advertising to frr-md5")
	// Both sides retry every second: watch several attempts fail.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		nb, err := r.frr.Neighbors()
		if err != nil {
			t.Fatal(err)
		}
		if st := nb[n2.Addr6()]; st.State == "Established" || st.ConnectionsEstablished != 0 {
			t.Fatalf("FRR established with node2 despite a wrong MD5 password: %+v", st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if paths, err := r.frr.BGPRoute(p); err != nil || len(paths) != 0 {
		t.Fatalf("FRR has %s without an authenticated session: %+v (%v)", p, paths, err)
	}

	updateObj(t, sec, func(s *corev1.Secret) { s.Data["password"] = []byte(md5Password) })
	r.waitFRRUp(t, 20*time.Second, false, n2.Addr6())
	paths := r.waitFRR(t, p, 10*time.Second, n2.Addr6())
	if len(paths[0].NextHops) == 0 || paths[0].NextHops[0] != n2.Addr4() {
		t.Errorf("FRR: %s over the IPv6 session has next hops %v, want %s", p, paths[0].NextHops, n2.Addr4())
	}
	waitKernel(t, node("router"), p, 10*time.Second, n2.Addr4())
}

// Scenario 8: SIGTERM makes the speaker withdraw its routes explicitly
// before its sessions close; the routers keep the other nodes' paths. The
// speaker is restarted so later tests find three.
func TestBGPSpeakerSIGTERMWithdrawsBeforeClosing(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	create(t, frrPeer(), birdPeer())
	bgpPool(t, "bgp-term", []string{"198.51.100.36/30", "2001:db8:200::30/126"}, "frr", "bird")
	pfx := bgpService(t, "bgp-term", corev1.IPFamilyPolicyRequireDualStack, 2, nodeNames)
	for _, p := range pfx {
		r.waitFRR(t, p, 20*time.Second, addrs4(nodeNames...)...)
		r.waitBIRD(t, p, 20*time.Second, nodeNames...)
	}
	const victim = "node3"
	va := node(victim).Addr4()
	t0 := time.Now()
	sp := world.speaker(victim)
	if err := sp.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ensureSpeaker(t, victim) })
	select {
	case <-sp.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("speaker on %s did not exit within 15 s of SIGTERM", victim)
	}
	exited := time.Since(t0)
	rest := []string{"node1", "node2"}
	for _, p := range pfx {
		r.waitFRR(t, p, 10*time.Second, addrs4(rest...)...)
		r.waitBIRD(t, p, 10*time.Second, rest...)
		want := addrs4(rest...)
		if p.Addr().Is6() {
			want = addrs6(rest...)
		}
		waitKernel(t, node("router"), p, 10*time.Second, want...)
		waitKernel(t, node("router2"), p, 10*time.Second, want...)
	}
	// bgpd logs the withdrawals, then the Cease NOTIFICATION.
	var closed time.Time
	// bgpd may write the line a moment after the routes changed.
	_, _ = r.frr.LogEventsUntil(5*time.Second, func(evs []netlab.FRRLogEvent) bool {
		return slices.ContainsFunc(evs, func(e netlab.FRRLogEvent) bool {
			return e.Kind == "notification" && e.Neighbor == va && !e.Time.Before(t0)
		})
	})
	if n := r.frrEvents(t, "notification", netip.Prefix{}, t0, va); len(n) > 0 {
		closed = n[0].Time
	} else {
		t.Fatalf("FRR logged no NOTIFICATION from %s after the SIGTERM", victim)
	}
	for _, p := range pfx {
		w := r.frrEvents(t, "withdraw", p, t0, va)
		if len(w) != 1 || w[0].Time.After(closed) {
			t.Errorf("FRR: %s from %s withdrawn %v, session closed at %s: want one withdrawal before the close", p, victim, w, closed.Format(time.StampMicro))
			continue
		}
		t.Logf("%s withdrawn at FRR %s after SIGTERM (%s before the Cease); speaker exited after %s",
			p, w[0].Time.Sub(t0).Round(time.Microsecond), closed.Sub(w[0].Time).Round(time.Microsecond), exited.Round(time.Millisecond))
	}

	ensureSpeaker(t, victim)
	for _, p := range pfx {
		r.waitFRR(t, p, 30*time.Second, addrs4(nodeNames...)...)
		r.waitBIRD(t, p, 30*time.Second, nodeNames...)
	}
}

// ensureSpeaker restarts the node's speaker when it is not running.
func ensureSpeaker(t *testing.T, n string) {
	t.Helper()
	if p := world.speaker(n); p != nil {
		select {
		case <-p.Done():
		default:
			return
		}
	}
	if _, err := world.startSpeaker(n); err != nil {
		t.Fatal(err)
	}
}

// Scenario 9: a BGPPeer created at runtime establishes and receives the
// routes, and the sessions already up are neither reset nor sent anything.
func TestBGPPeerAddedAtRuntimeLeavesExistingSessionsAlone(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	create(t, frrPeer())
	bgpPool(t, "bgp-runtime", []string{"198.51.100.40/30"}) // to every peer of the node
	since := time.Now()
	p := bgpService(t, "bgp-runtime", corev1.IPFamilyPolicySingleStack, 1, nodeNames)[0]
	nodes4 := addrs4(nodeNames...)
	r.waitFRR(t, p, 20*time.Second, nodes4...)
	before := r.waitFRRUp(t, time.Second, false, nodes4...)
	announced := len(r.frrEvents(t, "announce", p, since, nodes4...))

	create(t, birdPeer())
	r.waitBIRDUp(t, 20*time.Second, nodeNames...)
	r.waitBIRD(t, p, 10*time.Second, nodeNames...)
	waitKernel(t, node("router2"), p, 10*time.Second, nodes4...)
	after := r.waitFRRUp(t, time.Second, false, nodes4...)
	for _, a := range nodes4 {
		if !sameSession(before[a], after[a]) {
			t.Errorf("FRR's session with %s was reset by adding the BIRD peer: before %+v, after %+v", a, before[a], after[a])
		}
	}
	if n := len(r.frrEvents(t, "announce", p, since, nodes4...)); n != announced {
		t.Errorf("%s was re-sent to FRR %d times when the BIRD peer was added", p, n-announced)
	}
	if n := len(r.frrEvents(t, "withdraw", p, since, nodes4...)); n != 0 {
		t.Errorf("FRR logged %d withdrawals of %s when the BIRD peer was added", n, p)
	}
}

// Scenario 10: with a BFDProfile on the peer, FRR's bfdd drops a silently
// cut node's routes within the BFD detection time (3 x 300 ms), long before
// the 9 s hold time; the session comes back when the link does.
func TestBGPBFDDropsASilentlyCutNodeBeforeTheHoldTime(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	create(t, &v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: "bgp-bfd", Namespace: heraldNS}, Spec: v1beta1.BFDProfileSpec{
		ReceiveInterval: new(uint32(300)), TransmitInterval: new(uint32(300)), DetectMultiplier: new(uint32(3))}},
		frrPeer(func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "bgp-bfd" }))
	bgpPool(t, "bgp-bfd", []string{"198.51.100.44/30"}, "frr")
	p := bgpService(t, "bgp-bfd", corev1.IPFamilyPolicySingleStack, 1, nodeNames)[0]
	nodes4 := addrs4(nodeNames...)
	r.waitFRRUp(t, 20*time.Second, true, nodes4...)
	r.waitFRR(t, p, 10*time.Second, nodes4...)
	waitKernel(t, node("router"), p, 10*time.Second, nodes4...)

	const victim = "node3"
	h := node(victim)
	cut := time.Now()
	if err := h.SetLink(false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.SetLink(true) })
	rest := addrs4("node1", "node2")
	// The deadline is below the hold time, and the reset reason says which
	// timer fired.
	r.waitFRR(t, p, bgpHold-time.Second, rest...)
	took := time.Since(cut)
	waitKernel(t, node("router"), p, bgpHold-time.Second-time.Since(cut), rest...)
	// FRR sends a Cease with subcode "BFD Down" (RFC 9384) when bfdd
	// reports the peer down; a hold-timer expiry would say so instead.
	var raw map[string]struct {
		State        string `json:"bgpState"`
		Notification string `json:"lastNotificationReason"`
	}
	if err := r.frr.BGPJSON("show bgp neighbors "+h.Addr4().String()+" json", &raw); err != nil {
		t.Fatal(err)
	}
	if st := raw[h.Addr4().String()]; st.State == "Established" || !strings.Contains(st.Notification, "BFD Down") {
		t.Errorf("FRR's session with the cut node: state %s, last notification %q; want it closed by BFD", st.State, st.Notification)
	}
	t.Logf("FRR dropped %s's path %s after the cut (polled; BFD 300 ms x 3, hold %s)", victim, took.Round(time.Millisecond), bgpHold)

	if err := h.SetLink(true); err != nil {
		t.Fatal(err)
	}
	r.waitFRRUp(t, 30*time.Second, true, h.Addr4())
	r.waitFRR(t, p, 10*time.Second, nodes4...)
	waitKernel(t, node("router"), p, 10*time.Second, nodes4...)
}

// fibLog follows a router namespace's kernel routes through a netlink
// subscription and stamps every change as it arrives: a precise clock for
// "the route is in the FIB", unlike polling `ip route`. Zebra and BIRD
// replace routes whole, so every notification carries all next hops.
type fibLog struct {
	mu      sync.Mutex
	hist    map[netip.Prefix][]fibChange
	changed chan struct{}
}

type fibChange struct {
	at   time.Time
	hops int // next hops after the change; 0: no route
}

func watchFIB(t *testing.T, h *netlab.Host) *fibLog {
	t.Helper()
	w := &fibLog{hist: map[netip.Prefix][]fibChange{}, changed: make(chan struct{})}
	stop, err := h.WatchRoutes(func(c netlab.RouteChange) {
		w.mu.Lock()
		w.hist[c.Prefix] = append(w.hist[c.Prefix], fibChange{at: c.At, hops: c.NextHops})
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}, func(err error) { t.Errorf("%v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return w
}

// hops is the number of next hops the FIB holds for p now.
func (w *fibLog) hops(p netip.Prefix) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h := w.hist[p]; len(h) > 0 {
		return h[len(h)-1].hops
	}
	return 0
}

// when returns the first change of p at or after since that satisfies ok.
func (w *fibLog) when(p netip.Prefix, since time.Time, ok func(hops int) bool) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.hist[p] {
		if !c.at.Before(since) && ok(c.hops) {
			return c.at, true
		}
	}
	return time.Time{}, false
}

// wait blocks until every prefix has a next-hop count that satisfies ok.
func (w *fibLog) wait(t *testing.T, timeout time.Duration, what string, ok func(hops int) bool, ps ...netip.Prefix) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		all := true
		for _, p := range ps {
			if !ok(w.hops(p)) {
				all = false
				break
			}
		}
		if all {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("FIB: %s: not within %s", what, timeout)
		}
	}
}

func hopsAre(n int) func(int) bool     { return func(h int) bool { return h == n } }
func hopsAtLeast(n int) func(int) bool { return func(h int) bool { return h >= n } }

// statusLog records when each Service in "default" was first seen (through
// a watch) holding n addresses.
type statusLog struct {
	mu   sync.Mutex
	seen map[string]map[int]time.Time
}

func watchStatus(t *testing.T) *statusLog {
	t.Helper()
	c, err := client.NewWithWatch(world.env.Config, client.Options{Scheme: world.env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(context.Background(), &corev1.ServiceList{}, client.InNamespace("default"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	l := &statusLog{seen: map[string]map[int]time.Time{}}
	go func() {
		for ev := range w.ResultChan() {
			at := time.Now()
			svc, ok := ev.Object.(*corev1.Service)
			if !ok {
				continue
			}
			n := len(svc.Status.LoadBalancer.Ingress)
			l.mu.Lock()
			if l.seen[svc.Name] == nil {
				l.seen[svc.Name] = map[int]time.Time{}
			}
			if _, had := l.seen[svc.Name][n]; !had {
				l.seen[svc.Name][n] = at
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *statusLog) at(name string, n int) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.seen[name][n]
	return at, ok
}

// latencies summarises a sample as p50, p95 and max.
func latencies(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(f float64) time.Duration {
		return s[min(len(s)-1, max(0, int(f*float64(len(s))+0.5)-1))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %s, p95 %s, max %s (n=%d)", q(.5), q(.95), s[len(s)-1].Round(100*time.Microsecond), len(s))
}

// frrLogIndex groups bgpd's log events by kind and prefix.
func (r *labRouters) frrLogIndex(t *testing.T) map[string]map[netip.Prefix][]netlab.FRRLogEvent {
	t.Helper()
	evs, err := r.frr.LogEvents()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[netip.Prefix][]netlab.FRRLogEvent{}
	for _, e := range evs {
		if out[e.Kind] == nil {
			out[e.Kind] = map[netip.Prefix][]netlab.FRRLogEvent{}
		}
		out[e.Kind][e.Prefix] = append(out[e.Kind][e.Prefix], e)
	}
	return out
}

// nthAfter returns the time of the n-th event (1-based) at or after since.
func nthAfter(evs []netlab.FRRLogEvent, since time.Time, n int) (time.Time, bool) {
	for _, e := range evs {
		if !e.Time.Before(since) {
			if n--; n == 0 {
				return e.Time, true
			}
		}
	}
	return time.Time{}, false
}

// TestBGPMeasureEndToEnd measures, on the whole system, how long a Service
// takes to reach the routers and to leave them. With HERALD_MEASURE=1 only
// (make bench-bgp-e2e); the figures go to docs/performance.md.
func TestBGPMeasureEndToEnd(t *testing.T) {
	if os.Getenv("HERALD_MEASURE") == "" {
		t.Skip("measurements run with HERALD_MEASURE=1 (make bench-bgp-e2e)")
	}
	dumpOnFailure(t)
	r := routers(t)
	fib1, fib2 := watchFIB(t, node("router")), watchFIB(t, node("router2"))
	status := watchStatus(t)
	create(t, &v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: "bgp-measure", Namespace: heraldNS}, Spec: v1beta1.BFDProfileSpec{
		ReceiveInterval: new(uint32(300)), TransmitInterval: new(uint32(300)), DetectMultiplier: new(uint32(3))}},
		frrPeer(func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "bgp-measure" }), birdPeer())
	nodes4 := addrs4(nodeNames...)
	r.waitFRRUp(t, 30*time.Second, true, nodes4...)
	r.waitBIRDUp(t, 30*time.Second, nodeNames...)
	var report strings.Builder
	fmt.Fprintf(&report, "\nBGP end to end (%s)\n", time.Now().Format(time.DateOnly))
	defer func() { t.Log(report.String()) }()

	// One dual-stack Service at a time, endpoints on all three nodes.
	const n = 24
	create(t, pool("bgp-measure", "198.51.100.64/27", "2001:db8:200::40/122"), bgpAdv("bgp-measure", []string{"bgp-measure"}, []string{"frr", "bird"}))
	type measured struct {
		name    string
		created time.Time
		pfx     []netip.Prefix
	}
	var svcs []measured
	for i := range n {
		name := fmt.Sprintf("bgp-measure-%02d", i)
		create(t, endpoints(name, discoveryv1.AddressTypeIPv4, nodeNames...), endpoints(name, discoveryv1.AddressTypeIPv6, nodeNames...))
		created := time.Now()
		create(t, lbService(name, corev1.IPFamilyPolicyRequireDualStack))
		pfx := hostPrefixes(ingress(t, name, 2))
		fib1.wait(t, 10*time.Second, name+" at router", hopsAre(3), pfx...)
		fib2.wait(t, 10*time.Second, name+" at router2", hopsAre(3), pfx...)
		svcs = append(svcs, measured{name, created, pfx})
	}
	idx := r.frrLogIndex(t)
	var toStatus, statusToRIB, toRIB, toRIB3, toFIB, toFIB3, toBIRD, toBIRD3 []time.Duration
	for _, s := range svcs {
		st, ok := status.at(s.name, 2)
		if !ok {
			t.Fatalf("no status of %s seen", s.name)
		}
		toStatus = append(toStatus, st.Sub(s.created))
		for _, p := range s.pfx {
			first, ok1 := nthAfter(idx["announce"][p], s.created, 1)
			third, ok3 := nthAfter(idx["announce"][p], s.created, 3)
			if !ok1 || !ok3 {
				t.Fatalf("bgpd logged %d announcements of %s", len(idx["announce"][p]), p)
			}
			toRIB, toRIB3 = append(toRIB, first.Sub(s.created)), append(toRIB3, third.Sub(s.created))
			statusToRIB = append(statusToRIB, first.Sub(st))
			f1, _ := fib1.when(p, s.created, hopsAtLeast(1))
			f3, _ := fib1.when(p, s.created, hopsAre(3))
			b1, _ := fib2.when(p, s.created, hopsAtLeast(1))
			b3, _ := fib2.when(p, s.created, hopsAre(3))
			toFIB, toFIB3 = append(toFIB, f1.Sub(s.created)), append(toFIB3, f3.Sub(s.created))
			toBIRD, toBIRD3 = append(toBIRD, b1.Sub(s.created)), append(toBIRD3, b3.Sub(s.created))
		}
	}
	fmt.Fprintf(&report, "%d dual-stack Services created one at a time (endpoints on 3 nodes; %d prefixes):\n", n, 2*n)
	fmt.Fprintf(&report, "  create -> both addresses in status (watch):         %s\n", latencies(toStatus))
	fmt.Fprintf(&report, "  status written -> first path in FRR's RIB (log):    %s\n", latencies(statusToRIB))
	fmt.Fprintf(&report, "  create -> first path in FRR's RIB:                  %s\n", latencies(toRIB))
	fmt.Fprintf(&report, "  create -> all 3 paths in FRR's RIB:                 %s\n", latencies(toRIB3))
	fmt.Fprintf(&report, "  create -> route in FRR's kernel FIB:                %s\n", latencies(toFIB))
	fmt.Fprintf(&report, "  create -> 3 next hops in FRR's kernel FIB:          %s\n", latencies(toFIB3))
	fmt.Fprintf(&report, "  create -> route in BIRD's kernel FIB:               %s\n", latencies(toBIRD))
	fmt.Fprintf(&report, "  create -> 3 next hops in BIRD's kernel FIB:         %s\n", latencies(toBIRD3))

	// SIGTERM of one speaker while the 24 Services are up: how soon the
	// routers drop its paths.
	var all []netip.Prefix
	for _, s := range svcs {
		all = append(all, s.pfx...)
	}
	const victim = "node3"
	va := node(victim).Addr4()
	t.Cleanup(func() { ensureSpeaker(t, victim) })
	var termRIB, termRIBLast, termFIB, termBIRD, termExit []time.Duration
	for range 5 {
		fib1.wait(t, 30*time.Second, "all paths back at router", hopsAre(3), all...)
		fib2.wait(t, 30*time.Second, "all paths back at router2", hopsAre(3), all...)
		sp := world.speaker(victim)
		t0 := time.Now()
		if err := sp.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-sp.Done()
		termExit = append(termExit, time.Since(t0))
		fib1.wait(t, 10*time.Second, "victim's paths gone at router", hopsAre(2), all...)
		fib2.wait(t, 10*time.Second, "victim's paths gone at router2", hopsAre(2), all...)
		w := r.frrEvents(t, "withdraw", netip.Prefix{}, t0, va)
		if len(w) != len(all) {
			t.Fatalf("FRR logged %d withdrawals from %s after SIGTERM, want %d", len(w), victim, len(all))
		}
		termRIB, termRIBLast = append(termRIB, w[0].Time.Sub(t0)), append(termRIBLast, w[len(w)-1].Time.Sub(t0))
		var lastFIB, lastBIRD time.Time
		for _, p := range all {
			f, _ := fib1.when(p, t0, hopsAre(2))
			b, _ := fib2.when(p, t0, hopsAre(2))
			if f.After(lastFIB) {
				lastFIB = f
			}
			if b.After(lastBIRD) {
				lastBIRD = b
			}
		}
		termFIB, termBIRD = append(termFIB, lastFIB.Sub(t0)), append(termBIRD, lastBIRD.Sub(t0))
		ensureSpeaker(t, victim)
	}
	fmt.Fprintf(&report, "SIGTERM of one speaker announcing %d prefixes (5 runs):\n", len(all))
	fmt.Fprintf(&report, "  SIGTERM -> first withdrawal at FRR (log):           %s\n", latencies(termRIB))
	fmt.Fprintf(&report, "  SIGTERM -> last withdrawal at FRR (log):            %s\n", latencies(termRIBLast))
	fmt.Fprintf(&report, "  SIGTERM -> all its next hops gone, FRR's FIB:       %s\n", latencies(termFIB))
	fmt.Fprintf(&report, "  SIGTERM -> all its next hops gone, BIRD's FIB:      %s\n", latencies(termBIRD))
	fmt.Fprintf(&report, "  SIGTERM -> process exited:                          %s\n", latencies(termExit))

	// Deleting the Services one at a time.
	fib1.wait(t, 30*time.Second, "all paths back at router", hopsAre(3), all...)
	fib2.wait(t, 30*time.Second, "all paths back at router2", hopsAre(3), all...)
	var delRIB, delFIB, delBIRD []time.Duration
	var deleted []time.Time
	for _, s := range svcs {
		t0 := time.Now()
		deleteService(t, s.name)
		fib1.wait(t, 10*time.Second, s.name+" gone at router", hopsAre(0), s.pfx...)
		fib2.wait(t, 10*time.Second, s.name+" gone at router2", hopsAre(0), s.pfx...)
		deleted = append(deleted, t0)
		for _, p := range s.pfx {
			f, _ := fib1.when(p, t0, hopsAre(0))
			b, _ := fib2.when(p, t0, hopsAre(0))
			delFIB, delBIRD = append(delFIB, f.Sub(t0)), append(delBIRD, b.Sub(t0))
		}
	}
	idx = r.frrLogIndex(t)
	for i, s := range svcs {
		for _, p := range s.pfx {
			if last, ok := nthAfter(idx["withdraw"][p], deleted[i], 3); ok {
				delRIB = append(delRIB, last.Sub(deleted[i]))
			}
		}
	}
	fmt.Fprintf(&report, "Deleting the %d Services one at a time:\n", n)
	fmt.Fprintf(&report, "  delete -> withdrawn by all 3 nodes at FRR (log):    %s\n", latencies(delRIB))
	fmt.Fprintf(&report, "  delete -> route gone from FRR's kernel FIB:         %s\n", latencies(delFIB))
	fmt.Fprintf(&report, "  delete -> route gone from BIRD's kernel FIB:        %s\n", latencies(delBIRD))

	// 250 IPv4 Services at once, each announced by all three nodes.
	const bulk = 250
	create(t, pool("bgp-bulk", "203.0.113.0/24"), bgpAdv("bgp-bulk", []string{"bgp-bulk"}, []string{"frr", "bird"}))
	names := make([]string, bulk)
	for i := range names {
		names[i] = fmt.Sprintf("bgp-bulk-%03d", i)
	}
	objs := func(name string) []client.Object {
		return []client.Object{endpoints(name, discoveryv1.AddressTypeIPv4, nodeNames...), lbService(name, corev1.IPFamilyPolicySingleStack)}
	}
	t.Cleanup(func() {
		// By exact name, in parallel (500 objects); NotFound is fine.
		parallel(names, func(name string) error {
			for _, o := range objs(name) {
				if err := world.env.Client.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
					return err
				}
			}
			return nil
		})
	})
	t0 := time.Now()
	if err := parallel(names, func(name string) error {
		for _, o := range objs(name) {
			if err := world.env.Client.Create(context.Background(), o); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	var bulkPfx []netip.Prefix
	eventually(t, 120*time.Second, func() error {
		bulkPfx = bulkPfx[:0]
		for _, name := range names {
			var s corev1.Service
			if err := world.env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, &s); err != nil {
				return err
			}
			if len(s.Status.LoadBalancer.Ingress) != 1 {
				return fmt.Errorf("%s has no address yet", name)
			}
			bulkPfx = append(bulkPfx, hostPrefixes([]string{s.Status.LoadBalancer.Ingress[0].IP})...)
		}
		return nil
	}, "250 addresses")
	fib1.wait(t, 120*time.Second, "250 routes with 3 next hops at router", hopsAre(3), bulkPfx...)
	fib2.wait(t, 120*time.Second, "250 routes with 3 next hops at router2", hopsAre(3), bulkPfx...)
	lastOf := func(f func(name string, p netip.Prefix) time.Time) time.Duration {
		var last time.Time
		for i, p := range bulkPfx {
			if at := f(names[i], p); at.After(last) {
				last = at
			}
		}
		return last.Sub(t0)
	}
	idx = r.frrLogIndex(t)
	fmt.Fprintf(&report, "%d IPv4 Services created at once (8 client workers; creating the %d objects took %s):\n", bulk, 2*bulk, created.Sub(t0).Round(time.Millisecond))
	fmt.Fprintf(&report, "  first create -> all addresses in status:            %s\n", lastOf(func(name string, _ netip.Prefix) time.Time {
		at, _ := status.at(name, 1)
		return at
	}).Round(time.Millisecond))
	fmt.Fprintf(&report, "  first create -> all 3 paths of all in FRR's RIB:    %s\n", lastOf(func(_ string, p netip.Prefix) time.Time {
		at, _ := nthAfter(idx["announce"][p], t0, 3)
		return at
	}).Round(time.Millisecond))
	lastFRR := lastOf(func(_ string, p netip.Prefix) time.Time {
		at, _ := fib1.when(p, t0, hopsAre(3))
		return at
	})
	lastBIRD := lastOf(func(_ string, p netip.Prefix) time.Time {
		at, _ := fib2.when(p, t0, hopsAre(3))
		return at
	})
	fmt.Fprintf(&report, "  first create -> all with 3 next hops, FRR's FIB:    %s\n", lastFRR.Round(time.Millisecond))
	fmt.Fprintf(&report, "  first create -> all with 3 next hops, BIRD's FIB:   %s\n", lastBIRD.Round(time.Millisecond))
	fmt.Fprintf(&report, "  last create -> all with 3 next hops, FRR's / BIRD's FIB: %s / %s\n",
		(lastFRR - created.Sub(t0)).Round(time.Millisecond), (lastBIRD - created.Sub(t0)).Round(time.Millisecond))
	t1 := time.Now()
	if err := parallel(names, func(name string) error {
		return world.env.Client.Delete(context.Background(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})
	}); err != nil {
		t.Fatal(err)
	}
	fib1.wait(t, 120*time.Second, "250 routes gone at router", hopsAre(0), bulkPfx...)
	fib2.wait(t, 120*time.Second, "250 routes gone at router2", hopsAre(0), bulkPfx...)
	goneAt := func(w *fibLog) time.Duration {
		var last time.Time
		for _, p := range bulkPfx {
			if at, _ := w.when(p, t1, hopsAre(0)); at.After(last) {
				last = at
			}
		}
		return last.Sub(t1)
	}
	fmt.Fprintf(&report, "  delete all -> all gone from FRR's / BIRD's FIB:     %s / %s\n", goneAt(fib1).Round(time.Millisecond), goneAt(fib2).Round(time.Millisecond))

	// BFD: a silent cut of a node's link until the router drops its paths.
	create(t, endpoints("bgp-probe", discoveryv1.AddressTypeIPv4, nodeNames...), lbService("bgp-probe", corev1.IPFamilyPolicySingleStack))
	pp := hostPrefixes(ingress(t, "bgp-probe", 1))[0]
	h := node(victim)
	t.Cleanup(func() { _ = h.SetLink(true) })
	var cutFIB, cutRIB []time.Duration
	for range 5 {
		r.waitFRRUp(t, 30*time.Second, true, va)
		fib1.wait(t, 30*time.Second, "probe with 3 next hops at router", hopsAre(3), pp)
		cut := time.Now()
		if err := h.SetLink(false); err != nil {
			t.Fatal(err)
		}
		fib1.wait(t, bgpHold, "probe without the cut node at router", hopsAre(2), pp)
		at, _ := fib1.when(pp, cut, hopsAre(2))
		cutFIB = append(cutFIB, at.Sub(cut))
		for _, e := range r.frrEvents(t, "state", netip.Prefix{}, cut, va) {
			if e.State != "Established" {
				cutRIB = append(cutRIB, e.Time.Sub(cut))
				break
			}
		}
		if err := h.SetLink(true); err != nil {
			t.Fatal(err)
		}
	}
	r.waitFRRUp(t, 30*time.Second, true, va)
	fmt.Fprintf(&report, "BFD 300 ms x 3 (hold 9 s), node's link cut silently (5 runs):\n")
	fmt.Fprintf(&report, "  cut -> FRR's session leaves Established (log):      %s\n", latencies(cutRIB))
	fmt.Fprintf(&report, "  cut -> its next hop gone from FRR's kernel FIB:     %s\n", latencies(cutFIB))
}

// parallel runs f for every name on 8 workers and returns the first error.
func parallel(names []string, f func(string) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	work := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				if err := f(n); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", n, err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}
