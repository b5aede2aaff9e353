package announce

import (
	"net/netip"
	"testing"
	"time"
)

var (
	addrA = netip.MustParseAddr("192.0.2.200")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// step is one call of Decide in a scenario: what was observed, and whether
// addrA is answered.
type step struct {
	at        time.Duration // since t0
	owner     string        // the plan's owner of addrA ("" = not in the plan)
	reachable []string
	alive     []string
	carrier   map[string]bool
	answer    bool
	quorum    bool
	retry     bool // a later look is asked for
	rejoin    bool
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func runSteps(t *testing.T, speakers map[string]bool, steps []step) {
	t.Helper()
	var mem Memory
	for i, s := range steps {
		plan := Plan{L2: map[netip.Addr]L2Entry{}, Owners: map[netip.Addr]string{}}
		if s.owner != "" {
			plan.Owners[addrA] = s.owner
			if s.owner == "n1" {
				plan.L2[addrA] = L2Entry{Interfaces: []string{"eth0"}}
			}
		}
		alive := s.alive
		if alive == nil {
			alive = []string{"n1", "n2", "n3"}
		}
		obs := Observed{Now: t0.Add(s.at), Self: "n1", Speakers: speakers, Reachable: set(s.reachable...),
			Alive: set(alive...), Carrier: s.carrier, HandBackDelay: 500 * time.Millisecond}
		var d Decision
		d, mem = Decide(plan, obs, mem)
		_, answered := d.L2[addrA]
		if answered != s.answer || d.Quorum != s.quorum || (d.Retry > 0) != s.retry || d.Rejoin != s.rejoin {
			t.Fatalf("step %d (%s): answered %v quorum %v retry %s rejoin %v; want answered %v quorum %v retry %v rejoin %v",
				i, s.at, answered, d.Quorum, d.Retry, d.Rejoin, s.answer, s.quorum, s.retry, s.rejoin)
		}
	}
}

func TestLayer2Decision(t *testing.T) {
	three := set("n1", "n2", "n3")
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		speakers map[string]bool
		steps    []step
	}{
		{"a starting node waits the hand-back delay while others are alive", three, []step{
			{at: 0, owner: "n1", reachable: []string{"n2", "n3"}, quorum: true, retry: true},
			{at: 499 * ms, owner: "n1", reachable: []string{"n2", "n3"}, quorum: true, retry: true},
			{at: 500 * ms, owner: "n1", reachable: []string{"n2", "n3"}, answer: true, quorum: true},
		}},
		{"a node alone answers at once", set("n1"), []step{
			{at: 0, owner: "n1", alive: []string{"n1"}, answer: true, quorum: true},
		}},
		{"failover from a dead owner is claimed at once", three, []step{
			{at: 0, owner: "n2", reachable: []string{"n2", "n3"}, quorum: true},
			{at: time.Second, owner: "n1", reachable: []string{"n3"}, alive: []string{"n1", "n3"}, answer: true, quorum: true},
		}},
		{"winning an address a live node holds waits the hand-back delay", three, []step{
			{at: 0, owner: "n2", reachable: []string{"n2", "n3"}, quorum: true},
			{at: time.Second, owner: "n1", reachable: []string{"n2", "n3"}, quorum: true, retry: true},
			{at: 1400 * ms, owner: "n1", reachable: []string{"n2", "n3"}, quorum: true, retry: true},
			{at: 1500 * ms, owner: "n1", reachable: []string{"n2", "n3"}, answer: true, quorum: true},
		}},
		{"a minority partition answers nothing, then hands back after the delay", three, []step{
			{at: 0, owner: "n1", reachable: nil},
			{at: time.Second, owner: "n1", reachable: []string{"n2", "n3"}, quorum: true, retry: true, rejoin: true},
			{at: 1500 * ms, owner: "n1", reachable: []string{"n2", "n3"}, answer: true, quorum: true},
		}},
		{"reaching half of four speakers is a minority", set("n1", "n2", "n3", "n4"), []step{
			{at: 0, owner: "n1", reachable: []string{"n2"}},
		}},
		{"two speakers answer each on its own when cut", set("n1", "n2"), []step{
			{at: 0, owner: "n1", reachable: nil, alive: []string{"n1"}, answer: true, quorum: true},
		}},
		{"speakerless nodes do not count: three speakers reaching each other answer", three, []step{
			{at: 0, owner: "n1", alive: []string{"n1"}, reachable: []string{"n2", "n3"}, answer: true, quorum: true},
		}},
		{"carrier lost stops answering; carrier back waits the delay", three, []step{
			{at: 0, owner: "n1", alive: []string{"n1"}, reachable: []string{"n2", "n3"}, answer: true, quorum: true},
			{at: 100 * ms, owner: "n1", alive: []string{"n1"}, reachable: []string{"n2", "n3"}, carrier: map[string]bool{"eth0": false}, quorum: true},
			{at: 200 * ms, owner: "n1", alive: []string{"n1"}, reachable: []string{"n2", "n3"}, carrier: map[string]bool{"eth0": true}, quorum: true, retry: true, rejoin: true},
			{at: 700 * ms, owner: "n1", alive: []string{"n1"}, reachable: []string{"n2", "n3"}, carrier: map[string]bool{"eth0": true}, answer: true, quorum: true},
		}},
		{"an address already answered stays answered", three, []step{
			{at: 0, owner: "n1", alive: []string{"n1"}, reachable: []string{"n2", "n3"}, answer: true, quorum: true},
			{at: 10 * ms, owner: "n1", reachable: []string{"n2", "n3"}, answer: true, quorum: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.speakers, tc.steps) })
	}
}

func TestQuorumForOneTwoThreeAndMoreSpeakers(t *testing.T) {
	for _, tc := range []struct {
		reachable, speakers int
		want                bool
	}{
		{1, 1, true}, {1, 2, true}, {2, 2, true}, {1, 3, false}, {2, 3, true}, {2, 4, false}, {3, 4, true},
		{3, 5, true}, {2, 5, false}, {50, 100, false}, {51, 100, true},
	} {
		if got := Quorum(tc.reachable, tc.speakers); got != tc.want {
			t.Errorf("Quorum(%d of %d) = %v, want %v", tc.reachable, tc.speakers, got, tc.want)
		}
	}
}

// Decide never changes the Memory it was given: a caller may keep the old one.
func TestDecideLeavesItsMemoryUntouched(t *testing.T) {
	plan := Plan{L2: map[netip.Addr]L2Entry{addrA: {Interfaces: []string{"eth0"}}}, Owners: map[netip.Addr]string{addrA: "n1"}}
	obs := Observed{Now: t0, Self: "n1", Alive: set("n1"), HandBackDelay: time.Second}
	_, mem := Decide(plan, obs, Memory{})
	before := len(mem.answering)
	obs.Carrier = map[string]bool{"eth0": false}
	Decide(plan, obs, mem)
	if len(mem.answering) != before || !mem.carrier["eth0"] {
		t.Fatal("Decide changed the Memory it was given")
	}
}

func TestSpeakersCountOnlyNodesWhereASpeakerWasSeen(t *testing.T) {
	nodes := map[string]bool{"n1": true, "n2": true, "n3": true, "win1": true, "win2": true, "win3": true, "gone": false}
	got := Speakers(nil, set("n1", "n2", "n3"), nodes, "n1")
	if len(got) != 3 || got["win1"] {
		t.Fatalf("speakers %v, want n1..n3 only", got)
	}
	// Cut off: the others are unreachable and not alive, but still counted.
	got = Speakers(got, set("n1"), nodes, "n1")
	if len(got) != 3 {
		t.Fatalf("after a cut speakers %v, want the three still counted", got)
	}
	if Quorum(1, len(got)) {
		t.Fatal("a node cut from two other speakers keeps quorum")
	}
	// A Node that is no longer Ready, or deleted, is forgotten.
	nodes["n3"] = false
	delete(nodes, "n2")
	if got = Speakers(got, set("n1"), nodes, "n1"); len(got) != 1 {
		t.Fatalf("speakers %v, want only n1 after n2 was deleted and n3 went NotReady", got)
	}
}

func TestAliveIsTheMembershipElseNodeReadiness(t *testing.T) {
	for _, tc := range []struct {
		node    Node
		members map[string]bool
		want    bool
	}{
		{Node{Name: "n2", Ready: true}, nil, true},
		{Node{Name: "n2", Ready: false}, nil, false},
		{Node{Name: "n2", Ready: true}, set("n1"), false},
		{Node{Name: "n2", Ready: false}, set("n2"), true},
		{Node{Name: "n1", Ready: false}, set(), true}, // self
	} {
		if got := Alive(tc.node, tc.members, "n1"); got != tc.want {
			t.Errorf("Alive(%+v, %v) = %v, want %v", tc.node, tc.members, got, tc.want)
		}
	}
}
