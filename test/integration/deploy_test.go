package integration

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/test/controlplane"
)

// The Helm release the chart tests render: another namespace and name prefix
// than the kustomize install, so both can hold real RBAC objects at once.
const (
	helmRelease   = "lb"
	helmNamespace = "herald-helm"
	helmFullname  = "lb-herald"
)

// The image both install methods default to.
const defaultImage = "ghcr.io/herald-lb/herald:v0.1.0"

func deployDir(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy")
}

// decodeObjects splits multi-document YAML into objects.
func decodeObjects(t *testing.T, what string, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: %v", what, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

// manifests is a rendered install: its YAML and the objects in it.
type manifests struct {
	yaml []byte
	objs []*unstructured.Unstructured
}

func (m manifests) find(kind, name string) *unstructured.Unstructured {
	for _, o := range m.objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// get converts the object of that kind and name into out, failing when absent.
func (m manifests) get(t *testing.T, kind, name string, out any) {
	t.Helper()
	u := m.find(kind, name)
	if u == nil {
		t.Fatalf("no %s %s in the manifests", kind, name)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
}

func kustomize(t *testing.T, dir string) manifests {
	t.Helper()
	cmd := env.Kubectl("kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return manifests{yaml: out, objs: decodeObjects(t, dir, out)}
}

// kubectlStdin runs kubectl against the test cluster with data on stdin.
func kubectlStdin(t *testing.T, data []byte, args ...string) (string, error) {
	t.Helper()
	cmd := env.Kubectl(args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func dryRunApply(t *testing.T, what string, data []byte) string {
	t.Helper()
	out, err := kubectlStdin(t, data, "apply", "--dry-run=server", "-f", "-")
	if err != nil {
		// Objects TestMain created (the CRDs, the namespace) draw a warning
		// each about the missing last-applied annotation: noise here.
		var kept []string
		for _, l := range strings.Split(out, "\n") {
			if !strings.Contains(l, "last-applied-configuration annotation") {
				kept = append(kept, l)
			}
		}
		t.Fatalf("kubectl apply --dry-run=server of %s: %v\n%s", what, err, strings.Join(kept, "\n"))
	}
	return out
}

// ensureNamespace creates a namespace for real (dry-run apply of namespaced
// objects needs it). Namespaces are left behind: envtest runs no namespace
// controller, so a deleted one would stay Terminating anyway.
func ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := env.Client.Create(testContext(t), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func containerArgs(c corev1.Container) []string { return append(slices.Clone(c.Command), c.Args...) }

func capsAdded(c corev1.Container) []string {
	var caps []string
	if c.SecurityContext != nil && c.SecurityContext.Capabilities != nil {
		for _, cp := range c.SecurityContext.Capabilities.Add {
			caps = append(caps, string(cp))
		}
	}
	sort.Strings(caps)
	return caps
}

// checkController checks the controller Deployment's contract: replicas,
// leader election, probes on the probe port, resources and a securityContext
// that passes the "restricted" Pod Security level.
func checkController(t *testing.T, m manifests, name string, wantArgs ...string) {
	t.Helper()
	var d appsv1.Deployment
	m.get(t, "Deployment", name, &d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("controller replicas = %v, want 2", d.Spec.Replicas)
	}
	ps := d.Spec.Template.Spec
	if len(ps.Containers) != 1 {
		t.Fatalf("controller has %d containers, want 1", len(ps.Containers))
	}
	c := ps.Containers[0]
	if c.Image != defaultImage {
		t.Errorf("controller image = %s, want %s", c.Image, defaultImage)
	}
	args := containerArgs(c)
	for _, want := range append([]string{"/controller", "--namespace=$(HERALD_NAMESPACE)", "--metrics-bind-address=:7472", "--health-probe-bind-address=:7473"}, wantArgs...) {
		if !slices.Contains(args, want) {
			t.Errorf("controller args %q lack %q", args, want)
		}
	}
	// A rollout never runs more controllers than replicas (the Lease makes one
	// of them active): no surge, one pod replaced at a time.
	if st := d.Spec.Strategy; st.Type != appsv1.RollingUpdateDeploymentStrategyType || st.RollingUpdate == nil ||
		st.RollingUpdate.MaxSurge == nil || st.RollingUpdate.MaxSurge.String() != "0" ||
		st.RollingUpdate.MaxUnavailable == nil || st.RollingUpdate.MaxUnavailable.String() != "1" {
		t.Errorf("controller strategy = %+v, want RollingUpdate with maxSurge 0 and maxUnavailable 1", st)
	}
	checkEnvFromField(t, "controller", c, "HERALD_NAMESPACE", "metadata.namespace")
	checkProbes(t, "controller", c, 7473)
	checkResources(t, "controller", c)
	if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("controller pod securityContext = %+v, want runAsNonRoot and seccomp RuntimeDefault", sc)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("controller container securityContext = %+v, want read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	if d.Spec.Template.Spec.ServiceAccountName != name {
		t.Errorf("controller service account = %q, want %q", ps.ServiceAccountName, name)
	}
}

// checkSpeaker checks the speaker DaemonSet's contract for one mode.
func checkSpeaker(t *testing.T, m manifests, name string, wantCaps []string, wantArgs ...string) {
	t.Helper()
	var ds appsv1.DaemonSet
	m.get(t, "DaemonSet", name, &ds)
	ps := ds.Spec.Template.Spec
	if !ps.HostNetwork || ps.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("speaker hostNetwork=%v dnsPolicy=%s, want true and ClusterFirstWithHostNet", ps.HostNetwork, ps.DNSPolicy)
	}
	tolerated := false
	for _, tol := range ps.Tolerations {
		if tol.Key == "node-role.kubernetes.io/control-plane" && tol.Operator == corev1.TolerationOpExists && tol.Effect == corev1.TaintEffectNoSchedule {
			tolerated = true
		}
	}
	if !tolerated {
		t.Errorf("speaker does not tolerate control-plane nodes: %+v", ps.Tolerations)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("speaker has %d containers, want 1", len(ps.Containers))
	}
	c := ps.Containers[0]
	if c.Image != defaultImage {
		t.Errorf("speaker image = %s, want %s", c.Image, defaultImage)
	}
	args := containerArgs(c)
	for _, want := range append([]string{"/speaker", "--node-name=$(NODE_NAME)", "--namespace=$(HERALD_NAMESPACE)",
		"--metrics-bind-address=[$(POD_IP)]:7474", "--health-probe-bind-address=[$(POD_IP)]:7475"}, wantArgs...) {
		if !slices.Contains(args, want) {
			t.Errorf("speaker args %q lack %q", args, want)
		}
	}
	checkEnvFromField(t, "speaker", c, "NODE_NAME", "spec.nodeName")
	checkEnvFromField(t, "speaker", c, "HERALD_NAMESPACE", "metadata.namespace")
	checkEnvFromField(t, "speaker", c, "POD_IP", "status.podIP")
	checkBindsPodIP(t, c)
	checkProbes(t, "speaker", c, 7475)
	checkResources(t, "speaker", c)
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged != nil && *sc.Privileged || sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Fatalf("speaker container securityContext = %+v, want read-only root, unprivileged, all capabilities dropped", sc)
	}
	if got := capsAdded(c); !reflect.DeepEqual(got, wantCaps) {
		t.Errorf("speaker capabilities = %v, want %v", got, wantCaps)
	}
	if ps.ServiceAccountName != name {
		t.Errorf("speaker service account = %q, want %q", ps.ServiceAccountName, name)
	}
}

// checkBindsPodIP proves that the speaker's endpoint addresses, as the
// kubelet expands $(POD_IP) on an IPv4 and on an IPv6 node, are ones Go
// listens on (the binaries hand them to net.Listen unchanged), and only there.
func checkBindsPodIP(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, a := range c.Args {
		flag, v, _ := strings.Cut(a, "=")
		if flag != "--metrics-bind-address" && flag != "--health-probe-bind-address" {
			continue
		}
		for _, ip := range []string{"127.0.0.1", "::1"} {
			addr := strings.ReplaceAll(v, "$(POD_IP)", ip)
			host, _, err := net.SplitHostPort(addr)
			if err != nil || host != ip {
				t.Errorf("%s on a node with IP %s is %q: host %q, error %v", flag, ip, addr, host, err)
				continue
			}
			l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				t.Errorf("%s on a node with IP %s: %v", flag, ip, err)
				continue
			}
			_ = l.Close()
		}
	}
}

func checkEnvFromField(t *testing.T, who string, c corev1.Container, name, field string) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == field {
			return
		}
	}
	t.Errorf("%s: env %s does not come from %s: %+v", who, name, field, c.Env)
}

func checkProbes(t *testing.T, who string, c corev1.Container, port int32) {
	t.Helper()
	named := map[string]int32{}
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
	}
	for kind, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != kind {
			t.Errorf("%s: probe for %s = %+v", who, kind, p)
			continue
		}
		got := p.HTTPGet.Port.IntVal
		if p.HTTPGet.Port.StrVal != "" {
			got = named[p.HTTPGet.Port.StrVal]
		}
		if got != port {
			t.Errorf("%s: %s probe on port %v (%d), want %d", who, kind, p.HTTPGet.Port.String(), got, port)
		}
	}
}

