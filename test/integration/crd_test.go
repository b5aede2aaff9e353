package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	heraldv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
	"github.com/herald-lb/herald/test/controlplane"
)

// heraldNamespace is where Herald's objects live (DESIGN.md, Names).
const heraldNamespace = "herald-system"

// env is one control plane shared by every test of the package: the
// apiserver holds the first create of a new CRD's objects for about two
// seconds, so the CRDs are installed once, in TestMain.
var env *controlplane.Env

func TestMain(m *testing.M) {
	code := run(m)
	if speakerBinDir != "" {
		_ = os.RemoveAll(speakerBinDir)
	}
	os.Exit(code)
}

func run(m *testing.M) int {
	var err error
	env, err = controlplane.Start(controlplane.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop control plane: %v\n", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: heraldNamespace}}
	if err := env.Client.Create(ctx, ns); err != nil {
		fmt.Fprintf(os.Stderr, "create namespace %s: %v\n", heraldNamespace, err)
		return 1
	}
	return m.Run()
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// strict makes the apiserver reject unknown fields instead of dropping them,
// as kubectl apply does by default, so a misspelt field in an example or a
// MetalLB-only field fails loudly.
var strict = client.FieldValidation(metav1.FieldValidationStrict)

// heraldObject builds a Herald object of the given kind from a YAML body
// (spec and friends) in Herald's namespace.
func heraldObject(t *testing.T, kind, name, body string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{}}
	if err := yaml.Unmarshal([]byte(body), &u.Object); err != nil {
		t.Fatalf("%s %s: bad test YAML: %v", kind, name, err)
	}
	if u.Object == nil {
		u.Object = map[string]any{}
	}
	u.SetAPIVersion(heraldv1beta1.GroupVersion.String())
	u.SetKind(kind)
	u.SetNamespace(heraldNamespace)
	u.SetName(name)
	return u
}

func TestCRDsAreEstablished(t *testing.T) {
	ctx := testContext(t)
	want := map[string]string{ // plural -> short name
		"ipaddresspools":     "ipp",
		"l2advertisements":   "l2adv",
		"bgppeers":           "bgpp",
		"bgpadvertisements":  "bgpadv",
		"communities":        "comm",
		"bfdprofiles":        "bfdp",
		"servicel2statuses":  "sl2s",
		"servicebgpstatuses": "sbgps",
	}
	for plural, short := range want {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		name := plural + ".lb.herald.dev"
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			t.Errorf("CRD %s: %v", name, err)
			continue
		}
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s is not Established: %+v", name, crd.Status.Conditions)
		}
		if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
			t.Errorf("CRD %s scope = %s, want Namespaced", name, crd.Spec.Scope)
		}
		if fmt.Sprint(crd.Spec.Names.ShortNames) != "["+short+"]" || fmt.Sprint(crd.Spec.Names.Categories) != "[herald]" {
			t.Errorf("CRD %s short names %v categories %v, want [%s] [herald]", name, crd.Spec.Names.ShortNames, crd.Spec.Names.Categories, short)
		}
	}
}

// exampleFiles lists deploy/examples/*.yaml.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d example files in deploy/examples, want at least 5", len(files))
	}
	sort.Strings(files)
	return files
}

// readObjects splits a multi-document YAML file into objects.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) == 0 {
			continue // an empty document, e.g. a trailing ---
		}
		objs = append(objs, u)
	}
	return objs
}

// TestExamplesApply creates every object of every example file, file by file
// with strict field validation, and deletes them again, so each file is proven
// to stand on its own.
func TestExamplesApply(t *testing.T) {
	for _, path := range exampleFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ctx := testContext(t)
			objs := readObjects(t, path)
			if len(objs) == 0 {
				t.Fatalf("%s holds no objects", path)
			}
			for _, u := range objs {
				what := fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
				if u.GetNamespace() == "" {
					t.Errorf("%s: example object without a namespace", what)
				}
				if err := env.Client.Create(ctx, u, strict); err != nil {
					t.Errorf("create %s: %v", what, err)
					continue
				}
				t.Cleanup(func() {
					if err := env.Client.Delete(context.Background(), u); err != nil && !apierrors.IsNotFound(err) {
						t.Errorf("delete %s: %v", what, err)
					}
				})
			}
		})
	}
}

