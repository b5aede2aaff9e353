package heraldctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/pkg/migrate"
	"github.com/herald-lb/herald/test/controlplane"
)

const heraldNamespace = "herald-system"

// The control plane is started by the first test that needs it, so the
// unit tests of the package run without one, and stopped by TestMain.
var (
	envOnce sync.Once
	env     *controlplane.Env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop control plane: %v\n", err)
		}
	}
	os.Exit(code)
}

// controlPlane returns the shared dual-stack control plane with Herald's
// CRDs and namespace.
func controlPlane(t *testing.T) *controlplane.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a control plane")
	}
	envOnce.Do(func() {
		if env, envErr = controlplane.Start(controlplane.Options{}); envErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		envErr = env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: heraldNamespace}})
	})
	if envErr != nil {
		t.Fatalf("control plane: %v", envErr)
	}
	return env
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run runs heraldctl in-process and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(testContext(t), args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// strict makes the apiserver refuse unknown fields, as kubectl apply does.
var strict = client.FieldValidation(metav1.FieldValidationStrict)

func TestStatusReportsWhatTheClusterHolds(t *testing.T) {
	e := controlPlane(t)
	ctx := testContext(t)
	c := e.Client

	pool := &v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: "status-dual", Namespace: heraldNamespace},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/24", "2001:db8:1::/64"}},
	}
	mustCreate(t, ctx, c, pool)
	pool.Status = v1beta1.IPAddressPoolStatus{
		AssignedIPv4: 1, AvailableIPv4: 255, AssignedIPv6: 0, AvailableIPv6: math.MaxInt64,
		Conditions: []metav1.Condition{{Type: controller.ConditionValid, Status: metav1.ConditionTrue, Reason: controller.ReasonValid, Message: "the pool's addresses are handed out", LastTransitionTime: metav1.Now()}},
	}
	if err := c.Status().Update(ctx, pool); err != nil {
		t.Fatalf("pool status: %v", err)
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	mustCreate(t, ctx, c, ns)
	policy := corev1.IPFamilyPolicyPreferDualStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "front", Namespace: "web", Annotations: map[string]string{v1beta1.AnnotationAllocatedFromPool: "status-dual"}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, IPFamilyPolicy: &policy,
			Ports: []corev1.ServicePort{{Port: 80}},
		},
	}
	mustCreate(t, ctx, c, svc)
	if !slices.Equal(svc.Spec.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}) {
		t.Fatalf("the dual-stack apiserver gave ipFamilies %v", svc.Spec.IPFamilies)
	}
	// Status as the controller writes it for a PreferDualStack Service
	// whose pool ran out of IPv6 addresses.
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10", IPMode: new(corev1.LoadBalancerIPModeVIP)}}
	svc.Status.Conditions = []metav1.Condition{{
		Type: controller.ConditionAddressesComplete, Status: metav1.ConditionFalse, Reason: controller.ReasonSingleStackFallback,
		Message: "no IPv6 address is free in pool status-dual", ObservedGeneration: svc.Generation, LastTransitionTime: metav1.Now(),
	}}
	if err := c.Status().Update(ctx, svc); err != nil {
		t.Fatalf("service status: %v", err)
	}

	l2 := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: "web-front-node-a", Namespace: heraldNamespace}}
	mustCreate(t, ctx, c, l2)
	l2.Status = v1beta1.ServiceL2StatusStatus{Node: "node-a", ServiceName: "front", ServiceNamespace: "web", Addresses: []string{"192.0.2.10"}, Interfaces: []v1beta1.InterfaceInfo{{Name: "eth0"}}}
	if err := c.Status().Update(ctx, l2); err != nil {
		t.Fatalf("ServiceL2Status status: %v", err)
	}

	code, out, errOut := run(t, "status", "--kubeconfig", e.Kubeconfig, "-o", "json")
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, errOut)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	var got *ServiceReport
	for i := range r.Services {
		if r.Services[i].Namespace == "web" && r.Services[i].Name == "front" {
			got = &r.Services[i]
		}
	}
	if got == nil {
		t.Fatalf("web/front missing from %+v", r.Services)
	}
	want := ServiceReport{
		Namespace: "web", Name: "front", IPFamilyPolicy: "PreferDualStack", IPFamilies: []string{"IPv4", "IPv6"},
		Addresses: []string{"192.0.2.10"}, Pool: "status-dual", State: "SingleStackFallback", Message: "no IPv6 address is free in pool status-dual",
		MissingFamilies: []string{"IPv6"}, Layer2: []L2Announcement{{Node: "node-a", Interfaces: []string{"eth0"}, Addresses: []string{"192.0.2.10"}}},
		BGP: []BGPAnnouncement{},
	}
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
		t.Errorf("service:\ngot  %+v\nwant %+v", *got, want)
	}
	var p *PoolReport
	for i := range r.Pools {
		if r.Pools[i].Name == "status-dual" {
			p = &r.Pools[i]
		}
	}
	if p == nil || p.Ready != "True" || p.IPv4 == nil || p.IPv4.Assigned != 1 || p.IPv4.Available != 255 || p.IPv6 == nil || !p.IPv6.AvailableSaturated {
		t.Errorf("pool status-dual = %+v", p)
	}

	code, out, errOut = run(t, "status", "--kubeconfig", e.Kubeconfig)
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, errOut)
	}
	for _, s := range []string{"L2 node-a on eth0", "SingleStackFallback (missing IPv6): no IPv6 address is free", ">9.2e18"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}

	// Another class hides the Service, as it would from the controller.
	if _, out, _ := run(t, "status", "--kubeconfig", e.Kubeconfig, "--lb-class", "example.com/other", "-o", "json"); strings.Contains(out, `"front"`) {
		t.Errorf("--lb-class example.com/other still shows web/front:\n%s", out)
	}
}