func checkResources(t *testing.T, who string, c corev1.Container) {
	t.Helper()
	r := c.Resources
	for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := r.Requests[n]; !ok {
			t.Errorf("%s: no %s request", who, n)
		}
		if _, ok := r.Limits[n]; !ok {
			t.Errorf("%s: no %s limit", who, n)
		}
	}
}

// crdFiles reads the CRD files (lb.herald.dev_*.yaml) of a directory by name.
func crdFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "lb.herald.dev_*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(f)] = b
	}
	return m
}

// TestDeployCRDCopiesMatch keeps the two copies of deploy/crds (the kustomize
// base's and the Helm chart's: neither tool loads files from outside its own
// directory) byte for byte equal to the generated originals.
func TestDeployCRDCopiesMatch(t *testing.T) {
	dir := deployDir(t)
	want := crdFiles(t, filepath.Join(dir, "crds"))
	if len(want) < 8 {
		t.Fatalf("deploy/crds holds %d files, want at least 8", len(want))
	}
	for _, copyDir := range []string{"base/crds", "helm/herald/crds"} {
		got := crdFiles(t, filepath.Join(dir, copyDir))
		for name, b := range want {
			if g, ok := got[name]; !ok {
				t.Errorf("deploy/%s lacks %s: run make sync-crds", copyDir, name)
			} else if !bytes.Equal(g, b) {
				t.Errorf("deploy/%s/%s differs from deploy/crds/%s: run make sync-crds", copyDir, name, name)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("deploy/%s/%s is not in deploy/crds: run make sync-crds", copyDir, name)
			}
		}
	}
}

// checkRenderedCRDs checks that an install carries every CRD of deploy/crds
// unchanged.
func checkRenderedCRDs(t *testing.T, m manifests) {
	t.Helper()
	want := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for name, b := range crdFiles(t, filepath.Join(deployDir(t), "crds")) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(b, crd); err != nil {
			t.Fatalf("deploy/crds/%s: %v", name, err)
		}
		want[crd.Name] = crd
	}
	got := 0
	for _, u := range m.objs {
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		got++
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
			t.Fatal(err)
		}
		w, ok := want[crd.Name]
		if !ok {
			t.Errorf("CRD %s is not in deploy/crds", crd.Name)
			continue
		}
		if !reflect.DeepEqual(crd.Spec, w.Spec) {
			t.Errorf("CRD %s differs from deploy/crds", crd.Name)
		}
		delete(want, crd.Name)
	}
	for name := range want {
		t.Errorf("CRD %s of deploy/crds is not installed: run make sync-crds", name)
	}
	if got == 0 {
		t.Errorf("no CRDs rendered")
	}
}

func checkNamespaced(t *testing.T, m manifests, ns string) {
	t.Helper()
	clusterScoped := map[string]bool{"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true}
	for _, u := range m.objs {
		if clusterScoped[u.GetKind()] {
			continue
		}
		if u.GetNamespace() != ns {
			t.Errorf("%s %s is in namespace %q, want %q", u.GetKind(), u.GetName(), u.GetNamespace(), ns)
		}
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, u := range m.objs {
			if u.GetKind() != kind {
				continue
			}
			var b rbacv1.RoleBinding // the subjects of both kinds decode alike
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
				t.Fatal(err)
			}
			for _, s := range b.Subjects {
				if s.Kind == "ServiceAccount" && s.Namespace != ns {
					t.Errorf("%s %s binds ServiceAccount %s/%s, want namespace %s", kind, u.GetName(), s.Namespace, s.Name, ns)
				}
			}
		}
	}
}