// TestExamplesApplyWithKubectl applies the whole directory the way a user
// would, with the kubectl built beside the apiserver.
func TestExamplesApplyWithKubectl(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "deploy", "examples")
	out, err := kubectl(t, "apply", "-f", dir)
	if err != nil {
		t.Fatalf("kubectl apply -f %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := kubectl(t, "delete", "--wait=false", "-f", dir); err != nil {
			t.Errorf("kubectl delete -f %s: %v\n%s", dir, err, out)
		}
	})
	for _, want := range []string{"ipaddresspool.lb.herald.dev/l2-dual-stack created", "bgppeer.lb.herald.dev/frr-tor created", "service/web-prefer-dual-stack created"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
		}
	}
	// Together the examples make one configuration that Herald accepts, not
	// just objects the schema accepts: references resolve, aggregation
	// lengths fit the pools, and so on.
	ctx := testContext(t)
	pools := &heraldv1beta1.IPAddressPoolList{}
	l2s := &heraldv1beta1.L2AdvertisementList{}
	advs := &heraldv1beta1.BGPAdvertisementList{}
	peers := &heraldv1beta1.BGPPeerList{}
	comms := &heraldv1beta1.CommunityList{}
	bfds := &heraldv1beta1.BFDProfileList{}
	for _, l := range []client.ObjectList{pools, l2s, advs, peers, comms, bfds} {
		if err := env.Client.List(ctx, l, client.InNamespace(heraldNamespace)); err != nil {
			t.Fatalf("list %T: %v", l, err)
		}
	}
	objs := config.Objects{Pools: pools.Items, L2Advertisements: l2s.Items, BGPAdvertisements: advs.Items,
		BGPPeers: peers.Items, Communities: comms.Items, BFDProfiles: bfds.Items}
	cfg, errs := config.Build(objs)
	if len(errs) > 0 {
		t.Errorf("the examples together are not a valid configuration: %v", errs)
	} else {
		for _, w := range cfg.Warnings {
			t.Errorf("the examples draw a configuration warning: %v", w)
		}
	}

	// The category lists every kind at once.
	out, err = kubectl(t, "get", "herald", "-n", heraldNamespace)
	if err != nil {
		t.Fatalf("kubectl get herald: %v\n%s", err, out)
	}
	for _, want := range []string{"ipaddresspool.lb.herald.dev/tenant-a", "bfdprofile.lb.herald.dev/fast", "community.lb.herald.dev/communities"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get herald lacks %q:\n%s", want, out)
		}
	}
}

