package speaker

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/pkg/announce"
)

func node(name string, ready bool) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2." + name[len(name)-1:]}},
	}}
}

// fakeLiveness is a memberlist view a test sets by hand.
type fakeLiveness struct{ alive, reach map[string]bool }

func (f *fakeLiveness) SetPeers(map[string]netip.Addr) {}
func (f *fakeLiveness) Alive() map[string]bool         { return f.alive }
func (f *fakeLiveness) Changes() <-chan struct{}       { return nil }
func (f *fakeLiveness) Reachable() map[string]bool     { return f.reach }
func (f *fakeLiveness) Rejoin(time.Duration)           {}

func TestWithoutMemberlistNodeReadinessDecidesWhoIsAlive(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(node("n1", true), node("n2", false), node("n3", true)).Build()
	s := &Speaker{client: c, opts: Options{NodeName: "n2"}}
	got, err := s.nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"n1": true, "n2": true, "n3": true} // n2 is ourselves: running
	for _, n := range got {
		if n.Alive != want[n.Name] {
			t.Errorf("%s alive = %v, want %v", n.Name, n.Alive, want[n.Name])
		}
	}
	s.opts.NodeName = "n1"
	got, _ = s.nodes(context.Background())
	for _, n := range got {
		if n.Name == "n2" && n.Alive {
			t.Error("a NotReady node counts as alive without memberlist")
		}
	}
}

func TestWithMemberlistItsViewDecidesWhoIsAlive(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(node("n1", true), node("n2", true), node("n3", true)).Build()
	live := &fakeLiveness{alive: map[string]bool{"n1": true, "n3": true}}
	s := &Speaker{client: c, opts: Options{NodeName: "n1", Liveness: live}}
	got, err := s.nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range got {
		if want := n.Name != "n2"; n.Alive != want {
			t.Errorf("%s alive = %v, want %v (memberlist, not Node readiness)", n.Name, n.Alive, want)
		}
	}
}

// The layer-2 gate: a node that reaches at most half of the ready nodes
// answers for nothing; back in the majority it waits the hand-back delay.
func TestMinorityPartitionAnswersNothingThenHandsBackAfterTheDelay(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.200")
	nodes := []announce.Node{{Name: "n1", Alive: true, Ready: true}, {Name: "n2", Alive: true, Ready: true}, {Name: "n3", Alive: true, Ready: true}}
	live := &fakeLiveness{reach: map[string]bool{}}
	s := &Speaker{opts: Options{NodeName: "n1", Liveness: live, HandBackDelay: time.Hour}}
	plan := announce.Plan{L2: map[netip.Addr]announce.L2Entry{a: {}}, Owners: map[netip.Addr]string{a: "n1"}}
	ifaces := map[netip.Addr][]string{a: {"eth0"}}
	log := discard{}
	if got, _ := s.gateLayer2(log, plan, nodes, ifaces); len(got) != 0 {
		t.Fatalf("reaching 1 of 3 ready nodes it answers %v", got)
	}
	live.reach = map[string]bool{"n2": true, "n3": true}
	got, retry := s.gateLayer2(log, plan, nodes, ifaces)
	if len(got) != 0 || retry <= 0 {
		t.Fatalf("back from a partition it answers %v at once (retry %s), want a hand-back wait", got, retry)
	}
	s.holdUntil = time.Now().Add(-time.Second) // the delay passed
	if got, _ := s.gateLayer2(log, plan, nodes, ifaces); len(got) != 1 {
		t.Fatalf("after the hand-back delay it answers %v", got)
	}
}

type discard struct{}

func (discard) Info(string, ...any) {}