// TestDeployKustomize renders deploy/ and each overlay with kubectl's
// kustomize, checks the workloads' contract, and applies the result to the
// apiserver with a server-side dry run (schema, CEL rules and admission).
func TestDeployKustomize(t *testing.T) {
	all := []string{"NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"}
	cases := []struct {
		dir      string
		caps     []string
		args     []string
		noArgs   []string
		extraObj []string // Kind/name beyond the base's
	}{
		{dir: ".", caps: all, noArgs: []string{"--layer2=false", "--bgp=false"}},
		{dir: "overlays/l2-only", caps: []string{"NET_ADMIN", "NET_RAW"}, args: []string{"--bgp=false"}, noArgs: []string{"--layer2=false"}},
		{dir: "overlays/bgp", caps: []string{"NET_ADMIN", "NET_BIND_SERVICE"}, args: []string{"--layer2=false"}, noArgs: []string{"--bgp=false"},
			extraObj: []string{"IPAddressPool/bgp-pool", "BGPPeer/tor", "BGPAdvertisement/bgp-pool"}},
	}
	base := kustomize(t, filepath.Join(deployDir(t), "base"))
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.dir, "/", "_"), func(t *testing.T) {
			m := kustomize(t, filepath.Join(deployDir(t), tc.dir))
			checkRenderedCRDs(t, m)
			checkNamespaced(t, m, heraldNamespace)
			checkController(t, m, "herald-controller", "--leader-elect", "--memberlist-secret=herald-memberlist")
			checkSpeaker(t, m, "herald-speaker", tc.caps, append([]string{"--memberlist-secret=herald-memberlist"}, tc.args...)...)
			var ds appsv1.DaemonSet
			m.get(t, "DaemonSet", "herald-speaker", &ds)
			for _, a := range tc.noArgs {
				if slices.Contains(ds.Spec.Template.Spec.Containers[0].Args, a) {
					t.Errorf("speaker args hold %q", a)
				}
			}
			var ns corev1.Namespace
			m.get(t, "Namespace", heraldNamespace, &ns)
			if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
				t.Errorf("namespace labels %v: the speaker needs pod-security.kubernetes.io/enforce=privileged", ns.Labels)
			}
			for _, svc := range []string{"herald-controller-metrics", "herald-speaker-metrics"} {
				if m.find("Service", svc) == nil {
					t.Errorf("no metrics Service %s", svc)
				}
			}
			for _, ko := range tc.extraObj {
				kind, name, _ := strings.Cut(ko, "/")
				if m.find(kind, name) == nil {
					t.Errorf("%s lacks %s", tc.dir, ko)
				}
			}
			if want := len(base.objs) + len(tc.extraObj); len(m.objs) != want {
				t.Errorf("%s renders %d objects, want %d (the base's and %v)", tc.dir, len(m.objs), want, tc.extraObj)
			}
			out := dryRunApply(t, tc.dir, m.yaml)
			for _, want := range []string{"deployment.apps/herald-controller", "daemonset.apps/herald-speaker", "clusterrole.rbac.authorization.k8s.io/herald-speaker"} {
				if !strings.Contains(out, want) {
					t.Errorf("dry-run apply output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// podSecurityViolations applies one workload with a dry run into a namespace
// that warns at the given Pod Security level and returns the names of the
// checks it fails (e.g. "host namespaces").
func podSecurityViolations(t *testing.T, obj *unstructured.Unstructured, level string) []string {
	t.Helper()
	ns := "herald-pss-" + level
	ensureNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/warn": level, "pod-security.kubernetes.io/warn-version": "latest"})
	o := obj.DeepCopy()
	o.SetNamespace(ns)
	data, err := yaml.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	out := dryRunApply(t, o.GetKind()+" in "+ns, data)
	_, warning, found := strings.Cut(out, fmt.Sprintf("would violate PodSecurity %q: ", level+":latest"))
	if !found {
		return nil
	}
	warning, _, _ = strings.Cut(warning, "\n")
	var names []string
	for _, m := range regexp.MustCompile(`(?:^|\), )([a-zA-Z][a-zA-Z -]*?) \(`).FindAllStringSubmatch(warning, -1) {
		names = append(names, m[1])
	}
	sort.Strings(names)
	return names
}

// TestDeployPodSecurity asks the apiserver's Pod Security admission what it
// thinks of the workloads: the controller passes "restricted", and the
// speaker departs from "baseline" only where announcing needs it.
func TestDeployPodSecurity(t *testing.T) {
	m := kustomize(t, deployDir(t))
	if v := podSecurityViolations(t, m.find("Deployment", "herald-controller"), "restricted"); len(v) > 0 {
		t.Errorf("controller violates the restricted Pod Security level: %v", v)
	}
	want := []string{"host namespaces", "non-default capabilities"}
	if v := podSecurityViolations(t, m.find("DaemonSet", "herald-speaker"), "baseline"); !reflect.DeepEqual(v, want) {
		t.Errorf("speaker's baseline Pod Security violations = %v, want exactly %v (hostNetwork, NET_RAW and NET_ADMIN)", v, want)
	}
}

// chartDir is the Helm chart's directory.
func chartDir(t *testing.T) string { return filepath.Join(deployDir(t), "helm", "herald") }

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	chrt, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return chrt
}

// renderChart renders the chart as `helm template lb deploy/helm/herald
// -n herald-helm` would, with the values given (merged over values.yaml and
// checked against values.schema.json).
func renderChart(t *testing.T, vals map[string]any) (manifests, error) {
	t.Helper()
	return renderChartWith(t, vals, engine.Render)
}

// renderChartWith renders with the given engine function, e.g. one whose
// lookup reaches the cluster as during `helm upgrade`.
func renderChartWith(t *testing.T, vals map[string]any, render func(*chart.Chart, chartutil.Values) (map[string]string, error)) (manifests, error) {
	t.Helper()
	chrt := loadChart(t)
	opts := chartutil.ReleaseOptions{Name: helmRelease, Namespace: helmNamespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(chrt, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return manifests{}, err
	}
	files, err := render(chrt, rv)
	if err != nil {
		return manifests{}, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") || strings.TrimSpace(files[name]) == "" {
			continue // NOTES.txt, _helpers.tpl, templates that rendered nothing
		}
		fmt.Fprintf(&buf, "---\n# Source: %s\n%s\n", name, files[name])
	}
	m := manifests{yaml: buf.Bytes(), objs: decodeObjects(t, "chart", buf.Bytes())}
	// Helm installs crds/ before the templates; add them as an install would.
	for _, f := range chrt.CRDObjects() {
		m.objs = append(m.objs, decodeObjects(t, f.Filename, f.File.Data)...)
	}
	return m, nil
}

func mustRenderChart(t *testing.T, vals map[string]any) manifests {
	t.Helper()
	m, err := renderChart(t, vals)
	if err != nil {
		t.Fatalf("render chart with %v: %v", vals, err)
	}
	return m
}

// values builds Helm values from YAML.
func values(t *testing.T, s string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test values %q: %v", s, err)
	}
	return v
}

// TestDeployHelmChart renders the chart with the Helm library (the same
// engine and schema validation `helm install` uses), checks it against the
// same contract as the kustomize install, and applies it with a server-side
// dry run.
func TestDeployHelmChart(t *testing.T) {
	chrt := loadChart(t)
	// The apiserver under test must satisfy the chart's kubeVersion, and the
	// chart's default image must be the kustomize base's.
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !chartutil.IsCompatibleRange(chrt.Metadata.KubeVersion, sv.GitVersion) {
		t.Errorf("chart kubeVersion %q excludes the apiserver under test (%s)", chrt.Metadata.KubeVersion, sv.GitVersion)
	}
	if got := "ghcr.io/herald-lb/herald:v" + chrt.Metadata.AppVersion; got != defaultImage {
		t.Errorf("chart appVersion gives image %s, the kustomize base %s", got, defaultImage)
	}

	m := mustRenderChart(t, nil)
	checkRenderedCRDs(t, m)
	checkNamespaced(t, m, helmNamespace)
	checkController(t, m, helmFullname+"-controller", "--leader-elect=true", "--memberlist-secret="+helmFullname+"-memberlist")
	checkSpeaker(t, m, helmFullname+"-speaker", []string{"NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"},
		"--layer2=true", "--bgp=true", "--bgp-listen-port=179", "--memberlist=true", "--memberlist-port=7946", "--memberlist-secret="+helmFullname+"-memberlist")
	for _, svc := range []string{helmFullname + "-controller-metrics", helmFullname + "-speaker-metrics"} {
		if m.find("Service", svc) == nil {
			t.Errorf("no metrics Service %s", svc)
		}
	}
	var sec corev1.Secret
	m.get(t, "Secret", helmFullname+"-memberlist", &sec)
	if n := len(sec.Data["secretkey"]); n != 32 {
		t.Errorf("memberlist key is %d bytes, want 32 (the speaker takes 16, 24 or 32)", n)
	}

	ensureNamespace(t, helmNamespace, map[string]string{"pod-security.kubernetes.io/enforce": "privileged"})
	out := dryRunApply(t, "chart", m.yaml)
	for _, want := range []string{"deployment.apps/" + helmFullname + "-controller", "daemonset.apps/" + helmFullname + "-speaker", "secret/" + helmFullname + "-memberlist"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run apply output lacks %q:\n%s", want, out)
		}
	}
}

