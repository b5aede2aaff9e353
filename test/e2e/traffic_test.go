package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/test/controlplane"
	"github.com/herald-lb/herald/test/netlab"
)

// Real requests through the load-balancer addresses: a kube-proxy (nftables
// mode) in every node namespace, backend pods with an HTTP server on every
// node, and clients (curl, the lab's load generator) in the client
// namespace. The pods, kube-proxies and pod routes are set up on the first
// traffic test and live until the lab is torn down.

const backendPort = 8080

type trafficLab struct {
	pods    map[string][]*netlab.Pod // by node
	proxies map[string]*netlab.KubeProxy
}

var theTraffic struct {
	once sync.Once
	t    *trafficLab
	err  error
}

func traffic(t *testing.T) *trafficLab {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		t.Skip("kube-proxy's nftables mode needs nft (Debian nftables, hack/install-test-deps.sh)")
	}
	assets, err := controlplane.Assets()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(assets, "kube-proxy")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no kube-proxy in %s: run hack/k8s-bins/build-binaries.sh", assets)
	}
	theTraffic.once.Do(func() { theTraffic.t, theTraffic.err = startTraffic(bin) })
	if theTraffic.err != nil {
		t.Fatal(theTraffic.err)
	}
	return theTraffic.t
}

func startTraffic(bin string) (*trafficLab, error) {
	lab := world.lab
	tl := &trafficLab{pods: map[string][]*netlab.Pod{}, proxies: map[string]*netlab.KubeProxy{}}
	if err := lab.EnablePods(nodeNames...); err != nil {
		return nil, err
	}
	for _, n := range nodeNames {
		for i := 1; i <= 2; i++ {
			p, err := lab.AddPod(n, fmt.Sprintf("web-%s-%d", n, i))
			if err != nil {
				return nil, err
			}
			if err := p.Serve(backendPort); err != nil {
				return nil, err
			}
			tl.pods[n] = append(tl.pods[n], p)
		}
	}
	for _, n := range nodeNames {
		kp, err := lab.StartKubeProxy(bin, world.env.Kubeconfig, n, netlab.PodCIDR4, netlab.PodCIDR6)
		if err != nil {
			return nil, err
		}
		tl.proxies[n] = kp
	}
	for _, kp := range tl.proxies {
		if err := kp.WaitHealthy(30 * time.Second); err != nil {
			return nil, err
		}
	}
	return tl, nil
}

// slices writes the Service's EndpointSlices (one per family) for the pods
// on the named nodes, ready and serving, as a kubelet's endpoint controller
// would; they are deleted when the test ends.
func (tl *trafficLab) slices(t *testing.T, svc string, nodes ...string) []*discoveryv1.EndpointSlice {
	t.Helper()
	var out []*discoveryv1.EndpointSlice
	for _, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s", svc, strings.ToLower(string(fam))), Namespace: "default",
				Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "netlab.herald.dev"}},
			AddressType: fam,
			Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(backendPort)), Protocol: new(corev1.ProtocolTCP)}},
		}
		sl.Endpoints = tl.endpointsOn(fam, nodes...)
		create(t, sl)
		out = append(out, sl)
	}
	return out
}

func (tl *trafficLab) endpointsOn(fam discoveryv1.AddressType, nodes ...string) []discoveryv1.Endpoint {
	var eps []discoveryv1.Endpoint
	for _, n := range nodes {
		for _, p := range tl.pods[n] {
			a := p.V4
			if fam == discoveryv1.AddressTypeIPv6 {
				a = p.V6
			}
			eps = append(eps, discoveryv1.Endpoint{
				Addresses:  []string{a.String()},
				NodeName:   new(n),
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: p.Spec.Name},
				Conditions: discoveryv1.EndpointConditions{Ready: new(true), Serving: new(true), Terminating: new(false)},
			})
		}
	}
	return eps
}

// setSlices rewrites the slices to hold the pods of the named nodes.
func (tl *trafficLab) setSlices(t *testing.T, slices []*discoveryv1.EndpointSlice, nodes ...string) {
	t.Helper()
	for _, sl := range slices {
		updateObj(t, sl, func(s *discoveryv1.EndpointSlice) { s.Endpoints = tl.endpointsOn(s.AddressType, nodes...) })
	}
}

// curlEventually curls addr from the client until a backend answers (the
// announcement and kube-proxy's rules settle independently) and returns the
// answer.
func curlEventually(t *testing.T, addr netip.Addr) netlab.Answer {
	t.Helper()
	var a netlab.Answer
	eventually(t, 30*time.Second, func() error {
		var err error
		a, err = world.lab.Host("client").Curl(addr, 80, 2*time.Second)
		return err
	}, "curl %s", addr)
	return a
}

func TestCurlReachesABackendThroughLayer2OverBothFamilies(t *testing.T) {
	dumpOnFailure(t)
	tl := traffic(t)
	layer2Pool(t, "tr-l2", "192.0.2.248/30", "2001:db8:100::248/126")
	create(t, lbService("tr-l2", corev1.IPFamilyPolicyRequireDualStack))
	tl.slices(t, "tr-l2", nodeNames...)
	for _, ip := range ingress(t, "tr-l2", 2) {
		addr := netip.MustParseAddr(ip)
		a := curlEventually(t, addr)
		owner := waitOwner(t, map[bool]func(string) (string, error){true: arpOwner, false: ndpOwner}[addr.Is4()], ip, anyNode)
		t.Logf("curl http://%s/ (announced by %s): %s on %s answered", netip.AddrPortFrom(addr, 80), owner, a.Pod, a.Node)
	}
}