func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx := testContext(t)
	cmd := exec.CommandContext(ctx, filepath.Join(env.Assets, "kubectl"), append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// invalidObjects are rejected when created, each with an error naming the
// field (path) and saying what is wrong (msg).
var invalidObjects = []struct {
	name, kind, body string
	path, msg        string
}{
	// IPAddressPool
	{"pool without addresses", "IPAddressPool", `spec: {autoAssign: true}`,
		"spec.addresses", "Required value"},
	{"pool with an empty address list", "IPAddressPool", `spec: {addresses: []}`,
		"spec.addresses", "at least 1 item"},
	{"bare address instead of a CIDR", "IPAddressPool", `spec: {addresses: ["192.0.2.1"]}`,
		"spec.addresses[0]", "192.0.2.1 is neither a CIDR"},
	{"garbage address", "IPAddressPool", `spec: {addresses: ["192.0.2.0/24", "not-an-address"]}`,
		"spec.addresses[1]", "not-an-address is neither a CIDR"},
	{"IPv4 prefix longer than 32", "IPAddressPool", `spec: {addresses: ["192.0.2.0/33"]}`,
		"spec.addresses[0]", "neither a CIDR"},
	{"IPv4 CIDR with host bits", "IPAddressPool", `spec: {addresses: ["192.0.2.1/24"]}`,
		"spec.addresses[0]", "192.0.2.1/24 has host bits set"},
	{"IPv6 CIDR with host bits", "IPAddressPool", `spec: {addresses: ["2001:db8::1/64"]}`,
		"spec.addresses[0]", "2001:db8::1/64 has host bits set"},
	{"range mixing families", "IPAddressPool", `spec: {addresses: ["192.0.2.1-2001:db8::1"]}`,
		"spec.addresses[0]", "mixes IPv4 and IPv6"},
	{"reversed IPv4 range", "IPAddressPool", `spec: {addresses: ["192.0.2.20-192.0.2.10"]}`,
		"spec.addresses[0]", "192.0.2.20-192.0.2.10 is reversed"},
	{"reversed IPv4 range across octets", "IPAddressPool", `spec: {addresses: ["192.0.3.0-192.0.2.255"]}`,
		"spec.addresses[0]", "is reversed"},
	{"reversed IPv6 range", "IPAddressPool", `spec: {addresses: ["2001:db8::ff-2001:db8::1"]}`,
		"spec.addresses[0]", "is reversed"},
	{"reversed IPv6 range in the high bits", "IPAddressPool", `spec: {addresses: ["2001:db9::-2001:db8:ffff::ffff"]}`,
		"spec.addresses[0]", "is reversed"},
	{"range with spaces", "IPAddressPool", `spec: {addresses: ["192.0.2.1 - 192.0.2.9"]}`,
		"spec.addresses[0]", "neither a CIDR"},
	{"range of three addresses", "IPAddressPool", `spec: {addresses: ["192.0.2.1-192.0.2.5-192.0.2.9"]}`,
		"spec.addresses[0]", "neither a CIDR"},
	{"IPv4-mapped IPv6 CIDR", "IPAddressPool", `spec: {addresses: ["::ffff:192.0.2.0/120"]}`,
		"spec.addresses[0]", "neither a CIDR"},
	{"range with zones", "IPAddressPool", `spec: {addresses: ["fe80::1%eth0-fe80::9%eth0"]}`,
		"spec.addresses[0]", "neither a CIDR"},
	{"duplicate addresses", "IPAddressPool", `spec: {addresses: ["192.0.2.0/24", "192.0.2.0/24"]}`,
		"spec.addresses[1]", "Duplicate value"},
	{"address entry too long", "IPAddressPool", `spec: {addresses: ["` + strings.Repeat("1", 101) + `"]}`,
		"spec.addresses[0]", "Too long"},
	{"autoAssign not a boolean", "IPAddressPool", `spec: {addresses: ["192.0.2.0/24"], autoAssign: "yes"}`,
		"spec.autoAssign", "boolean"},
	{"negative priority", "IPAddressPool", `spec: {addresses: ["192.0.2.0/24"], serviceAllocation: {priority: -1}}`,
		"spec.serviceAllocation.priority", "greater than or equal to 0"},
	{"namespace name not a DNS label", "IPAddressPool", `spec: {addresses: ["192.0.2.0/24"], serviceAllocation: {namespaces: [Tenant_A]}}`,
		"spec.serviceAllocation.namespaces[0]", "should match"},
	{"service selector with an unknown operator", "IPAddressPool",
		`spec: {addresses: ["192.0.2.0/24"], serviceAllocation: {serviceSelectors: [{matchExpressions: [{key: tier, operator: Equals, values: [web]}]}]}}`,
		"spec.serviceAllocation.serviceSelectors[0]", "operator must be In, NotIn, Exists or DoesNotExist"},
	{"namespace selector In without values", "IPAddressPool",
		`spec: {addresses: ["192.0.2.0/24"], serviceAllocation: {namespaceSelectors: [{matchExpressions: [{key: team, operator: In}]}]}}`,
		"spec.serviceAllocation.namespaceSelectors[0]", "In or NotIn need values"},
	{"MetalLB-only field is not silently dropped", "IPAddressPool", `spec: {addresses: ["192.0.2.0/24"], autoassign: true}`,
		"spec.autoassign", "unknown field"},

	// L2Advertisement
	{"interface name longer than 15", "L2Advertisement", `spec: {interfaces: [enp0s31f6-uplink0]}`,
		"spec.interfaces[0]", "may not be more than 15"},
	{"interface name with a slash", "L2Advertisement", `spec: {interfaces: [eth0/1]}`,
		"spec.interfaces[0]", "interfaces: a Linux interface name"},
	{"interface name with a space", "L2Advertisement", `spec: {interfaces: ["eth 0"]}`,
		"spec.interfaces[0]", "interfaces: a Linux interface name"},
	{"interface name dot", "L2Advertisement", `spec: {interfaces: ["."]}`,
		"spec.interfaces[0]", "not '.' or '..'"},
	{"pool name not an object name", "L2Advertisement", `spec: {ipAddressPools: [Pool_A]}`,
		"spec.ipAddressPools[0]", "should match"},
	{"node selector Exists with values", "L2Advertisement",
		`spec: {nodeSelectors: [{matchExpressions: [{key: edge, operator: Exists, values: ["true"]}]}]}`,
		"spec.nodeSelectors[0]", "Exists or DoesNotExist take no values"},
	{"pool selector with an unknown operator", "L2Advertisement",
		`spec: {ipAddressPoolSelectors: [{matchExpressions: [{key: a, operator: Has}]}]}`,
		"spec.ipAddressPoolSelectors[0]", "operator must be"},

	// BGPPeer
	{"peer without peerAddress", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500}`,
		"spec.peerAddress", "Required value"},
	{"myASN 0", "BGPPeer", `spec: {myASN: 0, peerASN: 64500, peerAddress: 192.0.2.1}`,
		"spec.myASN", "greater than or equal to 1"},
	{"peerASN above 32 bits", "BGPPeer", `spec: {myASN: 64512, peerASN: 4294967296, peerAddress: 192.0.2.1}`,
		"spec.peerASN", "less than or equal to 4294967295"},
	{"peerAddress with a prefix length", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1/32}`,
		"spec.peerAddress", "peerAddress must be an IPv4 or IPv6 address"},
	{"peerAddress a host name", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: router.example.com}`,
		"spec.peerAddress", "peerAddress must be an IPv4 or IPv6 address"},
	{"sourceAddress not an address", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, sourceAddress: eth0}`,
		"spec.sourceAddress", "sourceAddress must be an IPv4 or IPv6 address"},
	{"sourceAddress of the other family", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, sourceAddress: "2001:db8::2"}`,
		"spec.sourceAddress", "same IP family as peerAddress"},
	{"routerID not IPv4", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, routerID: "2001:db8::1"}`,
		"spec.routerID", "routerID must be an IPv4 address"},
	{"peerPort 0", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, peerPort: 0}`,
		"spec.peerPort", "greater than or equal to 1"},
	{"peerPort above 65535", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, peerPort: 70000}`,
		"spec.peerPort", "less than or equal to 65535"},
	{"holdTime below 3s", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 1s}`,
		"spec.holdTime", "holdTime must be 0s or between 3s and 65535s"},
	{"holdTime above 65535s", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 20h}`,
		"spec.holdTime", "holdTime must be 0s or between 3s and 65535s"},
	{"holdTime without a unit", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: "90"}`,
		"spec.holdTime", "holdTime must be whole seconds written with the units h, m and s"},
	{"negative holdTime", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: -90s}`,
		"spec.holdTime", "holdTime must be whole seconds written with the units h, m and s"},
	{"holdTime in fractions of a second", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 3500ms}`,
		"spec.holdTime", "holdTime must be whole seconds"},
	{"keepaliveTime equal to holdTime", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 9s, keepaliveTime: 9s}`,
		"spec.keepaliveTime", "less than holdTime"},
	{"keepaliveTime above the default holdTime", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, keepaliveTime: 2m}`,
		"spec.keepaliveTime", "less than holdTime"},
	{"keepaliveTime 0s with a holdTime", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 90s, keepaliveTime: 0s}`,
		"spec.keepaliveTime", "more than 0s"},
	{"keepaliveTime with holdTime 0s", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 0s, keepaliveTime: 10s}`,
		"spec.keepaliveTime", "0s when holdTime is 0s"},
	{"connectTime 0s", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, connectTime: 0s}`,
		"spec.connectTime", "connectTime must be between 1s and 65535s"},
	{"connectTime not a duration", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, connectTime: soon}`,
		"spec.connectTime", "connectTime must be whole seconds"},
	{"passwordSecret without a name", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, passwordSecret: {namespace: herald-system}}`,
		"spec.passwordSecret", "passwordSecret.name must be set"},
	{"plain-text password is not offered", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, password: secret}`,
		"spec.password", "unknown field"},
	{"ebgpMultiHop on an iBGP session", "BGPPeer", `spec: {myASN: 64512, peerASN: 64512, peerAddress: 192.0.2.1, ebgpMultiHop: true}`,
		"spec.ebgpMultiHop", "eBGP sessions only"},
	{"bfdProfile not an object name", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, bfdProfile: Fast_BFD}`,
		"spec.bfdProfile", "should match"},

	// BGPAdvertisement
	{"aggregationLength above 32", "BGPAdvertisement", `spec: {aggregationLength: 33}`,
		"spec.aggregationLength", "less than or equal to 32"},
	{"negative aggregationLength", "BGPAdvertisement", `spec: {aggregationLength: -1}`,
		"spec.aggregationLength", "greater than or equal to 0"},
	{"aggregationLengthV6 above 128", "BGPAdvertisement", `spec: {aggregationLengthV6: 129}`,
		"spec.aggregationLengthV6", "less than or equal to 128"},
	{"negative localPref", "BGPAdvertisement", `spec: {localPref: -1}`,
		"spec.localPref", "greater than or equal to 0"},
	{"community half above 65535", "BGPAdvertisement", `spec: {communities: ["65536:100"]}`,
		"spec.communities[0]", "65536:100 has a part above 65535"},
	{"large community part above 32 bits", "BGPAdvertisement", `spec: {communities: ["large:1:2:4294967296"]}`,
		"spec.communities[0]", "has a part above 4294967295"},
	{"community with three parts", "BGPAdvertisement", `spec: {communities: ["65000:1:2"]}`,
		"spec.communities[0]", "is not a community"},
	{"large community with two parts", "BGPAdvertisement", `spec: {communities: ["large:1:2"]}`,
		"spec.communities[0]", "is not a community"},
	{"community name with capitals", "BGPAdvertisement", `spec: {communities: ["65000:100", "No_Export"]}`,
		"spec.communities[1]", "No_Export is not a community"},
	{"peer name not an object name", "BGPAdvertisement", `spec: {peers: ["Router 1"]}`,
		"spec.peers[0]", "should match"},
	{"node selector NotIn without values", "BGPAdvertisement",
		`spec: {nodeSelectors: [{matchExpressions: [{key: rack, operator: NotIn, values: []}]}]}`,
		"spec.nodeSelectors[0]", "In or NotIn need values"},

	// Community
	{"community value half above 65535", "Community", `spec: {communities: [{name: big, value: "65000:70000"}]}`,
		"spec.communities[0].value", "has a part above 65535"},
	{"community value is a name", "Community", `spec: {communities: [{name: alias, value: site-a}]}`,
		"spec.communities[0].value", "site-a is neither a community"},
	{"community entry name with a space", "Community", `spec: {communities: [{name: "site a", value: "65000:1"}]}`,
		"spec.communities[0].name", "communities[].name must be lowercase"},
	{"duplicate community names", "Community", `spec: {communities: [{name: a, value: "65000:1"}, {name: a, value: "65000:2"}]}`,
		"spec.communities[1]", "Duplicate value"},
	{"community entry without a value", "Community", `spec: {communities: [{name: a}]}`,
		"spec.communities[0].value", "Required value"},

	// BFDProfile
	{"receiveInterval below 10ms", "BFDProfile", `spec: {receiveInterval: 5}`,
		"spec.receiveInterval", "greater than or equal to 10"},
	{"transmitInterval above 60000ms", "BFDProfile", `spec: {transmitInterval: 60001}`,
		"spec.transmitInterval", "less than or equal to 60000"},
	{"detectMultiplier 1", "BFDProfile", `spec: {detectMultiplier: 1}`,
		"spec.detectMultiplier", "greater than or equal to 2"},
	{"detectMultiplier above 255", "BFDProfile", `spec: {detectMultiplier: 256}`,
		"spec.detectMultiplier", "less than or equal to 255"},
	{"minimumTtl 0", "BFDProfile", `spec: {minimumTtl: 0}`,
		"spec.minimumTtl", "greater than or equal to 1"},
	{"minimumTtl 255", "BFDProfile", `spec: {minimumTtl: 255}`,
		"spec.minimumTtl", "less than or equal to 254"},
	{"MetalLB echo mode is not offered", "BFDProfile", `spec: {echoMode: true}`,
		"spec.echoMode", "unknown field"},
}