// TestDeployHelmValues checks what each knob of values.yaml does to the
// rendered manifests.
func TestDeployHelmValues(t *testing.T) {
	speakerOf := func(t *testing.T, m manifests) corev1.Container {
		var ds appsv1.DaemonSet
		m.get(t, "DaemonSet", helmFullname+"-speaker", &ds)
		return ds.Spec.Template.Spec.Containers[0]
	}
	controllerOf := func(t *testing.T, m manifests) appsv1.Deployment {
		var d appsv1.Deployment
		m.get(t, "Deployment", helmFullname+"-controller", &d)
		return d
	}

	t.Run("layer 2 only drops NET_BIND_SERVICE", func(t *testing.T) {
		c := speakerOf(t, mustRenderChart(t, values(t, `speaker: {bgp: false}`)))
		if got := capsAdded(c); !reflect.DeepEqual(got, []string{"NET_ADMIN", "NET_RAW"}) {
			t.Errorf("capabilities = %v", got)
		}
		if !slices.Contains(c.Args, "--bgp=false") || slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--bgp-listen-port") }) {
			t.Errorf("args = %q", c.Args)
		}
	})
	t.Run("BGP only drops NET_RAW", func(t *testing.T) {
		c := speakerOf(t, mustRenderChart(t, values(t, `speaker: {layer2: false}`)))
		if got := capsAdded(c); !reflect.DeepEqual(got, []string{"NET_ADMIN", "NET_BIND_SERVICE"}) {
			t.Errorf("capabilities = %v", got)
		}
		if !slices.Contains(c.Args, "--layer2=false") {
			t.Errorf("args = %q", c.Args)
		}
	})
	t.Run("a high BGP port needs no NET_BIND_SERVICE", func(t *testing.T) {
		c := speakerOf(t, mustRenderChart(t, values(t, `speaker: {bgpListenPort: 1179}`)))
		if got := capsAdded(c); !reflect.DeepEqual(got, []string{"NET_ADMIN", "NET_RAW"}) {
			t.Errorf("capabilities = %v", got)
		}
		if !slices.Contains(c.Args, "--bgp-listen-port=1179") {
			t.Errorf("args = %q", c.Args)
		}
	})
	t.Run("memberlist off", func(t *testing.T) {
		m := mustRenderChart(t, values(t, `speaker: {memberlist: {enabled: false}}`))
		if m.find("Secret", helmFullname+"-memberlist") != nil {
			t.Errorf("memberlist Secret rendered with memberlist off")
		}
		c := speakerOf(t, m)
		if !slices.Contains(c.Args, "--memberlist=false") || slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--memberlist-secret") }) {
			t.Errorf("args = %q", c.Args)
		}
		// Nor does the controller create one, or get the right to.
		if args := controllerOf(t, m).Spec.Template.Spec.Containers[0].Args; slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--memberlist-secret") }) {
			t.Errorf("controller args = %q", args)
		}
		var role rbacv1.Role
		m.get(t, "Role", helmFullname+"-controller", &role)
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "secrets") {
				t.Errorf("controller may %v secrets with memberlist off", r.Verbs)
			}
		}
	})
	t.Run("own memberlist Secret", func(t *testing.T) {
		m := mustRenderChart(t, values(t, `speaker: {memberlist: {createSecret: false, secretName: gossip-key}}`))
		if m.find("Secret", helmFullname+"-memberlist") != nil || m.find("Secret", "gossip-key") != nil {
			t.Errorf("a memberlist Secret was rendered with createSecret false")
		}
		if c := speakerOf(t, m); !slices.Contains(c.Args, "--memberlist-secret=gossip-key") {
			t.Errorf("args = %q", c.Args)
		}
		// The controller still creates it when it is missing at its start.
		if args := controllerOf(t, m).Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--memberlist-secret=gossip-key") {
			t.Errorf("controller args = %q", args)
		}
	})
	t.Run("lbClass, logLevel and extraArgs reach both binaries", func(t *testing.T) {
		m := mustRenderChart(t, values(t, `{lbClass: example.com/herald, logLevel: debug, controller: {extraArgs: ["--kube-api-qps=50"]}, speaker: {extraArgs: ["--announce-refresh-interval=1m"]}}`))
		d := controllerOf(t, m)
		s := speakerOf(t, m)
		for who, want := range map[string][]string{"controller": {"--lb-class=example.com/herald", "--log-level=debug", "--kube-api-qps=50"},
			"speaker": {"--lb-class=example.com/herald", "--log-level=debug", "--announce-refresh-interval=1m"}} {
			args := d.Spec.Template.Spec.Containers[0].Args
			if who == "speaker" {
				args = s.Args
			}
			for _, w := range want {
				if !slices.Contains(args, w) {
					t.Errorf("%s args %q lack %q", who, args, w)
				}
			}
		}
	})
	t.Run("image, replicas, scheduling, metrics", func(t *testing.T) {
		m := mustRenderChart(t, values(t, `
image: {repository: registry.example/herald, tag: v9.9.9}
controller: {replicas: 3, nodeSelector: {pool: infra}, tolerations: [{key: infra, operator: Exists}]}
speaker: {nodeSelector: {lb: "true"}, tolerations: [], resources: {limits: {memory: 1Gi}}}
metrics: {enabled: false}`))
		d := controllerOf(t, m)
		if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.NodeSelector["pool"] != "infra" || len(d.Spec.Template.Spec.Tolerations) != 1 {
			t.Errorf("controller replicas %d nodeSelector %v tolerations %v", *d.Spec.Replicas, d.Spec.Template.Spec.NodeSelector, d.Spec.Template.Spec.Tolerations)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example/herald:v9.9.9" {
			t.Errorf("image = %s", img)
		}
		var ds appsv1.DaemonSet
		m.get(t, "DaemonSet", helmFullname+"-speaker", &ds)
		if ds.Spec.Template.Spec.NodeSelector["lb"] != "true" || len(ds.Spec.Template.Spec.Tolerations) != 0 {
			t.Errorf("speaker nodeSelector %v tolerations %v", ds.Spec.Template.Spec.NodeSelector, ds.Spec.Template.Spec.Tolerations)
		}
		if mem := ds.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); mem != "1Gi" {
			t.Errorf("speaker memory limit = %s", mem)
		}
		for _, u := range m.objs {
			if u.GetKind() == "Service" {
				t.Errorf("metrics off still renders Service %s", u.GetName())
			}
		}
	})

	rejected := []struct{ name, values, msg string }{
		{"several active controllers", `controller: {replicas: 2, leaderElect: false}`, "needs controller.leaderElect=true"},
		{"a speaker with nothing to do", `speaker: {layer2: false, bgp: false}`, "would announce nothing"},
		{"replicas not a number", `controller: {replicas: two}`, "at '/controller/replicas': got string, want integer"},
		{"misspelt key", `controller: {replica: 2}`, "additional properties 'replica' not allowed"},
		{"unknown log level", `logLevel: verbose`, "at '/logLevel'"},
		{"extra argument without dashes", `speaker: {extraArgs: ["layer2=false"]}`, "at '/speaker/extraArgs/0'"},
		{"memberlist port out of range", `speaker: {memberlist: {port: 70000}}`, "at '/speaker/memberlist/port'"},
	}
	for _, tc := range rejected {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			_, err := renderChart(t, values(t, tc.values))
			if err == nil {
				t.Fatalf("values %s rendered", tc.values)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("values %s: error %q does not mention %q", tc.values, err, tc.msg)
			}
		})
	}
}

