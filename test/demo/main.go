// Command demo runs Herald end to end on a local lab: a real kube-apiserver
// and etcd, three node namespaces running the speaker, an FRR router and a
// client namespace on one bridge, and the controller. It tells the seed
// story — a PreferDualStack Service on an IPv4-only pool falls back to IPv4,
// a RequireDualStack one stays Pending, the pool gains IPv6 and both are
// completed — and shows it from the client (arping, ndisc6) and the router.
//
//	demo up [--keep]   # --keep leaves the lab up until Ctrl-C
//	demo down          # removes everything a previous run left
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/test/controlplane"
	"github.com/herald-lb/herald/test/netlab"
)

//go:embed config.yaml
var configYAML string

//go:embed services.yaml
var servicesYAML string

// state is what a run leaves behind, so `demo down` (or the next `demo up`)
// can remove exactly that, even after a crash.
type state struct {
	DemoPID    int      `json:"demoPID"`
	Namespaces []string `json:"namespaces"`
	PIDs       []int    `json:"pids"`
}

type demo struct {
	root, dir, kubeconfig, assets string
	lab                           *netlab.Lab
	frr                           *netlab.FRR
	c                             client.Client
	st                            state
	procs                         []*os.Process
	step                          int
	pods                          map[string]*netlab.Pod // one backend per node
	speakers                      map[string]*netlab.Proc
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: demo up [--keep] | demo down")
		os.Exit(2)
	}
	root, err := controlplane.RepoRoot()
	if err != nil {
		fail(err)
	}
	d := &demo{root: root, dir: filepath.Join(root, ".demo"), pods: map[string]*netlab.Pod{}, speakers: map[string]*netlab.Proc{}}
	switch os.Args[1] {
	case "down":
		if err := d.down(); err != nil {
			fail(err)
		}
		fmt.Println("demo: everything removed")
	case "up":
		fs := flag.NewFlagSet("up", flag.ExitOnError)
		keep := fs.Bool("keep", false, "leave the lab running (until Ctrl-C or `make demo-down`) to play with it")
		_ = fs.Parse(os.Args[2:])
		if err := d.run(*keep); err != nil {
			fmt.Fprintln(os.Stderr, "\ndemo failed:", err)
			fmt.Fprintln(os.Stderr, "logs:", d.dir)
			_ = d.down()
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: demo up [--keep] | demo down")
		os.Exit(2)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	os.Exit(1)
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Printf("\n\033[1m[%d] %s\033[0m\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) note(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

func (d *demo) run(keep bool) error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces)")
	}
	if why := netlab.FRRAvailable(); why != "" {
		return errors.New(why + " (run hack/install-test-deps.sh)")
	}
	if err := d.down(); err != nil { // idempotent: clear any previous run first
		return err
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	d.st.DemoPID = os.Getpid()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()

	d.say("Control plane: kube-apiserver + etcd built from Go modules (dual-stack service CIDRs)")
	var err error
	if d.assets, err = controlplane.Assets(); err != nil {
		return err
	}
	cp := exec.Command(filepath.Join(d.root, "hack/k8s-bins/run-controlplane.sh"), "start")
	cp.Env = append(os.Environ(), "ASSETS="+d.assets, "STATE_DIR="+filepath.Join(d.dir, "controlplane"))
	out, err := cp.CombinedOutput()
	if err != nil {
		return fmt.Errorf("control plane: %v\n%s", err, out)
	}
	d.note("%s", strings.Split(strings.TrimSpace(string(out)), "\n")[0])
	d.kubeconfig = filepath.Join(d.dir, "controlplane", "kubeconfig")
	if err := d.kubectl("apply", "--server-side", "-f", filepath.Join(d.root, "deploy", "crds")); err != nil {
		return err
	}
	if err := d.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		return err
	}
	d.note("Herald's CRDs installed with kubectl")
	cfg, err := kube.RESTConfig(d.kubeconfig, 100, 200)
	if err != nil {
		return err
	}
	if d.c, err = client.New(cfg, client.Options{Scheme: kube.NewScheme()}); err != nil {
		return err
	}

	d.say("Network lab: a bridge, node1..3, an FRR router and a client, each in its own namespace")
	hosts := slices.DeleteFunc(netlab.Standard(), func(h netlab.HostSpec) bool { return h.Name == "router2" })
	if d.lab, err = netlab.New(hosts); err != nil {
		return err
	}
	d.st.Namespaces = append([]string{d.lab.LAN}, d.lab.Prefix+"node1", d.lab.Prefix+"node2", d.lab.Prefix+"node3", d.lab.Prefix+"router", d.lab.Prefix+"client")
	if err := d.save(); err != nil {
		return err
	}
	defer d.teardown()
	var neighbors []netlab.FRRNeighbor
	for _, n := range []string{"node1", "node2", "node3"} {
		neighbors = append(neighbors, netlab.FRRNeighbor{Address: d.lab.Host(n).Addr4(), ASN: 64501})
	}
	if d.frr, err = d.lab.Host("router").StartFRR(netlab.FRRConfig{ASN: 64500, RouterID: d.lab.Host("router").Addr4(), Neighbors: neighbors}); err != nil {
		return err
	}
	for _, h := range hosts {
		d.note("%-8s %-8s %-16s %-20s %s", h.Name, d.lab.Prefix+h.Name, h.V4.Addr(), h.V6.Addr(), h.MAC)
	}

	d.say("Herald: the controller, and a speaker in every node namespace (as a hostNetwork DaemonSet would run)")
	if err := d.startHerald(ctx); err != nil {
		return err
	}
	if err := d.startBackends(); err != nil {
		return err
	}
	if err := d.kubectlStdin(configYAML, "apply", "-f", "-"); err != nil {
		return err
	}
	d.note("applied: IPAddressPool v4-only (192.0.2.240/29, IPv4 only), IPAddressPool dual (192.0.2.248/29 + 2001:db8:100::f8/125),")
	d.note("         L2Advertisement lan, BGPPeer frr (AS 64501 -> 64500 at 192.0.2.1), BGPAdvertisement to-frr")

	d.say("Services: web-prefer (PreferDualStack) and web-require (RequireDualStack) on the IPv4-only pool; api (RequireDualStack) on the dual pool")
	if err := d.kubectlStdin(servicesYAML, "apply", "-f", "-"); err != nil {
		return err
	}
	if err := d.endpoints(ctx); err != nil {
		return err
	}
	if err := d.wait(ctx, 60*time.Second, func() error {
		return d.want(map[string]int{"web-prefer": 1, "web-require": 0, "api": 2})
	}); err != nil {
		return err
	}
	if err := d.waitAnswers(ctx, "web-prefer", "api"); err != nil {
		return err
	}
	if err := d.report(ctx); err != nil {
		return err
	}
	d.curlAll(ctx)
	d.events("web-require")

	d.say("The admin adds an IPv6 range to the IPv4-only pool: both Services are completed (backfill), web-prefer keeps its IPv4")
	before, _ := d.ingress("web-prefer")
	if err := d.kubectl("patch", "-n", "herald-system", "ipaddresspool", "v4-only", "--type=merge",
		"-p", `{"spec":{"addresses":["192.0.2.240/29","2001:db8:100::f0/125"]}}`); err != nil {
		return err
	}
	if err := d.wait(ctx, 60*time.Second, func() error {
		return d.want(map[string]int{"web-prefer": 2, "web-require": 2, "api": 2})
	}); err != nil {
		return err
	}
	after, _ := d.ingress("web-prefer")
	if len(before) == 0 || after[0] != before[0] {
		return fmt.Errorf("web-prefer's IPv4 changed: %v -> %v", before, after)
	}
	d.note("web-prefer: %s -> %s (IPv4 unchanged, IPv6 added)", strings.Join(before, ", "), strings.Join(after, ", "))
	if err := d.waitAnswers(ctx, "web-prefer", "web-require", "api"); err != nil {
		return err
	}
	if err := d.report(ctx); err != nil {
		return err
	}
	d.curlAll(ctx)
	d.events("web-prefer")
	d.events("web-require")

	d.say("The same from an operator's seat: heraldctl status")
	st := exec.Command(filepath.Join(d.root, "bin", "heraldctl"), "status", "--kubeconfig", d.kubeconfig)
	if out, err := st.CombinedOutput(); err != nil {
		return fmt.Errorf("heraldctl status: %v\n%s", err, out)
	} else {
		for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			fmt.Println("    " + l)
		}
	}

	if err := d.killOwner(after[0]); err != nil {
		return err
	}

	d.say("Done in %s", time.Since(start).Round(time.Second))
	if !keep {
		d.note("tearing the lab down (make demo KEEP=1, or demo up --keep, leaves it running)")
		return nil
	}
	fmt.Printf("\nThe lab stays up. In another shell:\n\n  export KUBECONFIG=%s\n  %s get svc,ipaddresspools -A\n  ip netns exec %sclient arping -c1 -i eth0 192.0.2.240\n\nCtrl-C here, or `make demo-down`, removes everything.\n", d.kubeconfig, filepath.Join(d.assets, "kubectl"), d.lab.Prefix)
	<-ctx.Done()
	return nil
}

