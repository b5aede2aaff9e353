package migrate

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	sigsjson "sigs.k8s.io/json"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

const testNamespace = "herald-system"

// TestGolden migrates every testdata/*.input.yaml and compares the YAML
// with *.golden.yaml and the warnings with *.warnings.txt. The YAML is then
// read back and checked with config.Build, Herald's own validation: what it
// finds (errors and warnings) must match *.build.txt, which exists only for
// inputs whose result Herald is expected to question.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.input.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in testdata: %v", err)
	}
	for _, in := range inputs {
		base := strings.TrimSuffix(in, ".input.yaml")
		t.Run(filepath.Base(base), func(t *testing.T) {
			f, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			docs, err := ReadDocuments(f, filepath.Base(in))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Migrate(docs, Options{Namespace: testNamespace})
			if err != nil {
				t.Fatal(err)
			}
			out, err := Render(res.Objects)
			if err != nil {
				t.Fatal(err)
			}
			var warnings strings.Builder
			for _, w := range res.Warnings {
				fmt.Fprintln(&warnings, w)
			}

			back, err := parseHerald(out)
			if err != nil {
				t.Fatalf("the output does not read back as Herald objects: %v\n%s", err, out)
			}
			if !equality.Semantic.DeepEqual(back, res.Objects) {
				t.Errorf("the output does not read back as the objects it was made from:\nwritten %+v\nread    %+v", res.Objects, back)
			}
			var build strings.Builder
			cfg, errs := config.Build(back)
			for _, e := range errs {
				fmt.Fprintln(&build, "error:", e)
			}
			if cfg != nil {
				for _, w := range cfg.Warnings {
					fmt.Fprintln(&build, "warning:", w)
				}
			}

			golden(t, base+".golden.yaml", out, true)
			golden(t, base+".warnings.txt", []byte(warnings.String()), true)
			golden(t, base+".build.txt", []byte(build.String()), false)
		})
	}
}