// TestDeployHelmKeepsMemberlistKey renders the chart with lookup reaching the
// cluster, as `helm upgrade` does: an existing key is kept, since a new one
// mid-rollout would split old and new speakers into two memberlist clusters.
func TestDeployHelmKeepsMemberlistKey(t *testing.T) {
	ctx := testContext(t)
	ensureNamespace(t, helmNamespace, map[string]string{"pod-security.kubernetes.io/enforce": "privileged"})
	key := []byte("0123456789abcdef0123456789abcdef")
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: helmFullname + "-memberlist", Namespace: helmNamespace},
		Data: map[string][]byte{"secretkey": key}}
	if err := env.Client.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(testContext(t), sec) })
	m, err := renderChartWith(t, nil, func(c *chart.Chart, v chartutil.Values) (map[string]string, error) {
		return engine.RenderWithClient(c, v, env.Config)
	})
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Secret
	m.get(t, "Secret", helmFullname+"-memberlist", &got)
	if !bytes.Equal(got.Data["secretkey"], key) {
		t.Errorf("upgrade renders memberlist key %q, want the existing %q", got.Data["secretkey"], key)
	}
	// Without the cluster (helm template, GitOps renderers) each render makes
	// a new random key.
	a, b := mustRenderChart(t, nil), mustRenderChart(t, nil)
	var sa, sb corev1.Secret
	a.get(t, "Secret", helmFullname+"-memberlist", &sa)
	b.get(t, "Secret", helmFullname+"-memberlist", &sb)
	if bytes.Equal(sa.Data["secretkey"], sb.Data["secretkey"]) {
		t.Errorf("two renders made the same key %q", base64.StdEncoding.EncodeToString(sa.Data["secretkey"]))
	}
}

// access is one question to the authorizer: may this component do this?
type access struct {
	allowed                    bool
	verb, group, resource, sub string
	namespace                  string // "" cluster-wide, own = the install's namespace
	name                       string
	why                        string
}

const own = "<own>"