func (d *demo) startHerald(ctx context.Context) error {
	bin := filepath.Join(d.root, "bin")
	if err := d.kubectl("create", "namespace", "herald-system"); err != nil {
		return err
	}
	host, err := apiHost(d.kubeconfig)
	if err != nil {
		return err
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		h := d.lab.Host(n)
		// Each node namespace reaches the apiserver on its own loopback.
		if _, err := h.ForwardLoopback(host, host); err != nil {
			return err
		}
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"kubernetes.io/hostname": n}}}
		if err := d.c.Create(ctx, node); err != nil {
			return err
		}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: h.Addr4().String()}, {Type: corev1.NodeInternalIP, Address: h.Addr6().String()}}
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
		if err := d.c.Status().Update(ctx, node); err != nil {
			return err
		}
	}
	ctrlLog, err := os.Create(filepath.Join(d.dir, "controller.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "controller"), "--kubeconfig", d.kubeconfig, "--metrics-bind-address", "127.0.0.1:17472", "--health-probe-bind-address", "127.0.0.1:17473")
	cmd.Stdout, cmd.Stderr = ctrlLog, ctrlLog
	if err := cmd.Start(); err != nil {
		return err
	}
	d.procs = append(d.procs, cmd.Process)
	d.st.PIDs = append(d.st.PIDs, cmd.Process.Pid)
	d.note("controller   pid %-7d log %s", cmd.Process.Pid, ctrlLog.Name())
	for _, n := range []string{"node1", "node2", "node3"} {
		log, err := os.Create(filepath.Join(d.dir, "speaker-"+n+".log"))
		if err != nil {
			return err
		}
		sp := d.lab.Host(n).Command(filepath.Join(bin, "speaker"), "--kubeconfig", d.kubeconfig, "--node-name", n,
			"--metrics-bind-address", "127.0.0.1:7474", "--health-probe-bind-address", "127.0.0.1:7475", "--memberlist-insecure")
		sp.Stdout, sp.Stderr = log, log
		p, err := d.lab.Host(n).StartCmd(sp)
		if err != nil {
			return err
		}
		d.st.PIDs = append(d.st.PIDs, p.Cmd.Process.Pid)
		d.speakers[n] = p
		d.note("speaker %s pid %-7d log %s", n, p.Cmd.Process.Pid, log.Name())
	}
	return d.save()
}

// endpoints stands in for the endpoint controller (there is no kubelet or
// controller-manager): every Service gets the backend pod of every node.
func (d *demo) endpoints(ctx context.Context) error {
	for _, svc := range []string{"web-prefer", "web-require", "api"} {
		for _, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			sl := &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: svc + "-" + strings.ToLower(string(fam)), Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
				AddressType: fam,
			}
			sl.Ports = []discoveryv1.EndpointPort{{Name: new("http"), Port: new(backendPorts[svc])}}
			for _, n := range []string{"node1", "node2", "node3"} {
				a := d.pods[n].V4
				if fam == discoveryv1.AddressTypeIPv6 {
					a = d.pods[n].V6
				}
				sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{a.String()}, NodeName: new(n),
					Conditions: discoveryv1.EndpointConditions{Ready: new(true), Serving: new(true), Terminating: new(false)}})
			}
			if err := d.c.Create(ctx, sl); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *demo) ingress(name string) ([]string, error) {
	var s corev1.Service
	if err := d.c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, &s); err != nil {
		return nil, err
	}
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out, nil
}