func TestInvalidObjectsAreRejected(t *testing.T) {
	if len(invalidObjects) < 35 {
		t.Fatalf("only %d invalid objects in the table", len(invalidObjects))
	}
	for i, tc := range invalidObjects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			obj := heraldObject(t, tc.kind, fmt.Sprintf("invalid-%d", i), tc.body)
			err := env.Client.Create(ctx, obj, strict)
			if err == nil {
				_ = env.Client.Delete(ctx, obj)
				t.Fatalf("%s accepted, want rejected with %q at %s:\n%s", tc.kind, tc.msg, tc.path, tc.body)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("%s rejected with %v, want an Invalid or BadRequest error", tc.kind, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.path) || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s rejected with:\n  %s\nwant the field %q and %q", tc.kind, msg, tc.path, tc.msg)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// TestRangeOrderRuleAgreesWithNetip checks the CEL rules that reject reversed
// ranges and ranges overlapping special space (both compare addresses
// through CIDR containment), which compares addresses bit by bit through CIDR containment,
// against net/netip's ordering on pairs of addresses that share a prefix of
// every length, both ways round, in both families.
func TestRangeOrderRuleAgreesWithNetip(t *testing.T) {
	ctx := testContext(t)
	rng := rand.New(rand.NewPCG(1, 2)) // fixed: a failure reproduces
	type pair struct{ first, last netip.Addr }
	var pairs []pair
	for _, bits := range []int{32, 128} {
		for shared := 0; shared < bits; shared++ {
			a := randomAddr(rng, bits)
			// b agrees with a on the first shared bits and differs at bit
			// shared; the rest is random.
			b := randomAddr(rng, bits)
			ab, bb := a.AsSlice(), b.AsSlice()
			for i := 0; i < shared; i++ {
				mask := byte(0x80) >> (i % 8)
				bb[i/8] = bb[i/8]&^mask | ab[i/8]&mask
			}
			bb[shared/8] ^= (ab[shared/8] ^ bb[shared/8] ^ 0xff) & (0x80 >> (shared % 8))
			b, _ = netip.AddrFromSlice(bb)
			pairs = append(pairs, pair{a, b}, pair{b, a})
		}
		a := randomAddr(rng, bits)
		pairs = append(pairs, pair{a, a})
	}
	mismatches := 0
	for i, p := range pairs {
		r := p.first.String() + "-" + p.last.String()
		pool := heraldObject(t, "IPAddressPool", fmt.Sprintf("order-%d", i), fmt.Sprintf("spec: {addresses: [%q]}", r))
		err := env.Client.Create(ctx, pool, strict, client.DryRunAll)
		wantOK := p.first.Compare(p.last) <= 0
		special := wantOK && overlapsSpecial(p.first, p.last)
		reversedErr := err != nil && strings.Contains(err.Error(), "is reversed")
		specialErr := err != nil && strings.Contains(err.Error(), "contains multicast, loopback, link-local")
		switch {
		case err != nil && !reversedErr && !specialErr:
			t.Errorf("range %s: unexpected error %v", r, err)
		case wantOK == reversedErr:
			mismatches++
			t.Errorf("range %s: rejected as reversed=%v, netip says first <= last is %v", r, reversedErr, wantOK)
		case wantOK && special != specialErr:
			mismatches++
			t.Errorf("range %s: rejected as special=%v, netip says it overlaps special space: %v", r, specialErr, special)
		}
	}
	t.Logf("%d ranges checked, %d mismatches", len(pairs), mismatches)
}

// overlapsSpecial says, with net/netip, whether first-last overlaps
// multicast, loopback, link-local, unspecified or broadcast space.
func overlapsSpecial(first, last netip.Addr) bool {
	for _, s := range []string{"0.0.0.0/32", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "::/128", "::1/128", "fe80::/10", "ff00::/8"} {
		p := netip.MustParsePrefix(s)
		if p.Addr().Is4() != first.Is4() {
			continue
		}
		hi := p.Addr().AsSlice()
		for i := p.Bits(); i < len(hi)*8; i++ {
			hi[i/8] |= 0x80 >> (i % 8)
		}
		h, _ := netip.AddrFromSlice(hi)
		if first.Compare(h) <= 0 && p.Addr().Compare(last) <= 0 {
			return true
		}
	}
	return false
}

func randomAddr(rng *rand.Rand, bits int) netip.Addr {
	b := make([]byte, bits/8)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// validObjects sit at the edges of the rules and must be accepted.
var validObjects = []struct {
	name, kind, body string
}{
	{"IPv6 range", "IPAddressPool", `spec: {addresses: ["2001:db8::10-2001:db8::ff"]}`},
	{"IPv6 range across a 16-bit group", "IPAddressPool", `spec: {addresses: ["2001:db8::ffff-2001:db8::1:0"]}`},
	{"IPv6 range whose ends differ in the first bit", "IPAddressPool", `spec: {addresses: ["7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff-8000::"]}`},
	{"IPv6 range differing in the last bit", "IPAddressPool", `spec: {addresses: ["2001:db8::4-2001:db8::5"]}`},
	{"IPv4 range of one address", "IPAddressPool", `spec: {addresses: ["192.0.2.7-192.0.2.7"]}`},
	{"IPv4 range across an octet", "IPAddressPool", `spec: {addresses: ["192.0.2.255-192.0.3.0"]}`},
	{"IPv4 range over everything below loopback", "IPAddressPool", `spec: {addresses: ["0.0.0.1-126.255.255.255"]}`},
	{"IPv4 /32 and IPv6 /128", "IPAddressPool", `spec: {addresses: ["192.0.2.1/32", "2001:db8::1/128"]}`},
	{"upper-case IPv6", "IPAddressPool", `spec: {addresses: ["2001:DB8:AB::/48"]}`},
	{"mixed families with every allocation option", "IPAddressPool",
		`spec: {addresses: ["203.0.113.0/24", "2001:db8:1::/64"], autoAssign: false, avoidBuggyIPs: true,
		  serviceAllocation: {priority: 1, namespaces: [tenant-a], namespaceSelectors: [{matchLabels: {team: a}}],
		    serviceSelectors: [{matchExpressions: [{key: tier, operator: Exists}]}]}}`},
	{"L2 advertisement with every field", "L2Advertisement",
		`spec: {ipAddressPools: [a, b.c], ipAddressPoolSelectors: [{matchLabels: {tier: gold}}], interfaces: [eth0, bond0.100, abcdefghijklmno],
		  nodeSelectors: [{matchExpressions: [{key: edge, operator: DoesNotExist}]}]}`},
	{"peer with 4-byte ASNs", "BGPPeer", `spec: {myASN: 4294967295, peerASN: 1, peerAddress: 192.0.2.1}`},
	{"peer with holdTime 0s", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 0s}`},
	{"peer with holdTime and keepaliveTime 0s", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 0s, keepaliveTime: 0s}`},
	{"peer with minute durations", "BGPPeer", `spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 1m30s, keepaliveTime: 30s, connectTime: 1m}`},
	{"IPv6 peer with every field", "BGPPeer",
		`spec: {myASN: 64512, peerASN: 64500, peerAddress: "2001:db8::1", sourceAddress: "2001:db8::2", peerPort: 1179, routerID: 10.0.0.1,
		  holdTime: 3s, keepaliveTime: 1s, connectTime: 65535s, passwordSecret: {name: md5}, ebgpMultiHop: true,
		  enableGracefulRestart: true, bfdProfile: fast, nodeSelectors: [{matchLabels: {rack: r1}}]}`},
	{"large and standard community extremes", "BGPAdvertisement",
		`spec: {communities: ["large:4294967295:0:4294967295", "65535:65535", "0:0", no-export], localPref: 4294967295,
		  aggregationLength: 0, aggregationLengthV6: 0, peers: [tor-1]}`},
	{"community entries", "Community", `spec: {communities: [{name: no-export, value: "65535:65281"}, {name: big, value: "large:1:2:3"}]}`},
	{"BFD profile at the lower bounds", "BFDProfile", `spec: {receiveInterval: 10, transmitInterval: 10, detectMultiplier: 2, minimumTtl: 1, passiveMode: true}`},
	{"BFD profile at the upper bounds", "BFDProfile", `spec: {receiveInterval: 60000, transmitInterval: 60000, detectMultiplier: 255, minimumTtl: 254}`},
	{"service L2 status", "ServiceL2Status", `spec: {}`},
	{"service BGP status", "ServiceBGPStatus", `spec: {}`},
}

func TestEdgeCaseObjectsAreAccepted(t *testing.T) {
	for i, tc := range validObjects {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			obj := heraldObject(t, tc.kind, fmt.Sprintf("valid-%d", i), tc.body)
			if err := env.Client.Create(ctx, obj, strict); err != nil {
				t.Fatalf("%s rejected: %v\n%s", tc.kind, err, tc.body)
			}
			if err := env.Client.Delete(ctx, obj); err != nil {
				t.Errorf("delete: %v", err)
			}
		})
	}
}