// controllerAccess is what the controller must and must not be allowed to do.
var controllerAccess = []access{
	{true, "list", "", "services", "", "", "", "watch every Service"},
	{true, "watch", "", "services", "", "", "", "watch every Service"},
	{true, "get", "", "services", "", "default", "web", ""},
	{true, "patch", "", "services", "", "default", "web", "annotation and finalizer"},
	{true, "patch", "", "services", "status", "default", "web", "status.loadBalancer"},
	{true, "list", "", "namespaces", "", "", "", "namespace selectors"},
	{true, "watch", "", "namespaces", "", "", "", "namespace selectors"},
	{true, "list", "networking.k8s.io", "servicecidrs", "", "", "", "pool overlap condition"},
	{true, "watch", "networking.k8s.io", "servicecidrs", "", "", "", "pool overlap condition"},
	{true, "create", "", "events", "", "default", "", "Events on Services"},
	{true, "patch", "", "events", "", "default", "", "Events on Services"},
	{true, "create", "events.k8s.io", "events", "", "default", "", "Events on Services"},
	{true, "patch", "events.k8s.io", "events", "", "default", "", "Events on Services"},
	{true, "list", "lb.herald.dev", "ipaddresspools", "", own, "", "configuration"},
	{true, "watch", "lb.herald.dev", "ipaddresspools", "", own, "", "configuration"},
	{true, "list", "lb.herald.dev", "l2advertisements", "", own, "", "configuration"},
	{true, "watch", "lb.herald.dev", "bgpadvertisements", "", own, "", "configuration"},
	{true, "list", "lb.herald.dev", "bgppeers", "", own, "", "configuration"},
	{true, "watch", "lb.herald.dev", "communities", "", own, "", "configuration"},
	{true, "list", "lb.herald.dev", "bfdprofiles", "", own, "", "configuration"},
	{true, "patch", "lb.herald.dev", "ipaddresspools", "status", own, "pool-a", "pool status"},
	{true, "create", "coordination.k8s.io", "leases", "", own, "", "leader election"},
	{true, "get", "coordination.k8s.io", "leases", "", own, "herald-controller", "leader election"},
	{true, "update", "coordination.k8s.io", "leases", "", own, "herald-controller", "leader election"},
	{true, "create", "", "secrets", "", own, "", "the memberlist Secret when missing"},

	{false, "delete", "", "services", "", "default", "web", "never deletes Services"},
	{false, "create", "", "services", "", "default", "", "never creates Services"},
	{false, "update", "", "services", "", "default", "web", "patches only"},
	{false, "update", "", "services", "status", "default", "web", "patches only"},
	{false, "get", "", "secrets", "", own, "herald-memberlist", "reads no Secret"},
	{false, "list", "", "secrets", "", own, "", "reads no Secret"},
	{false, "list", "", "secrets", "", "", "", "reads no Secret"},
	{false, "get", "", "secrets", "", "default", "x", "reads no Secret"},
	{false, "update", "", "secrets", "", own, "herald-memberlist", "never changes an existing Secret"},
	{false, "patch", "", "secrets", "", own, "herald-memberlist", "never changes an existing Secret"},
	{false, "delete", "", "secrets", "", own, "herald-memberlist", "never changes an existing Secret"},
	{false, "create", "", "secrets", "", "default", "", "creates Secrets in its own namespace only"},
	{false, "create", "", "secrets", "", "", "", "creates Secrets in its own namespace only"},
	{false, "list", "", "nodes", "", "", "", "the speaker's business"},
	{false, "list", "discovery.k8s.io", "endpointslices", "", "", "", "the speaker's business"},
	{false, "list", "", "pods", "", "", "", "no use for Pods"},
	{false, "update", "", "namespaces", "", "", "default", "reads namespaces only"},
	{false, "create", "lb.herald.dev", "ipaddresspools", "", own, "", "configuration is the user's"},
	{false, "update", "lb.herald.dev", "ipaddresspools", "", own, "pool-a", "configuration is the user's"},
	{false, "delete", "lb.herald.dev", "bgppeers", "", own, "tor", "configuration is the user's"},
	{false, "list", "lb.herald.dev", "ipaddresspools", "", "", "", "configuration lives in its own namespace"},
	{false, "list", "lb.herald.dev", "ipaddresspools", "", "default", "", "configuration lives in its own namespace"},
	{false, "create", "lb.herald.dev", "servicel2statuses", "", own, "", "the speaker's objects"},
	{false, "get", "coordination.k8s.io", "leases", "", own, "someone-else", "only its own Lease"},
	{false, "update", "coordination.k8s.io", "leases", "", own, "someone-else", "only its own Lease"},
	{false, "create", "coordination.k8s.io", "leases", "", "kube-system", "", "only its own namespace"},
	{false, "delete", "", "events", "", "default", "", "writes Events only"},
	{false, "create", "networking.k8s.io", "servicecidrs", "", "", "", "reads service CIDRs only"},
}

