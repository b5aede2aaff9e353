// Package e2e runs Herald end to end: a real kube-apiserver, the controller,
// and one speaker per node namespace of a netlab LAN, checked from a client
// namespace with real tools (arping, ndisc6, ip neigh) and real routers.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/test/controlplane"
	"github.com/herald-lb/herald/test/netlab"
)

const heraldNS = "herald-system"

var nodeNames = []string{"node1", "node2", "node3"}

// cluster is the shared world of this test binary: one control plane, one
// LAN, the controller and the speakers. Tests run one at a time and clean
// up their own objects.
type cluster struct {
	env       *controlplane.Env
	lab       *netlab.Lab
	bins      string
	apiAddr   string // host:port of the apiserver on loopback
	mu        sync.Mutex
	memberKey []byte // the memberlist Secret's key: the speakers gossip encrypted, as installed
	speakers  map[string]*netlab.Proc
	relays    map[string]*netlab.Forwarder // each node namespace's way to the apiserver
	ctrl      *exec.Cmd
	ctrlLog   *lockedBuffer
}

var world *cluster

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(func() int {
		if testing.Short() {
			return 0
		}
		if why := netlab.Available(); why != "" {
			fmt.Fprintln(os.Stderr, "e2e: skipped:", why)
			return 0
		}
		c, err := start()
		if c != nil {
			defer c.stop()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		world = c
		return m.Run()
	}())
}

func start() (*cluster, error) {
	c := &cluster{speakers: map[string]*netlab.Proc{}, relays: map[string]*netlab.Forwarder{}}
	dir, err := os.MkdirTemp("", "herald-e2e-bin-")
	if err != nil {
		return nil, err
	}
	c.bins = dir
	root, err := controlplane.RepoRoot()
	if err != nil {
		return c, err
	}
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/controller", "./cmd/speaker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return c, fmt.Errorf("build: %v\n%s", err, out)
	}
	if c.env, err = controlplane.Start(controlplane.Options{}); err != nil {
		return c, err
	}
	u, err := url.Parse(c.env.Config.Host)
	if err != nil {
		return c, err
	}
	c.apiAddr = u.Host
	if c.lab, err = netlab.New(netlab.Standard()); err != nil {
		return c, err
	}
	ctx := context.Background()
	if err := c.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: heraldNS}}); err != nil {
		return c, err
	}
	// What docs/troubleshooting.md tells users to create: 24 random bytes,
	// base64, used as a 32-byte AES key.
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return c, err
	}
	c.memberKey = []byte(base64.StdEncoding.EncodeToString(raw))
	if err := c.env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "herald-memberlist", Namespace: heraldNS},
		Data: map[string][]byte{"secretkey": c.memberKey}}); err != nil {
		return c, err
	}
	for _, n := range nodeNames {
		h := c.lab.Host(n)
		f, err := h.ForwardLoopback(c.apiAddr, c.apiAddr)
		if err != nil {
			return c, err
		}
		c.relays[n] = f
		if err := c.createNode(ctx, h); err != nil {
			return c, err
		}
	}
	if err := c.startController(); err != nil {
		return c, err
	}
	for _, n := range nodeNames {
		if _, err := c.startSpeaker(n); err != nil {
			return c, err
		}
	}
	return c, nil
}

// createNode registers a Node object with the namespace's addresses, as a
// kubelet would, and marks it Ready.
func (c *cluster) createNode(ctx context.Context, h *netlab.Host) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: h.Spec.Name, Labels: map[string]string{"kubernetes.io/hostname": h.Spec.Name}}}
	if err := c.env.Client.Create(ctx, n); err != nil {
		return err
	}
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: h.Addr4().String()},
		{Type: corev1.NodeInternalIP, Address: h.Addr6().String()},
		{Type: corev1.NodeHostName, Address: h.Spec.Name},
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	return c.env.Client.Status().Update(ctx, n)
}

func (c *cluster) startController() error {
	c.ctrlLog = &lockedBuffer{}
	c.ctrl = exec.Command(filepath.Join(c.bins, "controller"), "--kubeconfig", c.env.Kubeconfig, "--namespace", heraldNS,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	c.ctrl.Stderr = c.ctrlLog
	return c.ctrl.Start()
}

// startSpeaker runs the speaker binary inside the node's namespace, as the
// DaemonSet would with hostNetwork.
func (c *cluster) startSpeaker(node string, extra ...string) (*netlab.Proc, error) {
	args := append([]string{"--kubeconfig", c.env.Kubeconfig, "--node-name", node, "--namespace", heraldNS,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-level", "debug"}, extra...)
	p, err := c.lab.Host(node).Start(filepath.Join(c.bins, "speaker"), args...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.speakers[node] = p
	c.mu.Unlock()
	return p, nil
}

func (c *cluster) speaker(node string) *netlab.Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speakers[node]
}

func (c *cluster) stop() {
	if c.ctrl != nil && c.ctrl.Process != nil {
		_ = c.ctrl.Process.Kill()
		_ = c.ctrl.Wait()
	}
	closeRouters() // the BGP tests' FRR and BIRD, when they ran
	if c.lab != nil {
		_ = c.lab.Close() // stops the speakers and forwarders, deletes the namespaces
	}
	if c.env != nil {
		_ = c.env.Stop()
	}
	if c.bins != "" {
		_ = os.RemoveAll(c.bins)
	}
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

// dumpOnFailure prints the tail of every component's log when a test fails.
func dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("controller log tail:\n%s", tail(world.ctrlLog.String(), 20))
		for _, n := range nodeNames {
			if p := world.speaker(n); p != nil {
				t.Logf("%s speaker log tail:\n%s", n, tail(p.Output(), 40))
			}
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eventually polls f until it succeeds; the deadline bounds a hang, it does
// not measure speed.
func eventually(t *testing.T, timeout time.Duration, f func() error, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %s: %v", fmt.Sprintf(format, args...), timeout, err)
}

// create makes objects and deletes them, by name, when the test ends.
func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if err := world.env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
		t.Cleanup(func() {
			if err := world.env.Client.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %T %s: %v", o, o.GetName(), err)
			}
		})
	}
}

func pool(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: heraldNS}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func l2adv(name string, pools ...string) *v1beta1.L2Advertisement {
	return &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: heraldNS}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
}

func lbService(name string, policy corev1.IPFamilyPolicy, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, IPFamilyPolicy: &policy, AllocateLoadBalancerNodePorts: new(false),
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

// endpoints makes a ready EndpointSlice of one family for the Service, with
// one endpoint on each named node: there is no endpoint controller here.
func endpoints(svc string, fam discoveryv1.AddressType, nodes ...string) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s", svc, strings.ToLower(string(fam))), Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: fam,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}},
	}
	for i, n := range nodes {
		addr := fmt.Sprintf("10.244.%d.10", i+1)
		if fam == discoveryv1.AddressTypeIPv6 {
			addr = fmt.Sprintf("fd00:10:244:%d::10", i+1)
		}
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr}, NodeName: new(n), Conditions: discoveryv1.EndpointConditions{Ready: new(true)}})
	}
	return sl
}

// ingress waits until the Service holds addresses of n families and returns them.
func ingress(t *testing.T, name string, n int) []string {
	t.Helper()
	var ips []string
	eventually(t, 60*time.Second, func() error {
		var s corev1.Service
		if err := world.env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, &s); err != nil {
			return err
		}
		ips = ips[:0]
		for _, in := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP)
		}
		if len(ips) != n {
			return fmt.Errorf("ingress %v, want %d addresses", ips, n)
		}
		return nil
	}, "ingress of %s", name)
	return ips
}