// TestDefaultsAreApplied reads back the defaults the schema fills in, through
// the typed client the controller and speaker use.
func TestDefaultsAreApplied(t *testing.T) {
	ctx := testContext(t)
	c := env.Client
	create := func(obj client.Object) {
		t.Helper()
		obj.SetNamespace(heraldNamespace)
		if err := c.Create(ctx, obj, strict); err != nil {
			t.Fatalf("create %T: %v", obj, err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), obj) })
	}

	pool := &heraldv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
		Spec: heraldv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/24"}}}
	create(pool)
	if pool.Spec.AutoAssign == nil || !*pool.Spec.AutoAssign {
		t.Errorf("IPAddressPool autoAssign = %v, want true", pool.Spec.AutoAssign)
	}

	peer := &heraldv1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
		Spec: heraldv1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "192.0.2.1"}}
	create(peer)
	if peer.Spec.PeerPort != 179 {
		t.Errorf("BGPPeer peerPort = %d, want 179", peer.Spec.PeerPort)
	}
	if peer.Spec.HoldTime == nil || peer.Spec.HoldTime.Duration != 90*time.Second {
		t.Errorf("BGPPeer holdTime = %v, want 90s", peer.Spec.HoldTime)
	}
	if peer.Spec.KeepaliveTime != nil || peer.Spec.ConnectTime != nil {
		t.Errorf("BGPPeer keepaliveTime %v connectTime %v, want both unset", peer.Spec.KeepaliveTime, peer.Spec.ConnectTime)
	}

	adv := &heraldv1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "defaults"}}
	create(adv)
	if l := adv.Spec.AggregationLength; l == nil || *l != 32 {
		t.Errorf("BGPAdvertisement aggregationLength = %v, want 32", l)
	}
	if l := adv.Spec.AggregationLengthV6; l == nil || *l != 128 {
		t.Errorf("BGPAdvertisement aggregationLengthV6 = %v, want 128", l)
	}

	bfd := &heraldv1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: "defaults"}}
	create(bfd)
	got := fmt.Sprint(deref(bfd.Spec.ReceiveInterval), deref(bfd.Spec.TransmitInterval), deref(bfd.Spec.DetectMultiplier), deref(bfd.Spec.MinimumTTL))
	if got != "300 300 3 254" {
		t.Errorf("BFDProfile receive/transmit/multiplier/minimumTtl = %s, want 300 300 3 254", got)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return "<unset>"
	}
	return *p
}