// speakerAccess is what the speaker must and must not be allowed to do.
var speakerAccess = []access{
	{true, "list", "", "services", "", "", "", "Services to announce"},
	{true, "watch", "", "services", "", "", "", "Services to announce"},
	{true, "get", "", "services", "", "default", "web", "Services to announce"},
	{true, "list", "discovery.k8s.io", "endpointslices", "", "", "", "ready endpoints"},
	{true, "watch", "discovery.k8s.io", "endpointslices", "", "", "", "ready endpoints"},
	{true, "get", "", "nodes", "", "", "node-1", "its own Node"},
	{true, "list", "", "nodes", "", "", "", "eligible nodes, memberlist peers"},
	{true, "watch", "", "nodes", "", "", "", "eligible nodes, memberlist peers"},
	{true, "list", "lb.herald.dev", "ipaddresspools", "", own, "", "configuration"},
	{true, "watch", "lb.herald.dev", "l2advertisements", "", own, "", "configuration"},
	{true, "list", "lb.herald.dev", "bgpadvertisements", "", own, "", "configuration"},
	{true, "watch", "lb.herald.dev", "bgppeers", "", own, "", "configuration"},
	{true, "list", "lb.herald.dev", "communities", "", own, "", "configuration"},
	{true, "watch", "lb.herald.dev", "bfdprofiles", "", own, "", "configuration"},
	{true, "get", "", "secrets", "", own, "herald-memberlist", "memberlist key"},
	{true, "list", "", "secrets", "", own, "", "BGP passwords"},
	{true, "watch", "", "secrets", "", own, "", "BGP passwords"},
	{true, "get", "", "secrets", "", own, "tor-password", "BGP passwords: any name a BGPPeer gives (deploy/README.md, Permissions)"},
	{true, "create", "lb.herald.dev", "servicel2statuses", "", own, "", "status objects"},
	{true, "delete", "lb.herald.dev", "servicel2statuses", "", own, "x", "status objects"},
	{true, "list", "lb.herald.dev", "servicel2statuses", "", own, "", "status objects"},
	{true, "update", "lb.herald.dev", "servicel2statuses", "status", own, "x", "status objects"},
	{true, "create", "lb.herald.dev", "servicebgpstatuses", "", own, "", "status objects"},
	{true, "delete", "lb.herald.dev", "servicebgpstatuses", "", own, "x", "status objects"},
	{true, "watch", "lb.herald.dev", "servicebgpstatuses", "", own, "", "status objects"},
	{true, "update", "lb.herald.dev", "servicebgpstatuses", "status", own, "x", "status objects"},

	{false, "patch", "", "services", "status", "default", "web", "the controller's job"},
	{false, "update", "", "services", "status", "default", "web", "the controller's job"},
	{false, "patch", "", "services", "", "default", "web", "never writes Services"},
	{false, "delete", "", "services", "", "default", "web", "never writes Services"},
	{false, "get", "", "secrets", "", "default", "x", "Secrets outside its namespace"},
	{false, "get", "", "secrets", "", "kube-system", "x", "Secrets outside its namespace"},
	{false, "list", "", "secrets", "", "", "", "Secrets cluster-wide"},
	{false, "watch", "", "secrets", "", "", "", "Secrets cluster-wide"},
	{false, "create", "", "secrets", "", own, "", "reads Secrets only"},
	{false, "update", "", "secrets", "", own, "herald-memberlist", "reads Secrets only"},
	{false, "delete", "", "secrets", "", own, "herald-memberlist", "reads Secrets only"},
	{false, "create", "lb.herald.dev", "servicel2statuses", "", "default", "", "status objects in its own namespace only"},
	{false, "list", "lb.herald.dev", "ipaddresspools", "", "", "", "configuration in its own namespace only"},
	{false, "patch", "lb.herald.dev", "ipaddresspools", "status", own, "pool-a", "the controller's job"},
	{false, "update", "lb.herald.dev", "ipaddresspools", "", own, "pool-a", "configuration is the user's"},
	{false, "create", "lb.herald.dev", "bgppeers", "", own, "", "configuration is the user's"},
	{false, "patch", "", "nodes", "", "", "node-1", "reads Nodes only"},
	{false, "update", "", "nodes", "status", "", "node-1", "reads Nodes only"},
	{false, "create", "coordination.k8s.io", "leases", "", own, "", "elects no leader"},
	{false, "list", "", "namespaces", "", "", "", "no use for namespaces"},
	{false, "list", "", "pods", "", "", "", "no use for Pods"},
	{false, "create", "", "events", "", "default", "", "writes no Events (it logs)"},
	{false, "patch", "", "events", "", "default", "", "writes no Events (it logs)"},
	{false, "create", "events.k8s.io", "events", "", "default", "", "writes no Events (it logs)"},
	{false, "create", "", "events", "", own, "", "writes no Events (it logs)"},
}

// rbacKinds are the kinds applied for real to test authorization.
var rbacKinds = map[string]bool{"ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true}

// installRBAC creates an install's ServiceAccounts, roles and bindings in the
// test apiserver and removes them when the test ends.
func installRBAC(t *testing.T, m manifests) {
	t.Helper()
	ctx := testContext(t)
	for _, u := range m.objs {
		if !rbacKinds[u.GetKind()] {
			continue
		}
		obj := u.DeepCopy()
		if err := env.Client.Create(ctx, obj, strict); err != nil {
			t.Fatalf("create %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		t.Cleanup(func() {
			if err := env.Client.Delete(testContext(t), obj); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
		})
	}
}

// allowed asks the apiserver's authorizer, as a SubjectAccessReview, whether
// a ServiceAccount (with the groups its token carries) may do a.
func allowed(t *testing.T, ns, sa string, a access) (bool, string) {
	t.Helper()
	target := a.namespace
	if target == own {
		target = ns
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: target, Verb: a.verb, Group: a.group,
			Resource: a.resource, Subresource: a.sub, Name: a.name},
	}}
	if err := env.Client.Create(testContext(t), sar); err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return sar.Status.Allowed, sar.Status.Reason
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.sub != "" {
		r += "/" + a.sub
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	if a.name != "" {
		r += " " + a.name
	}
	return fmt.Sprintf("%s %s %s", a.verb, r, where)
}

// checkAccess installs an install's RBAC for real and puts every question of
// the two tables to the authorizer.
func checkAccess(t *testing.T, m manifests, ns, prefix string) {
	installRBAC(t, m)
	controller, speaker := prefix+"-controller", prefix+"-speaker"
	// The authorizer sees new bindings through an informer: wait for them.
	deadline := time.Now().Add(15 * time.Second)
	for {
		okC, _ := allowed(t, ns, controller, controllerAccess[0])
		okS, _ := allowed(t, ns, speaker, speakerAccess[0])
		if okC && okS {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bindings of %s never took effect", prefix)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for who, table := range map[string][]access{controller: controllerAccess, speaker: speakerAccess} {
		for _, a := range table {
			if a.namespace == own {
				a.namespace = ns
			}
			got, reason := allowed(t, ns, who, a)
			switch {
			case a.allowed && !got:
				t.Errorf("%s may not %s, but must (%s); authorizer: %s", who, a, a.why, reason)
			case !a.allowed && got:
				t.Errorf("%s may %s, but must not (%s); authorizer: %s", who, a, a.why, reason)
			}
		}
	}
}

// TestDeployRBAC creates the kustomize install's and the Helm chart's
// ServiceAccounts, roles and bindings in the apiserver and checks each
// component's permissions against the tables above, through the real RBAC
// authorizer.
func TestDeployRBAC(t *testing.T) {
	k := kustomize(t, deployDir(t))
	h := mustRenderChart(t, nil)
	ensureNamespace(t, helmNamespace, map[string]string{"pod-security.kubernetes.io/enforce": "privileged"})

	t.Run("kustomize", func(t *testing.T) { checkAccess(t, k, heraldNamespace, "herald") })
	t.Run("helm", func(t *testing.T) { checkAccess(t, h, helmNamespace, helmFullname) })

	// Both install methods grant the same rules.
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, comp := range []string{"controller", "speaker"} {
			var kr, hr rbacv1.ClusterRole // a Role's rules decode alike
			k.get(t, kind, "herald-"+comp, &kr)
			h.get(t, kind, helmFullname+"-"+comp, &hr)
			if !reflect.DeepEqual(kr.Rules, hr.Rules) {
				t.Errorf("%s of the %s: kustomize grants %+v, the chart %+v", kind, comp, kr.Rules, hr.Rules)
			}
		}
	}
}

