package controller_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/test/controlplane"
)

// One dual-stack control plane per test binary (CRDs install once); every
// test isolates itself with its own configuration namespace and
// loadBalancerClass, so tests can run in parallel.
var (
	env           *controlplane.Env
	controllerBin string
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		flag.Parse()
		// HERALD_TEST_LOG=debug shows the in-process controllers' logs.
		level := slog.LevelError + 1
		if v := os.Getenv("HERALD_TEST_LOG"); v != "" {
			_ = level.UnmarshalText([]byte(v))
		}
		ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		if testing.Short() {
			return m.Run()
		}
		var err error
		env, err = controlplane.Start(controlplane.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer env.Stop()
		dir, err := os.MkdirTemp("", "herald-controller-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		controllerBin = filepath.Join(dir, "controller")
		root, _ := controlplane.RepoRoot()
		build := exec.Command("go", "build", "-o", controllerBin, "./cmd/controller")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build controller: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// scope is one test's private corner of the cluster.
type scope struct {
	t         *testing.T
	env       *controlplane.Env
	c         client.Client
	namespace string // Herald's configuration namespace and the Services' namespace
	class     string
}

func newScope(t *testing.T) *scope {
	t.Helper()
	if env == nil {
		t.Skip("needs the real control plane (not -short)")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s := &scope{t: t, env: env, c: env.Client, namespace: "t-" + id, class: "herald.test/" + id}
	ctx := context.Background()
	if err := s.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.namespace}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// runController runs the controller in-process until the test ends or stop is called.
func (s *scope) runController() (stop func()) {
	s.t.Helper()
	mgr, err := ctrl.NewManager(s.env.Config, ctrl.Options{
		Scheme:                 s.env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlConfigSkipNameValidation(),
	})
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := controller.Setup(mgr, controller.Options{Namespace: s.namespace, LBClass: s.class}); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			s.t.Errorf("manager: %v", err)
		}
	}()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		<-done
	}
	s.t.Cleanup(stop)
	return stop
}

// startControllerProcess runs the controller binary, as a deployment would.
func (s *scope) startControllerProcess(extra ...string) *process {
	s.t.Helper()
	// One replica needs no Lease (and a killed one would block its successor
	// for the lease duration); tests of the election pass --leader-elect.
	args := append([]string{"--kubeconfig", s.env.Kubeconfig, "--namespace", s.namespace, "--lb-class", s.class,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--leader-elect=false"}, extra...)
	p := &process{Cmd: exec.Command(controllerBin, args...)}
	p.Stderr = &p.log
	if err := p.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if p.ProcessState == nil {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
		if s.t.Failed() {
			s.t.Logf("controller pid %d log tail:\n%s", p.Process.Pid, tail(p.log.String(), 8))
		}
	})
	return p
}

type process struct {
	*exec.Cmd
	log lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *scope) pool(name string, addrs ...string) *v1beta1.IPAddressPool {
	s.t.Helper()
	p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
	if err := s.c.Create(context.Background(), p); err != nil {
		s.t.Fatalf("create pool %s: %v", name, err)
	}
	return p
}

func (s *scope) setPoolAddresses(name string, addrs ...string) {
	s.t.Helper()
	s.eventually(func() error {
		var p v1beta1.IPAddressPool
		if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: name}, &p); err != nil {
			return err
		}
		p.Spec.Addresses = addrs
		return s.c.Update(context.Background(), &p)
	}, "update pool %s", name)
}

func (s *scope) service(name string, policy corev1.IPFamilyPolicy, mutate ...func(*corev1.Service)) *corev1.Service {
	s.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			IPFamilyPolicy:                &policy,
			LoadBalancerClass:             &s.class,
			AllocateLoadBalancerNodePorts: new(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(svc)
	}
	if err := s.c.Create(context.Background(), svc); err != nil {
		s.t.Fatalf("create service %s: %v", name, err)
	}
	return svc
}

func (s *scope) get(name string) *corev1.Service {
	s.t.Helper()
	var svc corev1.Service
	if err := s.c.Get(context.Background(), client.ObjectKey{Namespace: s.namespace, Name: name}, &svc); err != nil {
		s.t.Fatalf("get service %s: %v", name, err)
	}
	return &svc
}

func ingressOf(svc *corev1.Service) []string {
	var out []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

// families lists the family of each ingress address, in order.
func families(ips []string) []string {
	var out []string
	for _, ip := range ips {
		a := netip.MustParseAddr(ip)
		if a.Is4() {
			out = append(out, "IPv4")
		} else {
			out = append(out, "IPv6")
		}
	}
	return out
}

// eventually polls f until it returns nil or the deadline passes. Deadlines
// are generous: they bound a hang, they do not measure speed.
func (s *scope) eventually(f func() error, format string, args ...any) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s: still failing after 60s: %v", fmt.Sprintf(format, args...), err)
}

// waitIngress waits until the Service's ingress addresses have the given families.
func (s *scope) waitIngress(name string, fams ...string) []string {
	s.t.Helper()
	var ips []string
	s.eventually(func() error {
		ips = ingressOf(s.get(name))
		if !slices.Equal(families(ips), fams) {
			return fmt.Errorf("ingress %v, want families %v", ips, fams)
		}
		return nil
	}, "service %s ingress", name)
	return ips
}

// events lists the reasons and messages of the Events about a Service.
func (s *scope) events(name string) []corev1.Event {
	s.t.Helper()
	return s.objectEvents("Service", name, "")
}

func (s *scope) waitEvent(name, reason, contains string) corev1.Event {
	s.t.Helper()
	var found corev1.Event
	s.eventually(func() error {
		for _, e := range s.events(name) {
			if e.Reason == reason && strings.Contains(e.Message, contains) {
				found = e
				return nil
			}
		}
		return fmt.Errorf("no %s event containing %q", reason, contains)
	}, "event on %s", name)
	return found
}

func (s *scope) deleteService(name string) {
	s.t.Helper()
	err := s.c.Delete(context.Background(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: name}})
	if err != nil && !apierrors.IsNotFound(err) {
		s.t.Fatal(err)
	}
}

func ctrlConfigSkipNameValidation() ctrlconfig.Controller {
	// Several managers run in one test process; controller names repeat.
	return ctrlconfig.Controller{SkipNameValidation: new(true)}
}
