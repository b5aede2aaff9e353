package controller_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestMeasureController2000Services measures, on the real apiserver, how
// fast the controller assigns 2000 new Services and how long a restarted
// controller takes to re-verify all of them. Run with HERALD_MEASURE=1
// (make bench-controller); figures go to docs/performance.md.
func TestMeasureController2000Services(t *testing.T) {
	if os.Getenv("HERALD_MEASURE") == "" {
		t.Skip("set HERALD_MEASURE=1 (make bench-controller)")
	}
	s := newScope(t)
	s.pool("big", "198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "2001:db8:20::/112")
	const n = 2000
	ctx := context.Background()

	// The apiserver's own pace first: the same 2000 creates with no
	// controller running (another class, so the controller started next
	// leaves them alone).
	baseline := createServices(t, s, "base", "example.com/baseline", n, nil)
	t.Logf("2000 Services, baseline: created in %s with no controller running (%.0f creates/s)",
		baseline.Round(time.Millisecond), n/baseline.Seconds())

	port := freePort(t)
	cmd := s.startControllerProcess(append([]string{"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "warn"},
		strings.Fields(os.Getenv("HERALD_CONTROLLER_ARGS"))...)...)
	s.eventually(func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}, "controller serving metrics")

	// Each Service's latency: from its create call returning to the first
	// watch event whose status holds every family it asked for (both for the
	// PreferDualStack quarter: the pool has both).
	wc, err := client.NewWithWatch(s.env.Config, client.Options{Scheme: s.env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &corev1.ServiceList{}, client.InNamespace(s.namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	createdAt, doneAt := map[string]time.Time{}, map[string]time.Time{}
	allDone := make(chan time.Time, 1)
	go func() {
		for ev := range w.ResultChan() {
			svc, ok := ev.Object.(*corev1.Service)
			want := 1
			if ok && svc.Spec.IPFamilyPolicy != nil && *svc.Spec.IPFamilyPolicy == corev1.IPFamilyPolicyPreferDualStack {
				want = 2
			}
			if !ok || !strings.HasPrefix(svc.Name, "b-") || len(svc.Status.LoadBalancer.Ingress) < want {
				continue
			}
			now := time.Now()
			mu.Lock()
			if _, seen := doneAt[svc.Name]; !seen {
				doneAt[svc.Name] = now
				if len(doneAt) == n {
					allDone <- now
				}
			}
			mu.Unlock()
		}
	}()

	start := time.Now()
	created := createServices(t, s, "b", s.class, n, func(name string, at time.Time) {
		mu.Lock()
		createdAt[name] = at
		mu.Unlock()
	})
	var last time.Time
	select {
	case last = <-allDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("not all 2000 Services held every family they asked for after 2 minutes")
	}
	assigned := last.Sub(start)
	mu.Lock()
	var lat []time.Duration
	early := 0
	for name, c := range createdAt {
		d := doneAt[name].Sub(c)
		if d < 0 { // the status event overtook the create's own response
			d, early = 0, early+1
		}
		lat = append(lat, d)
	}
	mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
	}
	t.Logf("2000 Services with the controller: created in %s (%.0f creates/s); all hold their families %s after the first create (%.0f Services/s, %.0f%% of the create rate, %s behind the last create)",
		created.Round(time.Millisecond), n/created.Seconds(), assigned.Round(time.Millisecond), n/assigned.Seconds(),
		100*created.Seconds()/assigned.Seconds(), (assigned - created).Round(time.Millisecond))
	t.Logf("2000 Services: create returned -> every requested family in status: p50 %s, p95 %s, p99 %s, max %s (%d seen before their create returned)",
		q(0.50), q(0.95), q(0.99), lat[len(lat)-1].Round(time.Millisecond), early)

	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	restart := time.Now()
	s.startControllerProcess("--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "warn")
	s.eventually(func() error {
		got, err := reconciled(port)
		if err != nil {
			return err
		}
		if got < n {
			return fmt.Errorf("%d of %d re-verified", got, n)
		}
		return nil
	}, "re-verify after restart")
	t.Logf("restart: controller start to all %d Services re-verified (reconciled, unchanged): %s", n, time.Since(restart).Round(time.Millisecond))
}

// createServices creates n LoadBalancer Services of a class from 32
// concurrent callers (¼ PreferDualStack, ¾ SingleStack IPv6: the pool's
// documentation ranges hold 762 IPv4 addresses) and returns
// how long that took; done, if set, learns when each create returned.
func createServices(t *testing.T, s *scope, prefix, class string, n int, done func(name string, at time.Time)) time.Duration {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			policy := corev1.IPFamilyPolicyPreferDualStack
			svc := &corev1.Service{}
			svc.Name, svc.Namespace = fmt.Sprintf("%s-%04d", prefix, i), s.namespace
			svc.Spec.Type = corev1.ServiceTypeLoadBalancer
			svc.Spec.IPFamilyPolicy = &policy
			svc.Spec.LoadBalancerClass = &class
			svc.Spec.AllocateLoadBalancerNodePorts = new(false)
			svc.Spec.Ports = []corev1.ServicePort{{Port: 80}}
			if i%4 != 0 {
				single := corev1.IPFamilyPolicySingleStack
				svc.Spec.IPFamilyPolicy = &single
				svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
			}
			if err := s.c.Create(ctx, svc); err != nil {
				t.Errorf("create: %v", err)
				return
			}
			if done != nil {
				done(svc.Name, time.Now())
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// reconciled reads the Service reconciler's successful reconcile count from
// the controller's metrics endpoint.
func reconciled(port int) (int, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, `controller_runtime_reconcile_total{controller="service",result="success"}`) {
			f := strings.Fields(l)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return int(v), err
		}
	}
	return 0, fmt.Errorf("no reconcile count yet")
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
