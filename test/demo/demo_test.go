package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-lb/herald/test/controlplane"
	"github.com/herald-lb/herald/test/netlab"
)

// TestDemoTellsTheSeedStoryAndCleansUp runs `make demo`'s program as a user
// would and checks that its output tells the story and that `demo down`
// leaves nothing behind.
func TestDemoTellsTheSeedStoryAndCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole lab")
	}
	if why := netlab.Available(); why != "" {
		t.Skip(why)
	}
	if why := netlab.FRRAvailable(); why != "" {
		t.Skip(why)
	}
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, args := range [][]string{
		{"build", "-o", filepath.Join(root, "bin") + "/", "./cmd/controller", "./cmd/speaker", "./cmd/heraldctl"},
		{"build", "-o", filepath.Join(bin, "demo"), "./test/demo"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	run := func(args ...string) string {
		cmd := exec.Command(filepath.Join(bin, "demo"), args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("demo %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { run("down") })
	out := run("up")
	for _, want := range []string{
		"SingleStackFallback", // PreferDualStack on the IPv4-only pool: one address, not Pending
		"Pending",             // RequireDualStack waits
		"AllocationFailed no eligible pool has IPv6", // with its Warning
		"IPBackfilled", // the pool gains IPv6
		"(IPv4 unchanged, IPv6 added)",
		"L2 node",              // heraldctl status names the announcing node
		"answered by pod web-", // curl through the addresses reaches a backend
		"Failover in requests",
		"Done in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "no answer") || strings.Contains(out, "no route") {
		t.Errorf("the client or the router missed an address:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(root, ".demo", "state.json")); err == nil {
		t.Error("the demo left its state file: something was not torn down")
	}
}