func mustCreate(t *testing.T, ctx context.Context, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Create(ctx, o, strict); err != nil {
		t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), o)
	})
}

// TestMigratedConfigurationApplies runs heraldctl migrate on every golden
// input and creates what it writes on a real apiserver with Herald's CRDs,
// strictly: every field must exist in the schema and pass its validation.
func TestMigratedConfigurationApplies(t *testing.T) {
	e := controlPlane(t)
	inputs, err := filepath.Glob(filepath.Join("..", "..", "pkg", "migrate", "testdata", "*.input.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no migrate inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".input.yaml"), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "herald.yaml")
			code, _, errOut := run(t, "migrate", "-f", in, "-o", out)
			// An input whose result Herald's configuration check refuses
			// exits 1 but still writes the objects.
			if _, err := os.Stat(strings.TrimSuffix(in, ".input.yaml") + ".build.txt"); code != 0 && (err != nil || !strings.Contains(errOut, "error:")) {
				t.Fatalf("migrate exited %d: %s", code, errOut)
			}
			applyAll(t, e, out)
		})
	}
}

// applyAll creates every object of a YAML file, then deletes them so the
// next input starts clean.
func applyAll(t *testing.T, e *controlplane.Env, path string) {
	t.Helper()
	ctx := testContext(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs, err := migrate.ReadDocuments(f, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("migrate wrote no objects")
	}
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(d.JSON, &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := e.Client.Create(ctx, u, strict); err != nil {
			t.Errorf("create %s %s: %v", u.GetKind(), u.GetName(), err)
			continue
		}
		t.Cleanup(func() {
			if err := e.Client.Delete(context.Background(), u); err != nil {
				t.Errorf("delete %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		})
	}
}

// metallbCRD is a minimal stand-in for one of MetalLB's CRDs: enough for
// the apiserver to serve the kind, with the spec kept as written.
func metallbCRD(kind, plural string, versions ...string) *apiextensionsv1.CustomResourceDefinition {
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + ".metallb.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "metallb.io", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
		},
	}
	for i, v := range versions {
		crd.Spec.Versions = append(crd.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{
			Name: v, Served: true, Storage: i == 0,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object", XPreserveUnknownFields: new(true),
			}},
		})
	}
	return crd
}

// TestMigrateFromCluster reads MetalLB's resources from an apiserver that
// serves metallb.io, as a cluster running MetalLB does, and applies the
// result.
func TestMigrateFromCluster(t *testing.T) {
	e := controlPlane(t)
	ctx := testContext(t)
	c := e.Client
	for _, crd := range []*apiextensionsv1.CustomResourceDefinition{
		metallbCRD("IPAddressPool", "ipaddresspools", "v1beta1"),
		metallbCRD("L2Advertisement", "l2advertisements", "v1beta1"),
		metallbCRD("BGPPeer", "bgppeers", "v1beta2", "v1beta1"),
	} {
		mustCreate(t, ctx, c, crd)
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", crd.Name, err)
		}
	}
	mustCreate(t, ctx, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "metallb-system"}})
	for _, body := range []string{
		`{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"from-cluster","namespace":"metallb-system","labels":{"zone":"a"}},"spec":{"addresses":["203.0.113.5/24","2001:db8:5::/120"],"autoAssign":true}}`,
		`{"apiVersion":"metallb.io/v1beta1","kind":"L2Advertisement","metadata":{"name":"from-cluster","namespace":"metallb-system"},"spec":{"ipAddressPools":["from-cluster"],"interfaces":["eth0"]}}`,
		`{"apiVersion":"metallb.io/v1beta2","kind":"BGPPeer","metadata":{"name":"tor","namespace":"metallb-system"},"spec":{"myASN":64512,"peerASN":64513,"peerAddress":"10.0.0.1","password":"secret","vrf":"red"}}`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"config","namespace":"metallb-system"},"data":{"config":"address-pools: []\n"}}`,
	} {
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal([]byte(body), &u.Object); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, ctx, c, u)
	}

	// A Service MetalLB gave an address the migrated pools do not hold
	// (a pool MetalLB had, since deleted from its configuration).
	lost := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lost", Namespace: "default", Annotations: map[string]string{"metallb.universe.tf/address-pool": "gone"}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	mustCreate(t, ctx, c, lost)
	lost.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.7"}}
	if err := c.Status().Update(ctx, lost); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := run(t, "migrate", "--from-cluster", "--kubeconfig", e.Kubeconfig)
	if code != 0 {
		t.Fatalf("migrate --from-cluster exited %d: %s", code, errOut)
	}
	for _, s := range []string{"kind: IPAddressPool", "name: from-cluster", "- 203.0.113.0/24", "- eth0", "kind: BGPPeer", "name: tor-bgp-password", "zone: a"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{
		"IPAddressPool metallb-system/from-cluster: spec.addresses[0]: 203.0.113.5/24 has host bits set",
		"BGPPeer metallb-system/tor: spec.password:",
		"BGPPeer metallb-system/tor: spec.vrf:",
		"ConfigMap metallb-system/config: skipped",
		"Service default/lost: holds 198.51.100.7, which no migrated pool contains",
		`Service default/lost: annotation metallb.universe.tf/address-pool names pool "gone"`,
	} {
		if !strings.Contains(errOut, s) {
			t.Errorf("warnings lack %q:\n%s", s, errOut)
		}
	}
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	applyAll(t, e, path)
}