// definedFlags reads the flag names a binary's main.go defines (fs.String,
// fs.BoolVar, ...): cheaper than building the binary to ask it.
func definedFlags(t *testing.T, binary string) map[string]bool {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "cmd", binary, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`fs\.[A-Za-z0-9]+\((?:&[A-Za-z0-9_.]+, )?"([a-z0-9-]+)"`).FindAllSubmatch(src, -1) {
		flags[string(m[1])] = true
	}
	if len(flags) < 5 {
		t.Fatalf("found only %d flags in cmd/%s/main.go: has the way flags are defined changed?", len(flags), binary)
	}
	return flags
}

// TestDeployFlagsExist checks that every flag the manifests pass is one the
// binary defines: Go's flag package exits on an unknown flag, which would
// show only as a crash-looping pod.
func TestDeployFlagsExist(t *testing.T) {
	defined := map[string]map[string]bool{"/controller": definedFlags(t, "controller"), "/speaker": definedFlags(t, "speaker")}
	installs := map[string]manifests{
		"helm (layer 2 only)":  mustRenderChart(t, values(t, `speaker: {bgp: false}`)),
		"helm (all flags set)": mustRenderChart(t, values(t, `{lbClass: x, speaker: {layer2: false}}`)),
	}
	for _, dir := range []string{".", "overlays/l2-only", "overlays/bgp"} {
		installs["kustomize "+dir] = kustomize(t, filepath.Join(deployDir(t), dir))
	}
	for name, m := range installs {
		for _, u := range m.objs {
			var spec corev1.PodTemplateSpec
			switch u.GetKind() {
			case "Deployment":
				var d appsv1.Deployment
				m.get(t, "Deployment", u.GetName(), &d)
				spec = d.Spec.Template
			case "DaemonSet":
				var ds appsv1.DaemonSet
				m.get(t, "DaemonSet", u.GetName(), &ds)
				spec = ds.Spec.Template
			default:
				continue
			}
			for _, c := range spec.Spec.Containers {
				flags, ok := defined[strings.Join(c.Command, " ")]
				if !ok {
					t.Errorf("%s: %s container %s runs %q, neither /controller nor /speaker", name, u.GetName(), c.Name, c.Command)
					continue
				}
				for _, a := range c.Args {
					f, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
					if !flags[f] {
						t.Errorf("%s: %s passes %q, which %s does not define", name, u.GetName(), a, c.Command[0])
					}
				}
			}
		}
	}
}

// TestDeployNetworkPolicyExample keeps deploy/examples/networkpolicy.yaml in
// step with the installs: each policy selects the pods of both the kustomize
// and the Helm install, admits every port those pods serve (only the
// controller's probe port is left to the kubelet, which plugins admit from the
// node), admits nothing they do not serve besides BGP and BFD, and applies to
// the apiserver.
func TestDeployNetworkPolicyExample(t *testing.T) {
	path := filepath.Join(deployDir(t), "examples", "networkpolicy.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	np := manifests{yaml: data, objs: decodeObjects(t, path, data)}
	type port struct {
		n     int32
		proto corev1.Protocol
	}
	bgp := []port{{179, corev1.ProtocolTCP}, {3784, corev1.ProtocolUDP}}
	installs := map[string]manifests{"kustomize": kustomize(t, deployDir(t)), "helm": mustRenderChart(t, nil)}
	prefix := map[string]string{"kustomize": "herald", "helm": helmFullname}
	for _, tc := range []struct {
		policy, kind, component string
		kubeletOnly             []port // served, but only the kubelet needs it
		extra                   []port // admitted, though no containerPort lists it
	}{
		{"herald-controller", "Deployment", "controller", []port{{7473, corev1.ProtocolTCP}}, nil},
		{"herald-speaker", "DaemonSet", "speaker", nil, bgp},
	} {
		var pol networkingv1.NetworkPolicy
		np.get(t, "NetworkPolicy", tc.policy, &pol)
		if pol.Namespace != heraldNamespace || !slices.Equal(pol.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("%s: namespace %q policy types %v, want %s and Ingress", tc.policy, pol.Namespace, pol.Spec.PolicyTypes, heraldNamespace)
		}
		admitted := map[port]bool{}
		for _, r := range pol.Spec.Ingress {
			if len(r.From) == 0 {
				t.Errorf("%s admits %v from anywhere", tc.policy, r.Ports)
			}
			for _, p := range r.Ports {
				if p.Port == nil || p.Port.Type != intstr.Int || p.Protocol == nil {
					t.Fatalf("%s: port %+v, want a number and a protocol", tc.policy, p)
				}
				admitted[port{p.Port.IntVal, *p.Protocol}] = true
			}
		}
		sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		for name, m := range installs {
			var tmpl corev1.PodTemplateSpec
			if tc.kind == "Deployment" {
				var d appsv1.Deployment
				m.get(t, tc.kind, prefix[name]+"-"+tc.component, &d)
				tmpl = d.Spec.Template
			} else {
				var ds appsv1.DaemonSet
				m.get(t, tc.kind, prefix[name]+"-"+tc.component, &ds)
				tmpl = ds.Spec.Template
			}
			if !sel.Matches(labels.Set(tmpl.Labels)) {
				t.Errorf("%s does not select the %s pods of the %s install (labels %v)", tc.policy, tc.component, name, tmpl.Labels)
			}
			served := map[port]bool{}
			for _, cp := range tmpl.Spec.Containers[0].Ports {
				p := port{cp.ContainerPort, cp.Protocol}
				served[p] = true
				if !admitted[p] && !slices.Contains(tc.kubeletOnly, p) {
					t.Errorf("%s does not admit %s's port %s (%d/%s)", tc.policy, name, cp.Name, p.n, p.proto)
				}
			}
			for p := range admitted {
				if !served[p] && !slices.Contains(tc.extra, p) {
					t.Errorf("%s admits %d/%s, which the %s install's %s does not serve", tc.policy, p.n, p.proto, name, tc.component)
				}
			}
		}
	}
	out := dryRunApply(t, "deploy/examples/networkpolicy.yaml", data)
	for _, want := range []string{"networkpolicy.networking.k8s.io/herald-controller", "networkpolicy.networking.k8s.io/herald-speaker"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run apply output lacks %q:\n%s", want, out)
		}
	}
}