func TestLocalPolicyKeepsTheClientAddressAndOnlyReachesLocalBackends(t *testing.T) {
	dumpOnFailure(t)
	tl := traffic(t)
	layer2Pool(t, "tr-local", "192.0.2.236/30", "2001:db8:100::24c/126")
	local := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
	create(t, lbService("tr-local", corev1.IPFamilyPolicyRequireDualStack, local))
	tl.slices(t, "tr-local", "node2", "node3")
	client := world.lab.Host("client")
	for _, ip := range ingress(t, "tr-local", 2) {
		addr := netip.MustParseAddr(ip)
		lookup := arpOwner
		want := client.Addr4()
		if addr.Is6() {
			lookup, want = ndpOwner, client.Addr6()
		}
		owner := waitOwner(t, lookup, ip, func(o string) bool { return o == "node2" || o == "node3" })
		curlEventually(t, addr)
		seen := map[string]int{}
		for range 12 {
			a, err := client.Curl(addr, 80, 2*time.Second)
			if err != nil {
				t.Fatalf("curl %s: %v", addr, err)
			}
			src, err := a.ClientAddr()
			if err != nil {
				t.Fatal(err)
			}
			if src != want {
				t.Errorf("%s: backend %s saw client %s, want the client's own %s", addr, a.Pod, src, want)
			}
			if a.Node != owner {
				t.Errorf("%s: announced by %s but answered by %s on %s", addr, owner, a.Pod, a.Node)
			}
			seen[a.Pod]++
		}
		t.Logf("%s announced by %s, answers %v", addr, owner, seen)
	}
}

func TestCurlReachesABackendThroughBGPECMP(t *testing.T) {
	dumpOnFailure(t)
	tl := traffic(t)
	routers(t) // FRR, with the client routing the BGP ranges through it
	// Spread flows over the ECMP next hops by ports too, as routers do.
	if err := world.lab.Host("router").Run("sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1"); err != nil {
		t.Fatal(err)
	}
	create(t, frrPeer())
	bgpPool(t, "tr-bgp", []string{"198.51.100.52/30", "2001:db8:200::c0/126"}, "frr")
	create(t, lbService("tr-bgp", corev1.IPFamilyPolicyRequireDualStack))
	tl.slices(t, "tr-bgp", nodeNames...)
	for _, p := range hostPrefixes(ingress(t, "tr-bgp", 2)) {
		want := addrs4(nodeNames...)
		if p.Addr().Is6() {
			want = addrs6(nodeNames...)
		}
		waitKernel(t, node("router"), p, 20*time.Second, want...)
		a := curlEventually(t, p.Addr())
		res, err := world.lab.Host("client").Load(netlab.LoadConfig{Target: netip.AddrPortFrom(p.Addr(), 80), Rate: 50, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Failed > 0 {
			t.Errorf("%s through the router: %s %v", p.Addr(), res, res.Errors)
		}
		t.Logf("curl http://%s/ via FRR (ECMP over %d nodes): %s on %s; %s, backends %v", netip.AddrPortFrom(p.Addr(), 80), len(want), a.Pod, a.Node, res, res.Backends)
	}
}

// The seed scenario in requests: a Service serves IPv4, IPv6 is added to its
// pool; IPv6 starts answering while not one IPv4 request fails.
func TestBackfilledIPv6StartsServingWhileIPv4RequestsNeverFail(t *testing.T) {
	dumpOnFailure(t)
	tl := traffic(t)
	layer2Pool(t, "tr-seed", "192.0.2.244/30")
	create(t, lbService("tr-seed", corev1.IPFamilyPolicyPreferDualStack))
	tl.slices(t, "tr-seed", nodeNames...)
	v4 := netip.MustParseAddr(ingress(t, "tr-seed", 1)[0])
	curlEventually(t, v4)

	stop := make(chan struct{})
	done := make(chan netlab.LoadResult, 1)
	go func() {
		res, err := world.lab.Host("client").Load(netlab.LoadConfig{Target: netip.AddrPortFrom(v4, 80), Rate: 100, Duration: 60 * time.Second, Stop: stop})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(300 * time.Millisecond)
	eventually(t, 30*time.Second, func() error {
		var p = pool("tr-seed")
		if err := world.env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
			return err
		}
		p.Spec.Addresses = []string{"192.0.2.244/30", "2001:db8:100::244/126"}
		return world.env.Client.Update(context.Background(), p)
	}, "add IPv6 to the pool")
	ips := ingress(t, "tr-seed", 2)
	if ips[0] != v4.String() {
		t.Errorf("backfill changed the IPv4: %s -> %s", v4, ips[0])
	}
	a := curlEventually(t, netip.MustParseAddr(ips[1]))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	res := <-done
	if res.Failed > 0 || res.OK == 0 {
		t.Errorf("IPv4 during the backfill: %s %v", res, res.Errors)
	}
	t.Logf("IPv6 %s answered by %s; IPv4 meanwhile: %s", ips[1], a.Pod, res)
}
