package bgp

import (
	"net/netip"
	"testing"
	"time"
)

func TestReceiveLimitHoldDownDoublesUpToTwentyTimesTheFirst(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {5, 8 * time.Minute}, {6, 10 * time.Minute}, {50, 10 * time.Minute}} {
		if got := receiveLimitHoldDown(30*time.Second, c.n); got != c.want {
			t.Errorf("hold-down after the %d. time = %s, want %s", c.n, got, c.want)
		}
	}
}

func TestEveryFamilyCarriesTheReceiveLimit(t *testing.T) {
	for _, c := range []struct {
		max, want uint32
	}{{0, DefaultMaxReceived}, {100, 100}} {
		p := Peer{Name: "r", MyASN: 64501, ASN: 64500, Address: netip.MustParseAddr("192.0.2.1"), MaxReceived: c.max}
		for _, af := range p.apiPeer().GetAfiSafis() {
			if got := af.GetPrefixLimits().GetMaxPrefixes(); got != c.want {
				t.Errorf("MaxReceived %d: family %v limit %d, want %d", c.max, af.GetConfig().GetFamily(), got, c.want)
			}
		}
	}
}
