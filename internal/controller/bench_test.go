package controller_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
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
	port := freePort(t)
	cmd := s.startControllerProcess("--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--log-level", "warn")
	const n = 2000
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
			svc.Name, svc.Namespace = fmt.Sprintf("b-%04d", i), s.namespace
			svc.Spec.Type = corev1.ServiceTypeLoadBalancer
			svc.Spec.IPFamilyPolicy = &policy
			svc.Spec.LoadBalancerClass = &s.class
			svc.Spec.AllocateLoadBalancerNodePorts = new(false)
			svc.Spec.Ports = []corev1.ServicePort{{Port: 80}}
			if i%4 != 0 {
				svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
			}
			if err := s.c.Create(ctx, svc); err != nil {
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	created := time.Since(start)
	s.waitAssigned(n)
	assigned := time.Since(start)
	t.Logf("2000 Services: created in %s (%.0f/s apiserver create rate), all assigned after %s (%.0f Services/s end to end)",
		created.Round(time.Millisecond), n/created.Seconds(), assigned.Round(time.Millisecond), n/assigned.Seconds())

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

// waitAssigned waits until n Services of the scope hold an address.
func (s *scope) waitAssigned(n int) {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		var list corev1.ServiceList
		if err := s.c.List(context.Background(), &list, client.InNamespace(s.namespace)); err == nil {
			done := 0
			for _, svc := range list.Items {
				if len(svc.Status.LoadBalancer.Ingress) > 0 {
					done++
				}
			}
			if done >= n {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("not all %d Services assigned after 5 minutes", n)
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
