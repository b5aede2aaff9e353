package members

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHelperMember is not a test: the process tests re-execute the test
// binary with HERALD_MEMBERS_HELPER=1 to get a member in a process of its
// own that they can SIGKILL (a crash) or SIGTERM (a graceful leave).
func TestHelperMember(t *testing.T) {
	switch os.Getenv("HERALD_MEMBERS_HELPER") {
	case "1":
	case "burn": // a CPU hog for BenchmarkStabilityUnderLoad
		for x := uint64(1); ; x = x*6364136223846793005 + 1 {
			burnSink.Store(x)
		}
	default:
		t.Skip("helper process for the process tests")
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Getenv("HERALD_MEMBERS_PORT"))
	if err != nil {
		fail(err)
	}
	addr, err := netip.ParseAddr(os.Getenv("HERALD_MEMBERS_ADDR"))
	if err != nil {
		fail(err)
	}
	key, err := hex.DecodeString(os.Getenv("HERALD_MEMBERS_KEY"))
	if err != nil {
		fail(err)
	}
	peers := map[string]netip.Addr{}
	for _, kv := range strings.Split(os.Getenv("HERALD_MEMBERS_PEERS"), ",") {
		name, a, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if peers[name], err = netip.ParseAddr(a); err != nil {
			fail(err)
		}
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	m, err := New(Options{NodeName: os.Getenv("HERALD_MEMBERS_NAME"), BindAddr: addr, Port: port,
		SecretKey: key, Insecure: len(key) == 0, Logger: testLogger()})
	if err != nil {
		fail(err)
	}
	m.SetPeers(peers)
	// Tell the parent once this member sees every peer: only then can its
	// leave reach them directly.
	go func() {
		for {
			alive := m.Alive()
			all := alive[m.name]
			for p := range peers {
				all = all && alive[p]
			}
			if all {
				fmt.Println("converged")
				return
			}
			<-m.Changes()
		}
	}()
	<-term
	if err := m.Leave(time.Second); err != nil {
		fail(err)
	}
	m.Close()
	os.Exit(0)
}

var burnSink atomic.Uint64

// helper is a member running in a child process.
type helper struct {
	cmd       *exec.Cmd
	stderr    bytes.Buffer
	done      chan struct{}
	converged chan struct{} // closed when the helper sees all its peers
	once      sync.Once
}

// startHelper runs member name on tn.addrs[i] in a child process, with all of
// tn's names as peers; it is killed when the test ends.
func startHelper(t testing.TB, tn testNet, i int, names []string, key []byte) *helper {
	t.Helper()
	h := &helper{done: make(chan struct{}), converged: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperMember$", "-test.count=1")
	h.cmd.Env = helperEnv(names[i], tn.addrs[i], tn.port, tn.peers(names...), key)
	h.cmd.Stderr = &h.stderr
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A helper must not outlive the test process, whatever happens to it.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("starting helper %s: %v", names[i], err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "converged" {
				close(h.converged)
			}
		}
		// Wait only after reading stdout to the end (os/exec's rule).
		_ = h.cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() { h.kill() })
	return h
}

func (h *helper) signal(s syscall.Signal) {
	_ = h.cmd.Process.Signal(s)
}

// kill SIGKILLs the helper (once) and waits for it to be gone.
func (h *helper) kill() {
	h.once.Do(func() { h.signal(syscall.SIGKILL) })
	<-h.done
}

// waitConverged waits until the helper sees all its peers.
func (h *helper) waitConverged(t testing.TB) {
	t.Helper()
	select {
	case <-h.converged:
	case <-h.done:
		t.Fatalf("helper exited: %v\n%s", h.cmd.ProcessState, h.stderr.String())
	case <-time.After(converge):
		t.Fatalf("helper did not see its peers within %s", converge)
	}
}

func (h *helper) exited() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// waitAliveWithHelper is waitAlive that fails fast, with the helper's
// output, when the helper died on its own.
func waitAliveWithHelper(t testing.TB, h *helper, m *Members, want ...string) {
	t.Helper()
	waitFor(t, converge, func() bool {
		if h.exited() {
			t.Fatalf("helper exited: %v\n%s", h.cmd.ProcessState, h.stderr.String())
		}
		got := m.Alive()
		if len(got) != len(want) {
			return false
		}
		for _, w := range want {
			if !got[w] {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%s sees %v, want %v", m.name, sorted(m.Alive()), want) })
}

func TestKilledProcessIsDetectedAndItsRestartRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("process test skipped in -short")
	}
	t.Parallel()
	tn := newTestNet(t, 3)
	names := []string{"a", "b", "c"}
	key := randomKey(t, 32)
	ms := cluster(t, tn, key, "a", "b")
	for _, m := range ms {
		m.SetPeers(tn.peers(names...))
	}
	h := startHelper(t, tn, 2, names, key)
	for _, m := range ms {
		waitAliveWithHelper(t, h, m, names...)
	}
	h.kill()
	for _, m := range ms {
		waitAlive(t, m, "a", "b")
	}
	h2 := startHelper(t, tn, 2, names, key)
	for _, m := range ms {
		waitAliveWithHelper(t, h2, m, names...)
	}
}

func TestTerminatedProcessLeavesGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("process test skipped in -short")
	}
	t.Parallel()
	tn := newTestNet(t, 3)
	names := []string{"a", "b", "c"}
	ms := cluster(t, tn, nil, "a", "b")
	h := startHelper(t, tn, 2, names, nil)
	for _, m := range ms {
		waitAliveWithHelper(t, h, m, names...)
	}
	h.waitConverged(t)
	h.signal(syscall.SIGTERM)
	for _, m := range ms {
		waitAlive(t, m, "a", "b")
	}
	<-h.done
	if !h.cmd.ProcessState.Success() {
		t.Errorf("helper exited with %v:\n%s", h.cmd.ProcessState, h.stderr.String())
	}
	// The peers learned it from the helper's notices, not from failure
	// detection (which would count a leave event but no notice).
	notices := 0.0
	for _, m := range ms {
		notices += testutil.ToFloat64(m.met.events.WithLabelValues(eventNotice))
	}
	if notices == 0 {
		t.Error("no peer received the leave notice")
	}
}