// TestPoolStatus writes a pool's status the way the controller does, with a
// saturated IPv6 count, and checks the printer columns show it.
func TestPoolStatus(t *testing.T) {
	ctx := testContext(t)
	c := env.Client
	pool := &heraldv1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: "status", Namespace: heraldNamespace},
		Spec:       heraldv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/24", "2001:db8::/64"}},
	}
	if err := c.Create(ctx, pool, strict); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), pool) })

	pool.Status = heraldv1beta1.IPAddressPoolStatus{
		AssignedIPv4: 2, AvailableIPv4: 254, AssignedIPv6: 1, AvailableIPv6: math.MaxInt64,
		Conditions: []metav1.Condition{{
			Type: heraldv1beta1.PoolConditionReady, Status: metav1.ConditionTrue, Reason: heraldv1beta1.PoolReasonValid,
			Message: "usable", LastTransitionTime: metav1.Now(), ObservedGeneration: pool.Generation,
		}},
	}
	if err := c.Status().Update(ctx, pool); err != nil {
		t.Fatalf("update status: %v", err)
	}
	got := &heraldv1beta1.IPAddressPool{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pool), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.AvailableIPv6 != math.MaxInt64 || got.Status.AssignedIPv4 != 2 || len(got.Status.Conditions) != 1 {
		t.Errorf("status read back as %+v", got.Status)
	}

	// Counts are never negative.
	bad := got.DeepCopy()
	bad.Status.AssignedIPv4 = -1
	if err := c.Status().Update(ctx, bad); err == nil || !strings.Contains(err.Error(), "status.assignedIPv4") {
		t.Errorf("negative status.assignedIPv4: got %v, want rejected naming the field", err)
	}

	out, err := kubectl(t, "get", "ipp", "status", "-n", heraldNamespace)
	if err != nil {
		t.Fatalf("kubectl get ipp: %v\n%s", err, out)
	}
	for _, want := range []string{"ADDRESSES", "AUTO ASSIGN", "IPV4 ASSIGNED", "IPV4 AVAILABLE", "IPV6 ASSIGNED", "IPV6 AVAILABLE", "9223372036854775807", "2001:db8::/64"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get ipp lacks %q:\n%s", want, out)
		}
	}
}

