package heraldctl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/test/controlplane"
)

func TestProgramNameFollowsHowTheBinaryWasStarted(t *testing.T) {
	for argv0, want := range map[string]string{
		"heraldctl":                    "heraldctl",
		"/usr/local/bin/heraldctl":     "heraldctl",
		"/home/u/bin/kubectl-herald":   "kubectl herald",
		"kubectl-herald":               "kubectl herald",
		"kubectl-herald.exe":           "kubectl herald",
		"/opt/krew/bin/kubectl-herald": "kubectl herald",
	} {
		if got := ProgramName(argv0); got != want {
			t.Errorf("ProgramName(%q) = %q, want %q", argv0, got, want)
		}
	}
}

func TestMessagesNameThePluginWhenRunAsOne(t *testing.T) {
	var out, errOut strings.Builder
	code := Main(t.Context(), []string{"frobnicate"}, IO{In: strings.NewReader(""), Out: &out, Err: &errOut, Name: "kubectl herald"})
	if code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errOut.String(), `kubectl herald: unknown command "frobnicate"`) ||
		!strings.Contains(errOut.String(), "kubectl herald status  [flags]") || strings.Contains(errOut.String(), "heraldctl") {
		t.Errorf("usage as a plugin:\n%s", errOut.String())
	}
}

// TestKubectlRunsHeraldAsPlugin builds cmd/kubectl-herald, puts it on PATH
// and runs the real kubectl (built beside the test apiserver): `kubectl
// plugin list` finds it and `kubectl herald status` reports the cluster.
func TestKubectlRunsHeraldAsPlugin(t *testing.T) {
	e := controlPlane(t)
	ctx := testContext(t)
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin, "./cmd/kubectl-herald")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kubectl-herald: %v\n%s", err, out)
	}
	mustCreate(t, ctx, e.Client, &v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: "plugin-pool", Namespace: heraldNamespace},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/28"}},
	})

	// Not e.Kubectl: kubectl looks a plugin up only when the plugin name
	// comes before any flag, so the kubeconfig goes in the environment.
	kubectl := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(e.Assets, "kubectl"), args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+e.Kubeconfig, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := kubectl("plugin", "list")
	if err != nil || !strings.Contains(out, filepath.Join(bin, "kubectl-herald")) {
		t.Errorf("kubectl plugin list: %v\n%s", err, out)
	}
	out, err = kubectl("herald", "status", "--namespace", heraldNamespace)
	if err != nil || !strings.Contains(out, "plugin-pool") {
		t.Errorf("kubectl herald status: %v\n%s", err, out)
	}
	out, err = kubectl("herald", "status", "--no-such-flag")
	if err == nil || !strings.Contains(out, "kubectl herald status") {
		t.Errorf("kubectl herald status --no-such-flag: err %v\n%s", err, out)
	}
}