func (d *demo) want(counts map[string]int) error {
	for name, n := range counts {
		ips, err := d.ingress(name)
		if err != nil {
			return err
		}
		if len(ips) != n {
			return fmt.Errorf("%s holds %v, want %d addresses", name, ips, n)
		}
	}
	return nil
}

func (d *demo) wait(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitAnswers waits until the client gets ARP/NDP answers and FRR holds
// routes for every address of the named Services.
func (d *demo) waitAnswers(ctx context.Context, names ...string) error {
	for _, name := range names {
		ips, err := d.ingress(name)
		if err != nil {
			return err
		}
		for _, ip := range ips {
			if err := d.wait(ctx, 30*time.Second, func() error {
				if _, err := d.answer(ip); err != nil {
					return err
				}
				_, err := d.routes(ip)
				return err
			}); err != nil {
				return fmt.Errorf("%s %s: %w", name, ip, err)
			}
		}
	}
	return nil
}

// answer asks from the client: arping for IPv4, ndisc6 for IPv6; it returns
// the node whose MAC answered.
func (d *demo) answer(ip string) (string, error) {
	c := d.lab.Host("client")
	a := netip.MustParseAddr(ip)
	var mac string
	if a.Is4() {
		out, err := c.Output("arping", "-c", "1", "-w", "2", "-i", "eth0", "-r", ip)
		if err != nil {
			return "", err
		}
		mac = strings.TrimSpace(out)
	} else {
		out, err := c.Output("ndisc6", "-1", "-r", "2", "-w", "1000", ip, "eth0")
		if err != nil {
			return "", err
		}
		for _, l := range strings.Split(out, "\n") {
			if _, m, ok := strings.Cut(l, "Target link-layer address:"); ok {
				mac = strings.TrimSpace(m)
			}
		}
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		if strings.EqualFold(d.lab.Host(n).MAC().String(), mac) {
			return n, nil
		}
	}
	return "", fmt.Errorf("answer from unknown MAC %q", mac)
}

// routes lists the next hops FRR installed for the address's host route.
func (d *demo) routes(ip string) ([]string, error) {
	a := netip.MustParseAddr(ip)
	p := netip.PrefixFrom(a, a.BitLen())
	r, ok, err := d.lab.Host("router").KernelRoute(p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no route to %s at the router", p)
	}
	var hops []string
	for _, h := range r.NextHops {
		hops = append(hops, h.String())
	}
	slices.Sort(hops)
	return hops, nil
}

func (d *demo) report(ctx context.Context) error {
	var svcs corev1.ServiceList
	if err := d.c.List(ctx, &svcs, client.InNamespace("default")); err != nil {
		return err
	}
	var l2 v1beta1.ServiceL2StatusList
	if err := d.c.List(ctx, &l2, client.InNamespace("herald-system")); err != nil {
		return err
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    SERVICE\tPOLICY\tPOOL\tSTATE\tADDRESS\tL2 NODE (status)\tCLIENT ASKED (arping/ndisc6)\tFRR ROUTE VIA")
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		state := "-"
		if c := meta.FindStatusCondition(s.Status.Conditions, v1beta1.ConditionAddressesComplete); c != nil {
			state = c.Reason
		}
		pol := string(*s.Spec.IPFamilyPolicy)
		pool := s.Annotations[v1beta1.AnnotationAllocatedFromPool]
		if len(s.Status.LoadBalancer.Ingress) == 0 {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t(none)\t\t\t\n", s.Name, pol, dash(pool), state)
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			node := "-"
			for _, st := range l2.Items {
				if st.Status.ServiceName == s.Name && slices.Contains(st.Status.Addresses, in.IP) {
					node = st.Status.Node
				}
			}
			asked, err := d.answer(in.IP)
			if err != nil {
				asked = "no answer"
			}
			hops, err := d.routes(in.IP)
			via := strings.Join(hops, " ")
			if err != nil {
				via = "no route"
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, pol, dash(pool), state, in.IP, node, asked, via)
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (d *demo) events(name string) {
	var evs corev1.EventList
	if err := d.c.List(context.Background(), &evs, client.InNamespace("default")); err != nil {
		return
	}
	slices.SortFunc(evs.Items, func(a, b corev1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	for _, e := range evs.Items {
		if e.InvolvedObject.Name == name {
			fmt.Printf("    event on %s: %-8s %-16s %s\n", name, e.Type, e.Reason, e.Message)
		}
	}
}

func (d *demo) kubectl(args ...string) error { return d.kubectlStdin("", args...) }

func (d *demo) kubectlStdin(stdin string, args ...string) error {
	cmd := exec.Command(filepath.Join(d.assets, "kubectl"), append([]string{"--kubeconfig", d.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func apiHost(kubeconfig string) (string, error) {
	cfg, err := kube.RESTConfig(kubeconfig, 1, 1)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(cfg.Host, "https://"), nil
}

func (d *demo) save() error {
	b, err := json.MarshalIndent(d.st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.dir, "state.json"), b, 0o644)
}

// teardown stops what this run started.
func (d *demo) teardown() {
	for _, p := range d.procs {
		_ = p.Signal(syscall.SIGTERM)
	}
	if d.lab != nil {
		_ = d.lab.Close() // speakers, FRR, relays, namespaces
	}
	for _, p := range d.procs {
		_, _ = p.Wait()
	}
	d.stopControlPlane()
	_ = os.Remove(filepath.Join(d.dir, "state.json"))
}

func (d *demo) stopControlPlane() {
	cp := exec.Command(filepath.Join(d.root, "hack/k8s-bins/run-controlplane.sh"), "stop")
	cp.Env = append(os.Environ(), "STATE_DIR="+filepath.Join(d.dir, "controlplane"))
	_ = cp.Run()
}

// down removes what a previous run left: its demo process (whose own
// teardown then runs), processes and namespaces, by the exact names and
// PIDs it recorded.
func (d *demo) down() error {
	b, err := os.ReadFile(filepath.Join(d.dir, "state.json"))
	if err == nil {
		var st state
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(d.dir, "state.json"), err)
		}
		if st.DemoPID != 0 && st.DemoPID != os.Getpid() && alive(st.DemoPID) {
			_ = syscall.Kill(st.DemoPID, syscall.SIGTERM)
			for i := 0; i < 100 && alive(st.DemoPID); i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		for _, pid := range st.PIDs {
			if alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		for _, ns := range st.Namespaces {
			if _, err := os.Stat("/run/netns/" + ns); err == nil {
				if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
					return fmt.Errorf("ip netns del %s: %v: %s", ns, err, out)
				}
			}
		}
		_ = os.Remove(filepath.Join(d.dir, "state.json"))
	}
	d.stopControlPlane()
	return nil
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// A zombie still answers signal 0; read its state to be sure.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}
