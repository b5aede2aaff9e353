package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/test/netlab"
)

// Failover in requests (make bench-failover and make bench-traffic-bgp, HERALD_MEASURE=1): the
// client's load generator opens 200 new connections per second to each of
// the Service's addresses while a node fails, and every request is counted.
// The failed node holds no backend of the Service, so what is measured is the
// load balancer's failover, not lost backends.

const loadRate = 200

func measureRuns() int {
	if n, err := strconv.Atoi(os.Getenv("HERALD_RUNS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// loadBoth runs the load generator against every address for d while act
// runs after lead, and returns one result per address.
func loadBoth(t *testing.T, addrs []netip.Addr, d, lead time.Duration, act func()) []netlab.LoadResult {
	t.Helper()
	res := make([]netlab.LoadResult, len(addrs))
	errs := make(chan error, len(addrs))
	for i, a := range addrs {
		go func() {
			var err error
			res[i], err = world.lab.Host("client").Load(netlab.LoadConfig{Target: netip.AddrPortFrom(a, 80), Rate: loadRate, Duration: d})
			errs <- err
		}()
	}
	time.Sleep(lead)
	act()
	for range addrs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return res
}

func report(t *testing.T, scenario string, run int, res []netlab.LoadResult) {
	for _, r := range res {
		fam := "IPv4"
		if r.Target.Addr().Is6() {
			fam = "IPv6"
		}
		t.Logf("traffic %s run %d %s: %d sent, %d failed, %d late (>200ms), longest gap %s, max latency %s %v",
			scenario, run, fam, len(r.Requests), r.Failed, r.Late, r.LongestGap.Round(time.Millisecond), r.Max.Round(time.Millisecond), r.Errors)
		if os.Getenv("HERALD_TIMELINE") != "" {
			t.Logf("  timeline (per 250 ms: ok/late/failed): %s", timeline(r))
		}
	}
}

func TestTrafficMeasureLayer2Failover(t *testing.T) {
	if os.Getenv("HERALD_MEASURE") == "" {
		t.Skip("measurement: HERALD_MEASURE=1 (make bench-failover, make bench-traffic-bgp)")
	}
	dumpOnFailure(t)
	tl := traffic(t)
	layer2Pool(t, "tr-fo", "192.0.2.212/30", "2001:db8:100::218/126")
	create(t, lbService("tr-fo", corev1.IPFamilyPolicyRequireDualStack))
	ips := ingress(t, "tr-fo", 2)
	addrs := []netip.Addr{netip.MustParseAddr(ips[0]), netip.MustParseAddr(ips[1])}
	slices := tl.slices(t, "tr-fo", nodeNames...)
	for _, f := range failures { // graceful, kill, link-cut (failover_test.go)
		for run := 1; run <= measureRuns(); run++ {
			owner := waitOwner(t, arpOwner, ips[0], anyNode)
			waitOwner(t, ndpOwner, ips[1], func(o string) bool { return o == owner })
			// Backends only on the nodes that stay up.
			tl.setSlices(t, slices, others(owner)...)
			for _, a := range addrs {
				curlEventually(t, a)
			}
			res := loadBoth(t, addrs, 6*time.Second, 1500*time.Millisecond, func() { f.inflict(t, owner) })
			report(t, f.name, run, res)
			f.heal(t, owner)
			ensureSpeaker(t, owner)
			time.Sleep(2 * time.Second) // hand-back settles
		}
	}
	// Rolling restart of every speaker, one by one, under load; backends on
	// every node.
	tl.setSlices(t, slices, nodeNames...)
	for run := 1; run <= measureRuns(); run++ {
		res := loadBoth(t, addrs, 14*time.Second, time.Second, func() {
			for _, n := range nodeNames {
				stopSpeaker(t, n, syscall.SIGTERM)
				restartSpeaker(t, n)
				time.Sleep(3 * time.Second)
			}
		})
		report(t, "rolling-restart", run, res)
		time.Sleep(2 * time.Second)
	}
}

func TestTrafficMeasureBGPFailover(t *testing.T) {
	if os.Getenv("HERALD_MEASURE") == "" {
		t.Skip("measurement: HERALD_MEASURE=1 (make bench-failover, make bench-traffic-bgp)")
	}
	dumpOnFailure(t)
	tl := traffic(t)
	r := routers(t)
	if err := node("router").Run("sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1"); err != nil {
		t.Fatal(err)
	}
	const victim = "node3"
	create(t, &v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: "tr-bfd", Namespace: heraldNS}, Spec: v1beta1.BFDProfileSpec{
		ReceiveInterval: new(uint32(300)), TransmitInterval: new(uint32(300)), DetectMultiplier: new(uint32(3))}})
	bgpPool(t, "tr-bgpfo", []string{"198.51.100.56/30", "2001:db8:200::c4/126"}, "frr")
	create(t, lbService("tr-bgpfo", corev1.IPFamilyPolicyRequireDualStack))
	tl.slices(t, "tr-bgpfo", others(victim)...)
	prefixes := hostPrefixes(ingress(t, "tr-bgpfo", 2))
	addrs := []netip.Addr{prefixes[0].Addr(), prefixes[1].Addr()}
	for _, bfd := range []bool{false, true} {
		t.Run(fmt.Sprintf("bfd=%v", bfd), func(t *testing.T) {
			create(t, frrPeer(func(s *v1beta1.BGPPeerSpec) {
				if bfd {
					s.BFDProfile = "tr-bfd"
				}
			}))
			settle := func() {
				ensureSpeaker(t, victim)
				r.waitFRRUp(t, 30*time.Second, bfd, addrs4(nodeNames...)...)
				for _, p := range prefixes {
					want := addrs4(nodeNames...)
					if p.Addr().Is6() {
						want = addrs6(nodeNames...)
					}
					waitKernel(t, node("router"), p, 20*time.Second, want...)
				}
				for _, a := range addrs {
					curlEventually(t, a)
				}
			}
			for run := 1; run <= measureRuns(); run++ {
				settle()
				res := loadBoth(t, addrs, 6*time.Second, 1500*time.Millisecond, func() { stopSpeaker(t, victim, syscall.SIGKILL) })
				report(t, fmt.Sprintf("bgp-kill bfd=%v", bfd), run, res)
			}
			for run := 1; run <= measureRuns(); run++ {
				settle()
				h := node(victim)
				res := loadBoth(t, addrs, 12*time.Second, 1500*time.Millisecond, func() {
					if err := h.SetLink(false); err != nil {
						t.Fatal(err)
					}
				})
				if err := h.SetLink(true); err != nil {
					t.Fatal(err)
				}
				report(t, fmt.Sprintf("bgp-link-cut bfd=%v", bfd), run, res)
			}
			settle()
		})
	}
}

func others(n string) []string {
	var out []string
	for _, m := range nodeNames {
		if m != n {
			out = append(out, m)
		}
	}
	return out
}

func timeline(r netlab.LoadResult) string {
	if len(r.Requests) == 0 {
		return ""
	}
	start := r.Requests[0].Sent
	type b struct{ ok, late, failed int }
	var bs []b
	for _, q := range r.Requests {
		i := int(q.Sent.Sub(start) / (250 * time.Millisecond))
		for len(bs) <= i {
			bs = append(bs, b{})
		}
		switch {
		case q.Err != nil:
			bs[i].failed++
		case q.Latency > 200*time.Millisecond:
			bs[i].late++
		default:
			bs[i].ok++
		}
	}
	out := ""
	for _, x := range bs {
		out += fmt.Sprintf(" %d/%d/%d", x.ok, x.late, x.failed)
	}
	return out
}