// TestServiceStatusObjects writes ServiceL2Status and ServiceBGPStatus the
// way a speaker does: create, then fill the status subresource.
func TestServiceStatusObjects(t *testing.T) {
	ctx := testContext(t)
	c := env.Client
	l2 := &heraldv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: "l2-web", Namespace: heraldNamespace}}
	bgp := &heraldv1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: "bgp-web", Namespace: heraldNamespace}}
	for _, o := range []client.Object{l2, bgp} {
		if err := c.Create(ctx, o, strict); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), o) })
	}
	l2.Status = heraldv1beta1.ServiceL2StatusStatus{Node: "node-1", ServiceName: "web", ServiceNamespace: "default",
		Addresses: []string{"192.0.2.10", "2001:db8::10"}, Interfaces: []heraldv1beta1.InterfaceInfo{{Name: "eth0"}}}
	bgp.Status = heraldv1beta1.ServiceBGPStatusStatus{Node: "node-1", ServiceName: "web", ServiceNamespace: "default",
		Addresses: []string{"192.0.2.10"}, Peers: []string{"frr-tor"}}
	for _, o := range []client.Object{l2, bgp} {
		if err := c.Status().Update(ctx, o); err != nil {
			t.Fatalf("update status of %T: %v", o, err)
		}
	}
	got := &heraldv1beta1.ServiceL2Status{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(l2), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Node != "node-1" || len(got.Status.Interfaces) != 1 || len(got.Status.Addresses) != 2 {
		t.Errorf("ServiceL2Status status read back as %+v", got.Status)
	}
	bad := got.DeepCopy()
	bad.Status.Addresses = []string{"192.0.2.10/32"}
	if err := c.Status().Update(ctx, bad); err == nil || !strings.Contains(err.Error(), "status.addresses[0]") {
		t.Errorf("ServiceL2Status with address 192.0.2.10/32: got %v, want rejected naming status.addresses[0]", err)
	}
	out, err := kubectl(t, "get", "sl2s,sbgps", "-n", heraldNamespace)
	if err != nil {
		t.Fatalf("kubectl get sl2s,sbgps: %v\n%s", err, out)
	}
	for _, want := range []string{"ALLOCATED NODE", "node-1", "SERVICE NAMESPACE", "PEERS", "frr-tor"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get sl2s,sbgps lacks %q:\n%s", want, out)
		}
	}
}

// TestKubectlExplainShowsFieldDocs checks that the doc comments reach users.
func TestKubectlExplainShowsFieldDocs(t *testing.T) {
	for field, want := range map[string]string{
		"ipaddresspool.spec.addresses":    `ranges "first-last" of two addresses of one family`,
		"ipaddresspool.status":            "saturate",
		"bgppeer.spec.holdTime":           "Defaults to 90s",
		"bgpadvertisement.spec.localPref": "only meaningful when the advertisement reaches iBGP peers",
	} {
		out, err := kubectl(t, "explain", field)
		if err != nil {
			t.Errorf("kubectl explain %s: %v\n%s", field, err, out)
			continue
		}
		// kubectl rewraps descriptions: compare with whitespace collapsed.
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("kubectl explain %s lacks %q:\n%s", field, want, out)
		}
	}
}