// golden compares got with the file, or rewrites it under -update. Unless
// keepEmpty, an empty expectation is an absent file, so most inputs have no
// build.txt.
func golden(t *testing.T, path string, got []byte, keepEmpty bool) {
	t.Helper()
	if *update {
		if len(got) == 0 && !keepEmpty {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil && (keepEmpty || !errors.Is(err, os.ErrNotExist)) {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./pkg/migrate -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// parseHerald reads a rendered stream back into typed Herald objects,
// strictly, so a field Herald's types do not have fails the test.
func parseHerald(b []byte) (config.Objects, error) {
	var objs config.Objects
	docs, err := ReadDocuments(bytes.NewReader(b), "output")
	if err != nil {
		return objs, err
	}
	for _, d := range docs {
		var h struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(d.JSON, &h); err != nil {
			return objs, err
		}
		if h.APIVersion != v1beta1.GroupVersion.String() {
			return objs, fmt.Errorf("%s: apiVersion %q", d.Source, h.APIVersion)
		}
		var target any
		switch h.Kind {
		case kindIPAddressPool:
			objs.Pools = append(objs.Pools, v1beta1.IPAddressPool{})
			target = &objs.Pools[len(objs.Pools)-1]
		case kindL2Advertisement:
			objs.L2Advertisements = append(objs.L2Advertisements, v1beta1.L2Advertisement{})
			target = &objs.L2Advertisements[len(objs.L2Advertisements)-1]
		case kindBGPAdvertisement:
			objs.BGPAdvertisements = append(objs.BGPAdvertisements, v1beta1.BGPAdvertisement{})
			target = &objs.BGPAdvertisements[len(objs.BGPAdvertisements)-1]
		case kindBGPPeer:
			objs.BGPPeers = append(objs.BGPPeers, v1beta1.BGPPeer{})
			target = &objs.BGPPeers[len(objs.BGPPeers)-1]
		case kindCommunity:
			objs.Communities = append(objs.Communities, v1beta1.Community{})
			target = &objs.Communities[len(objs.Communities)-1]
		case kindBFDProfile:
			objs.BFDProfiles = append(objs.BFDProfiles, v1beta1.BFDProfile{})
			target = &objs.BFDProfiles[len(objs.BFDProfiles)-1]
		default:
			return objs, fmt.Errorf("%s: kind %q", d.Source, h.Kind)
		}
		strict, err := sigsjson.UnmarshalStrict(d.JSON, target)
		if err != nil {
			return objs, fmt.Errorf("%s: %w", d.Source, err)
		}
		if len(strict) > 0 {
			return objs, fmt.Errorf("%s: %v", d.Source, strict)
		}
	}
	// The written objects carry no TypeMeta; clear what was read so the
	// comparison is about content.
	for i := range objs.Pools {
		objs.Pools[i].APIVersion, objs.Pools[i].Kind = "", ""
	}
	for i := range objs.L2Advertisements {
		objs.L2Advertisements[i].APIVersion, objs.L2Advertisements[i].Kind = "", ""
	}
	for i := range objs.BGPAdvertisements {
		objs.BGPAdvertisements[i].APIVersion, objs.BGPAdvertisements[i].Kind = "", ""
	}
	for i := range objs.BGPPeers {
		objs.BGPPeers[i].APIVersion, objs.BGPPeers[i].Kind = "", ""
	}
	for i := range objs.Communities {
		objs.Communities[i].APIVersion, objs.Communities[i].Kind = "", ""
	}
	for i := range objs.BFDProfiles {
		objs.BFDProfiles[i].APIVersion, objs.BFDProfiles[i].Kind = "", ""
	}
	return objs, nil
}

func TestNormalizeAddress(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		note     bool
		err      bool
	}{
		{in: "192.0.2.0/24", want: "192.0.2.0/24"},
		{in: "192.0.2.7/24", want: "192.0.2.0/24", note: true},
		{in: "2001:db8::1/64", want: "2001:db8::/64", note: true},
		{in: "fc00:f853:0ccd:e799::/124", want: "fc00:f853:ccd:e799::/124"},
		{in: " 192.0.2.1 - 192.0.2.9 ", want: "192.0.2.1-192.0.2.9"},
		{in: "2001:db8::1-2001:db8::ff", want: "2001:db8::1-2001:db8::ff"},
		{in: "192.0.2.9", want: "192.0.2.9/32"},
		{in: "2001:db8::9", want: "2001:db8::9/128"},
		{in: "192.0.2.9-192.0.2.1", err: true},
		{in: "192.0.2.1-2001:db8::1", err: true},
		{in: "192.0.2.0/33", err: true},
		{in: "::ffff:192.0.2.1/128", err: true},
		{in: "fe80::1%eth0", err: true},
		{in: "pool", err: true},
		{in: "", err: true},
	} {
		got, note, err := normalizeAddress(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("normalizeAddress(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if got != tc.want || (note != "") != tc.note {
			t.Errorf("normalizeAddress(%q) = %q, note %q; want %q, note %v", tc.in, got, note, tc.want, tc.note)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ in, object, alias string }{
		{"default", "default", "default"},
		{"Capitalized-AddressPool", "capitalized-addresspool", "capitalized-addresspool"},
		{"under_score", "under-score", "under-score"},
		{"01-numbered", "01-numbered", "numbered"},
		{"dotted.name", "dotted.name", "dotted-name"},
		{"_edge_", "edge", "edge"},
		{"NO_EXPORT", "no-export", "no-export"},
		{"___", "", ""},
		{strings.Repeat("a", 300), strings.Repeat("a", 253), strings.Repeat("a", 63)},
	} {
		if got := objectName(tc.in); got != tc.object {
			t.Errorf("objectName(%q) = %q, want %q", tc.in, got, tc.object)
		}
		if got := aliasName(tc.in); got != tc.alias {
			t.Errorf("aliasName(%q) = %q, want %q", tc.in, got, tc.alias)
		}
	}
	if got := peerName("2001:db8::1"); got != "peer-2001-db8--1" {
		t.Errorf("peerName = %q", got)
	}
	if got := withSuffix(strings.Repeat("a", 253), "-l2"); len(got) != 253 || !strings.HasSuffix(got, "-l2") {
		t.Errorf("withSuffix of a maximal name = %q (%d characters)", got, len(got))
	}
}

func TestReadDocumentsSkipsEmptyDocumentsAndReadsJSON(t *testing.T) {
	in := "# comment only\n---\n---\napiVersion: v1\nkind: ConfigMap\n---\n"
	docs, err := ReadDocuments(strings.NewReader(in), "in")
	if err != nil || len(docs) != 1 || !strings.Contains(string(docs[0].JSON), "ConfigMap") {
		t.Fatalf("ReadDocuments = %+v, %v; want the ConfigMap alone", docs, err)
	}
	docs, err = ReadDocuments(strings.NewReader(`{"apiVersion": "v1", "kind": "List", "items": []}`), "json")
	if err != nil || len(docs) != 1 {
		t.Fatalf("ReadDocuments(JSON) = %+v, %v", docs, err)
	}
}

func TestMigrateErrorsNameTheDocumentAndField(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"wrong type", "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: many}", "BGPPeer p: spec:"},
		{"no name", "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nspec: {addresses: [192.0.2.0/24]}", "metadata.name is empty"},
		{"not an object", "- a\n- b", "not an object"},
		{"neither", "foo: bar", "neither a Kubernetes object"},
		{"bad legacy YAML", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config, namespace: metallb-system}\ndata:\n  config: \"peers: [\"", "ConfigMap metallb-system/config: data.config: invalid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := ReadDocuments(strings.NewReader(tc.doc), "in")
			if err != nil {
				t.Fatal(err)
			}
			_, err = Migrate(docs, Options{Namespace: testNamespace})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Migrate error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEveryObjectGoesToHeraldsNamespace(t *testing.T) {
	docs, err := ReadDocuments(strings.NewReader("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [192.0.2.0/24]}"), "in")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Migrate(docs, Options{Namespace: "lb"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects.Pools) != 1 || res.Objects.Pools[0].Namespace != "lb" {
		t.Fatalf("pools = %+v, want one in namespace lb", res.Objects.Pools)
	}
	if _, err := Migrate(docs, Options{}); err == nil {
		t.Fatal("Migrate without a namespace succeeded")
	}
}
