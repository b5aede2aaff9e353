package bgp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/herald-lb/herald/test/netlab"
)

// floodPrefixes is a full-table stand-in in the documentation ranges:
// every /32 of 203.0.113.0/24 and n /128s of 2001:db8:f000::/48.
func floodPrefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, 0, n+256)
	for i := range 256 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32))
	}
	base := netip.MustParseAddr("2001:db8:f000::").As16()
	for i := range n {
		a := base
		a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(a), 128))
	}
	return out
}

func procKiB(t testing.TB, pid int, field string) int {
	t.Helper()
	n, err := netlab.ProcStatusKiB(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLabRouterFullTableLeavesTheSpeakerBounded: FRR announces over
// 100 000 prefixes to every node. GoBGP would keep them all (≈ 1.1 KiB a
// path) before the import policy rejects them, so the speaker's per-family
// receive limit closes that session and holds it down, retrying later.
// The speakers keep running, keep announcing to the router that behaves
// (BIRD), grow by at most 50 MiB, and install nothing in the node's kernel.
func TestLabRouterFullTableLeavesTheSpeakerBounded(t *testing.T) {
	labAvailable(t)
	lab, err := netlab.New(netlab.Standard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	flood := floodPrefixes(100_000)
	nodes := []*netlab.Host{lab.Host("node1"), lab.Host("node2")}
	fc := netlab.FRRConfig{ASN: routerASN, RouterID: frrV4, Originate: flood}
	bc := netlab.BIRDConfig{ASN: routerASN, RouterID: birdV4}
	for _, h := range nodes {
		fc.Neighbors = append(fc.Neighbors, netlab.FRRNeighbor{Address: h.Addr4(), ASN: nodeASN})
		bc.Neighbors = append(bc.Neighbors, netlab.BIRDNeighbor{Name: h.Spec.Name, Address: h.Addr4(), ASN: nodeASN})
	}
	frr, err := lab.Host("router").StartFRR(fc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(frr.Close)
	bird, err := lab.Host("router2").StartBIRD(bc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bird.Close)

	own := map[string]Route{
		"node1": {Prefix: netip.MustParsePrefix("198.51.100.81/32")},
		"node2": {Prefix: netip.MustParsePrefix("2001:db8:200::81/128")},
	}
	// A short hold-down, so the test also sees the retry trip again.
	t.Setenv(holdDownEnv, "2s")
	sps := map[string]*speakerProc{}
	base := map[string]int{}
	for _, h := range nodes {
		sp := startSpeaker(t, h)
		sp.setRoutes(own[h.Spec.Name])
		sps[h.Spec.Name] = sp
		base[h.Spec.Name] = procKiB(t, sp.proc.Cmd.Process.Pid, "VmRSS")
	}
	for _, h := range nodes {
		sps[h.Spec.Name].setPeers(frrPeer(nodeASN), birdPeer())
	}
	router2 := lab.Host("router2")
	for _, h := range nodes {
		name := h.Spec.Name
		sp := sps[name]
		// The limit trips, and trips again after the first hold-down.
		eventually(t, 60*time.Second, func() error {
			if s := sp.sessions()["frr"]; s.LimitExceeded < 2 {
				return fmt.Errorf("%s: session with the flooding FRR: %+v", name, s)
			}
			return nil
		})
		s := sp.sessions()
		if f := s["frr"]; f.Received > 2*DefaultMaxReceived {
			t.Errorf("%s: holds %d of FRR's paths, want at most %d", name, f.Received, 2*DefaultMaxReceived)
		}
		if b := s["bird"]; !b.Established() {
			t.Errorf("%s: session with BIRD after FRR's flood: %+v", name, b)
		}
		fibHas(t, router2, own[name].Prefix, 10*time.Second, nexthopFor(h, own[name].Prefix))
		pid := sp.proc.Cmd.Process.Pid
		rss, hwm := procKiB(t, pid, "VmRSS"), procKiB(t, pid, "VmHWM")
		t.Logf("%s: FRR's session %+v; RSS %d -> %d KiB (peak %d KiB, growth %.1f MiB)", name, s["frr"], base[name], rss, hwm, float64(hwm-base[name])/1024)
		if growth := hwm - base[name]; growth > 50*1024 {
			t.Errorf("%s: memory grew by %.1f MiB (peak) with a %d-prefix table from the router, want <= 50 MiB", name, float64(growth)/1024, len(flood))
		}
		for _, v6 := range []bool{false, true} {
			rs, err := h.KernelRoutes(v6)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.Protocol == "bgp" || flood[len(flood)-1].Contains(r.Dst.Addr()) || r.Dst.Addr().Is4() && flood[0].Addr().As4()[2] == r.Dst.Addr().As4()[2] && r.Dst.Bits() == 32 {
					t.Errorf("%s: kernel route %v from the flood", name, r)
					break
				}
			}
		}
	}
	// FRR itself saw why: a Cease with "maximum number of prefixes".
	nb, err := frr.Neighbors()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range nodes {
		t.Logf("FRR's view of %s: %+v", h.Spec.Name, nb[h.Addr4()])
	}
}

func nexthopFor(h *netlab.Host, p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		return h.Addr4()
	}
	return h.Addr6()
}
