package members

import (
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func TestView(t *testing.T) {
	type step struct {
		op       string // join, leave, notice
		name     string
		instance uint64
		changed  bool
	}
	tests := []struct {
		name  string
		steps []step
		alive []string
	}{
		{"join adds a member once", []step{
			{"join", "a", 1, true}, {"join", "a", 1, false},
		}, []string{"a"}},
		{"leave removes it", []step{
			{"join", "a", 1, true}, {"leave", "a", 0, true}, {"leave", "a", 0, false},
		}, nil},
		{"a metadata update of an alive member is no change", []step{
			{"join", "a", 1, true}, {"join", "a", 2, false},
		}, []string{"a"}},
		{"a notice removes the instance that sent it", []step{
			{"join", "a", 1, true}, {"notice", "a", 1, true},
		}, nil},
		{"a notice from an earlier process does not remove a restarted member", []step{
			{"join", "a", 1, true}, {"join", "a", 2, false}, {"notice", "a", 1, false},
		}, []string{"a"}},
		{"a late alive for the departed process does not bring it back", []step{
			{"join", "a", 1, true}, {"notice", "a", 1, true}, {"leave", "a", 0, false}, {"join", "a", 1, false},
		}, nil},
		{"the restarted process is accepted after a notice", []step{
			{"join", "a", 1, true}, {"notice", "a", 1, true}, {"join", "a", 2, true},
		}, []string{"a"}},
		{"a notice after memberlist's leave still blocks a late alive", []step{
			{"join", "a", 1, true}, {"leave", "a", 0, true}, {"notice", "a", 1, false}, {"join", "a", 1, false},
		}, nil},
		{"members without Herald metadata are never matched by notices", []step{
			{"join", "a", 0, true}, {"notice", "a", 0, false},
		}, []string{"a"}},
		{"a notice naming an unknown member is ignored", []step{
			{"join", "a", 1, true}, {"notice", "forged", 9, false}, {"join", "forged", 9, true},
		}, []string{"a", "forged"}},
		{"a notice with another instance than the alive one is ignored", []step{
			{"join", "a", 1, true}, {"notice", "a", 2, false},
		}, []string{"a"}},
		{"members are independent", []step{
			{"join", "a", 1, true}, {"join", "b", 7, true}, {"notice", "a", 1, true}, {"join", "c", 3, true},
		}, []string{"b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView()
			for i, s := range tt.steps {
				var got bool
				switch s.op {
				case "join":
					got = v.join(s.name, s.instance)
				case "leave":
					got = v.leave(s.name)
				case "notice":
					got = v.notice(s.name, s.instance)
				}
				if got != s.changed {
					t.Fatalf("step %d %s(%s, %d): changed = %v, want %v", i, s.op, s.name, s.instance, got, s.changed)
				}
			}
			want := map[string]bool{}
			for _, n := range tt.alive {
				want[n] = true
			}
			if got := v.names(); !maps.Equal(got, want) {
				t.Errorf("alive = %v, want %v", sorted(got), sorted(want))
			}
		})
	}
}

// Leave notices naming members the view never knew leave nothing behind, and
// what they may leave stays bounded.
func TestForgedLeaveNoticesDoNotGrowTheView(t *testing.T) {
	v := newView()
	v.join("a", 1)
	for i := range 100000 {
		v.notice(fmt.Sprintf("forged-%d", i), uint64(i+1))
	}
	if len(v.departed) != 0 || len(v.gone) != 0 {
		t.Errorf("after forged notices: departed %d, gone %d entries, want 0", len(v.departed), len(v.gone))
	}
	for i := range 2 * maxDeparted {
		n := fmt.Sprintf("n%d", i)
		v.join(n, 1)
		v.leave(n)
		v.notice(n, 1)
	}
	// Twice the cap of departures fills both maps exactly to it, no further.
	if len(v.departed) != maxDeparted || len(v.gone) != maxDeparted {
		t.Errorf("departed %d, gone %d entries, want %d (the cap)", len(v.departed), len(v.gone), maxDeparted)
	}
	if !v.names()["a"] {
		t.Error("the flood removed live member a")
	}
}

// Without a key New refuses to start unless the caller opts out explicitly.
func TestNoKeyIsRefusedUnlessInsecure(t *testing.T) {
	o := Options{NodeName: "a", BindAddr: netip.MustParseAddr("127.0.0.1"), Port: 20000 + mrand.IntN(12000), Logger: testLogger()}
	if m, err := New(o); err == nil {
		m.Close()
		t.Fatal("New without a secret key and without Insecure succeeded")
	} else if !strings.Contains(err.Error(), "no secret key") {
		t.Errorf("error %q does not say the key is missing", err)
	}
}
