package heraldctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrateCommand(t *testing.T) {
	legacy := "address-pools:\n- name: Default\n  protocol: layer2\n  addresses: [192.0.2.1/24]\n"
	invalid := "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: a}\nspec: {peers: [nobody]}\n"
	outFile := filepath.Join(t.TempDir(), "out.yaml")
	for _, tc := range []struct {
		name      string
		args      []string
		stdin     string
		code      int
		stdout    []string
		stderr    []string
		writeFile bool
	}{
		{
			name: "standard input to standard output", args: []string{"migrate", "-f", "-", "--namespace", "lb"}, stdin: legacy,
			stdout: []string{"kind: IPAddressPool", "name: default", "namespace: lb", "- 192.0.2.0/24", "kind: L2Advertisement"},
			stderr: []string{`warning: legacy configuration (standard input: document 1): address-pools[0].name: "Default" renamed "default"`, "has host bits set", "2 objects written for namespace lb, 2 warnings"},
		},
		{
			name: "to a file", args: []string{"migrate", "-f", "-", "-o", outFile}, stdin: legacy, writeFile: true,
			stderr: []string{"2 objects written"},
		},
		{
			name: "a result Herald refuses fails after writing it", args: []string{"migrate", "-f", "-"}, stdin: invalid, code: 1,
			stdout: []string{"kind: BGPAdvertisement"},
			stderr: []string{`error: BGPAdvertisement "a": spec.peers[0]: names BGPPeer "nobody", which does not exist`, "Herald would refuse them"},
		},
		{name: "nothing to migrate", args: []string{"migrate", "-f", "-"}, stdin: "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", code: 1, stderr: []string{"no MetalLB configuration"}},
		{name: "malformed input", args: []string{"migrate", "-f", "-"}, stdin: "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: 7}\n", code: 1, stderr: []string{"IPAddressPool p: spec:"}},
		{name: "missing file", args: []string{"migrate", "-f", "/nonexistent.yaml"}, code: 1, stderr: []string{"/nonexistent.yaml"}},
		{name: "neither files nor cluster", args: []string{"migrate"}, code: 2, stderr: []string{"either -f FILE or --from-cluster"}},
		{name: "both files and cluster", args: []string{"migrate", "-f", "x", "--from-cluster"}, code: 2},
		{name: "positional argument", args: []string{"migrate", "-f", "x", "extra"}, code: 2, stderr: []string{`unexpected argument "extra"`}},
		{name: "unknown flag", args: []string{"status", "--bogus"}, code: 2},
		{name: "bad output format", args: []string{"status", "-o", "xml"}, code: 2, stderr: []string{"want table, json or yaml"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "no command", args: nil, code: 2, stderr: []string{"Usage:"}},
		{name: "help", args: []string{"help"}, stdout: []string{"heraldctl migrate"}},
		{name: "command help", args: []string{"migrate", "-h"}, stderr: []string{"-from-cluster"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := Main(t.Context(), tc.args, IO{In: strings.NewReader(tc.stdin), Out: &out, Err: &errOut})
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut.String())
				}
			}
			if tc.writeFile {
				b, err := os.ReadFile(outFile)
				if err != nil || !strings.Contains(string(b), "kind: IPAddressPool") || out.Len() != 0 {
					t.Errorf("-o wrote %q (%v), stdout %q", b, err, out.String())
				}
			}
		})
	}
}
