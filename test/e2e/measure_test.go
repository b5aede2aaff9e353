package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/test/netlab"
)

// TestMeasureBackfillAnsweredByNDP measures, for a PreferDualStack Service
// whose pool gains IPv6, the time from the IPv6 address appearing in the
// Service's status to the owner's first unsolicited NA seen by the client,
// over several runs (make bench-failover runs it).
func TestMeasureBackfillAnsweredByNDP(t *testing.T) {
	if os.Getenv("HERALD_MEASURE") == "" {
		t.Skip("set HERALD_MEASURE=1 (make bench-failover)")
	}
	dumpOnFailure(t)
	var lat []time.Duration
	for i := range 10 {
		name := fmt.Sprintf("bf-%d", i)
		v4 := fmt.Sprintf("192.0.2.%d/32", 180+i)
		v6 := fmt.Sprintf("2001:db8:100::%x/128", 0x180+i)
		p := pool(name, v4)
		create(t, p, l2adv(name, name),
			lbService(name, corev1.IPFamilyPolicyPreferDualStack, func(s *corev1.Service) {
				s.Annotations = map[string]string{v1beta1.AnnotationAddressPool: name}
			}),
			endpoints(name, discoveryv1.AddressTypeIPv4, "node1", "node2", "node3"),
			endpoints(name, discoveryv1.AddressTypeIPv6, "node1", "node2", "node3"))
		ip4 := ingress(t, name, 1)[0]
		waitOwner(t, arpOwner, ip4, anyNode)
		w := sniff(t, netip.MustParseAddr(ip4), netip.MustParsePrefix(v6).Addr())
		wc, err := client.NewWithWatch(world.env.Config, client.Options{Scheme: world.env.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		wi, err := wc.Watch(context.Background(), &corev1.ServiceList{}, client.InNamespace("default"),
			client.MatchingFields{"metadata.name": name})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.Addresses = []string{v4, v6}
		eventually(t, 10*time.Second, func() error {
			var cur v1beta1.IPAddressPool
			if err := world.env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), &cur); err != nil {
				return err
			}
			cur.Spec.Addresses = p.Spec.Addresses
			return world.env.Client.Update(context.Background(), &cur)
		}, "add IPv6")
		var inStatus time.Time
		for ev := range wi.ResultChan() {
			if s, ok := ev.Object.(*corev1.Service); ok && ev.Type == watch.Modified && len(s.Status.LoadBalancer.Ingress) == 2 {
				inStatus = time.Now()
				break
			}
		}
		wi.Stop()
		var first frame
		eventually(t, 10*time.Second, func() error {
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, f := range w.frames {
				if f.kind == "na" {
					first = f
					return nil
				}
			}
			return fmt.Errorf("no NA yet")
		}, "first NA")
		lat = append(lat, first.at.Sub(inStatus))
		w.close()
	}
	t.Logf("backfill: IPv6 in status -> first unsolicited NA at the client: %s", summary(lat))
}

// TestMeasureSpeakerMemoryWith5000Services creates 5000 LoadBalancer
// Services with ready endpoints and reports each speaker's resident memory
// once they have planned them.
func TestMeasureSpeakerMemoryWith5000Services(t *testing.T) {
	if os.Getenv("HERALD_MEASURE") == "" {
		t.Skip("set HERALD_MEASURE=1 (make bench-failover)")
	}
	dumpOnFailure(t)
	create(t, pool("rss", "198.51.100.0/24", "203.0.113.0/24", "2001:db8:300::/112"), l2adv("rss", "rss"))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rss"}}
	create(t, ns)
	before := map[string]int{}
	for _, n := range nodeNames {
		before[n] = rssKiB(t, world.speaker(n).Cmd.Process.Pid)
	}
	const n = 5000
	ctx := context.Background()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("s-%04d", i)
			svc := lbService(name, corev1.IPFamilyPolicySingleStack, func(s *corev1.Service) {
				s.Namespace = "rss"
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
			})
			eps := endpoints(name, discoveryv1.AddressTypeIPv6, "node1", "node2", "node3")
			eps.Namespace = "rss"
			for _, o := range []client.Object{svc, eps} {
				if err := world.env.Client.Create(ctx, o); err != nil {
					t.Errorf("create %s: %v", name, err)
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, 10*time.Minute, func() error {
		var list v1beta1.ServiceL2StatusList
		if err := world.env.Client.List(ctx, &list, client.InNamespace(heraldNS)); err != nil {
			return err
		}
		got := 0
		for _, s := range list.Items {
			if s.Status.ServiceNamespace == "rss" {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d Services announced", got, n)
		}
		return nil
	}, "all announced")
	var parts []string
	for _, node := range nodeNames {
		parts = append(parts, fmt.Sprintf("%s %d→%d MiB", node, before[node]/1024, rssKiB(t, world.speaker(node).Cmd.Process.Pid)/1024))
	}
	t.Logf("speaker RSS with %d Services (idle → all announced): %s", n, strings.Join(parts, ", "))
	// Deleting the namespace removes the 5000 Services and their slices.
	if err := world.env.Client.Delete(ctx, ns); err != nil {
		t.Error(err)
	}
	var list corev1.ServiceList
	if err := world.env.Client.List(ctx, &list, client.InNamespace("rss")); err == nil {
		for i := range list.Items {
			_ = world.env.Client.Delete(ctx, &list.Items[i])
		}
	}
}

func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	n, err := netlab.ProcStatusKiB(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	return n
}