// specialAddressPools hold multicast, loopback, link-local, unspecified or
// broadcast addresses, as CIDRs and as ranges, inside or spanning into such
// space; the CRD rejects every one.
var specialAddressPools = []string{
	"224.0.0.0/24", "239.1.2.0/24", "ff02::/16", "ff00::/8", // multicast
	"127.0.0.1/32", "127.0.0.0/8", "::1/128", // loopback
	"169.254.0.0/16", "169.254.10.0/24", "fe80::/64", "fe80::/10", // link-local unicast
	"0.0.0.0/32", "0.0.0.0/0", "::/128", "::/0", "::/1", // unspecified, and CIDRs containing everything
	"255.255.255.255/32",                                                              // broadcast
	"223.255.255.0-224.0.0.5", "126.255.255.250-128.0.0.1", "169.253.0.1-169.255.0.1", // ranges spanning into special space
	"0.0.0.0-0.0.0.9", "192.0.2.10-255.255.255.255", "127.0.0.5-127.0.0.6",
	"fe7f:ffff::-fec0::1", "::-::5", "2001:db8::-ff00::1", "fe80::1-fe80::9",
}

func TestCRDRejectsPoolsWithSpecialAddresses(t *testing.T) {
	for i, a := range specialAddressPools {
		t.Run(a, func(t *testing.T) {
			ctx := testContext(t)
			obj := heraldObject(t, "IPAddressPool", fmt.Sprintf("special-%d", i), fmt.Sprintf("spec: {addresses: [%q]}", a))
			err := env.Client.Create(ctx, obj, strict)
			if err == nil {
				_ = env.Client.Delete(ctx, obj)
				t.Fatalf("pool %s accepted", a)
			}
			if msg := err.Error(); !apierrors.IsInvalid(err) || !strings.Contains(msg, "spec.addresses[0]") || !strings.Contains(msg, a+" contains multicast, loopback, link-local") {
				t.Errorf("pool %s rejected with %v, want the field and the reason", a, err)
			}
		})
	}
}

// TestCRDAcceptsPoolsNextToSpecialAddresses: the addresses just outside
// special blocks are ordinary.
func TestCRDAcceptsPoolsNextToSpecialAddresses(t *testing.T) {
	for i, a := range []string{"192.0.2.0/24", "2001:db8::/64", "0.0.0.1-126.255.255.255", "128.0.0.0-169.253.255.255",
		"169.255.0.0-223.255.255.255", "240.0.0.0-255.255.255.254", "::2-fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::/10", "fe00::/9", "198.51.100.7/32"} {
		t.Run(a, func(t *testing.T) {
			ctx := testContext(t)
			obj := heraldObject(t, "IPAddressPool", fmt.Sprintf("ordinary-%d", i), fmt.Sprintf("spec: {addresses: [%q]}", a))
			if err := env.Client.Create(ctx, obj, strict); err != nil {
				t.Fatalf("pool %s rejected: %v", a, err)
			}
			if err := env.Client.Delete(ctx, obj); err != nil {
				t.Errorf("delete: %v", err)
			}
		})
	}
}

func TestCRDRejectsInvalidLabelKeysInSelectors(t *testing.T) {
	for i, tc := range []struct {
		name, kind, body, path, msg string
	}{
		{"node selector expression key with a space", "L2Advertisement", `spec: {nodeSelectors: [{matchExpressions: [{key: "bad key", operator: Exists}]}]}`,
			"spec.nodeSelectors[0]", "nodeSelectors: matchExpressions keys must be label keys"},
		{"service selector expression key with two slashes", "IPAddressPool", `spec: {addresses: ["192.0.2.0/24"], serviceAllocation: {serviceSelectors: [{matchExpressions: [{key: "a/b/c", operator: In, values: [x]}]}]}}`,
			"spec.serviceAllocation.serviceSelectors[0]", "serviceSelectors: matchExpressions keys must be label keys"},
		{"namespace selector label key too long", "IPAddressPool", `spec: {addresses: ["192.0.2.0/24"], serviceAllocation: {namespaceSelectors: [{matchLabels: {"` + strings.Repeat("k", 64) + `": v}}]}}`,
			"spec.serviceAllocation.namespaceSelectors[0]", "namespaceSelectors: matchLabels keys must be label keys"},
		{"peer node selector label value invalid", "BGPPeer", `spec: {myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1, nodeSelectors: [{matchLabels: {zone: "-east"}}]}`,
			"spec.nodeSelectors[0]", "nodeSelectors: matchLabels keys must be label keys"},
		{"pool selector expression key empty", "BGPAdvertisement", `spec: {ipAddressPoolSelectors: [{matchExpressions: [{key: "", operator: Exists}]}]}`,
			"spec.ipAddressPoolSelectors[0]", "ipAddressPoolSelectors: matchExpressions keys must be label keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			obj := heraldObject(t, tc.kind, fmt.Sprintf("labels-%d", i), tc.body)
			err := env.Client.Create(ctx, obj, strict)
			if err == nil {
				_ = env.Client.Delete(ctx, obj)
				t.Fatalf("%s accepted:\n%s", tc.kind, tc.body)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.path) || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s rejected with:\n  %s\nwant %q at %s", tc.kind, msg, tc.msg, tc.path)
			}
		})
	}
	t.Run("valid prefixed keys are accepted", func(t *testing.T) {
		ctx := testContext(t)
		obj := heraldObject(t, "L2Advertisement", "labels-ok", `spec: {nodeSelectors: [{matchLabels: {"topology.kubernetes.io/zone": "east-1", "k": ""}, matchExpressions: [{key: "example.com/rack_A.b", operator: NotIn, values: [x]}]}]}`)
		if err := env.Client.Create(ctx, obj, strict); err != nil {
			t.Fatalf("rejected: %v", err)
		}
		_ = env.Client.Delete(ctx, obj)
	})
}
