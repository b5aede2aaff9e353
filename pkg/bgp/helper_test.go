package bgp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/test/netlab"
)

// The lab tests run each node's Speaker in a child process inside the node's
// network namespace. Namespaces belong to threads, and GoBGP dials, listens
// and runs BFD from goroutines of its own, so an in-process Speaker cannot be
// pinned to a namespace reliably; `ip netns exec` on the test binary itself
// puts the whole child there. The child speaks a line protocol on
// stdin/stdout: one JSON request per line in, one "@@"-prefixed JSON reply
// per request out (anything else on stdout is the test framework's).

const (
	helperEnv   = "HERALD_BGP_HELPER" // set: run as helper, value = router ID
	replyPrefix = "@@"
	holdDownEnv = "HERALD_BGP_HELPER_HOLD_DOWN" // Options.LimitHoldDown
)

type helperRequest struct {
	Op      string        `json:"op"` // peers, routes, sessions, shutdown
	Peers   []Peer        `json:"peers,omitempty"`
	Routes  []Route       `json:"routes,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

type helperReply struct {
	Err      string    `json:"err,omitempty"`
	Warn     string    `json:"warn,omitempty"`
	Start    time.Time `json:"start"` // just before the Speaker call
	End      time.Time `json:"end"`   // just after it returned
	Sessions []Session `json:"sessions,omitempty"`
}

func TestMain(m *testing.M) {
	if id := os.Getenv(helperEnv); id != "" {
		os.Exit(runHelper(id))
	}
	os.Exit(m.Run())
}

func runHelper(routerID string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts := Options{Logger: log, RouterID: netip.MustParseAddr(routerID)}
	if d, err := time.ParseDuration(os.Getenv(holdDownEnv)); err == nil {
		opts.LimitHoldDown = d
	}
	s, err := New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	out := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	for in.Scan() {
		var req helperRequest
		var rep helperReply
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			rep.Err = err.Error()
		} else {
			rep.Start = time.Now()
			switch req.Op {
			case "peers":
				err = s.SetPeers(req.Peers)
			case "routes":
				err = s.SetRoutes(req.Routes)
			case "sessions":
				rep.Sessions = s.Sessions()
				err = nil
			case "shutdown":
				ctx, cancel := context.WithTimeout(context.Background(), req.Timeout)
				err = s.Shutdown(ctx)
				cancel()
			default:
				err = fmt.Errorf("unknown op %q", req.Op)
			}
			rep.End = time.Now()
			var w Warnings
			if errors.As(err, &w) {
				rep.Warn = w.Error()
			} else if err != nil {
				rep.Err = err.Error()
			}
		}
		fmt.Fprint(os.Stdout, replyPrefix)
		_ = out.Encode(rep)
		if req.Op == "shutdown" {
			return 0
		}
	}
	// stdin closed: the test is gone; leave without ceremony.
	return 0
}

// speakerProc is the parent's handle on one helper.
type speakerProc struct {
	t    testing.TB
	Host *netlab.Host
	proc *netlab.Proc
	in   io.WriteCloser
	out  *bufio.Reader
	mu   sync.Mutex
}

// startSpeaker runs a helper Speaker in host's namespace with the host's
// IPv4 address as router ID. The lab stops it on Close.
func startSpeaker(t testing.TB, host *netlab.Host) *speakerProc {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := host.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+host.Addr4().String())
	cmd.Stdin, cmd.Stdout = inR, outW
	p, err := host.StartCmd(cmd)
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatal(err)
	}
	sp := &speakerProc{t: t, Host: host, proc: p, in: inW, out: bufio.NewReader(outR)}
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
		if t.Failed() {
			t.Logf("speaker %s log:\n%s", host.Spec.Name, p.Output())
		}
	})
	return sp
}

func (sp *speakerProc) call(req helperRequest) (helperReply, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := sp.in.Write(append(b, '\n')); err != nil {
		return helperReply{}, fmt.Errorf("speaker %s: write: %w", sp.Host.Spec.Name, err)
	}
	for {
		line, err := sp.out.ReadString('\n')
		if err != nil {
			return helperReply{}, fmt.Errorf("speaker %s: read: %w\n%s", sp.Host.Spec.Name, err, sp.proc.Output())
		}
		if rest, ok := strings.CutPrefix(line, replyPrefix); ok {
			var rep helperReply
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				return helperReply{}, fmt.Errorf("speaker %s: reply %q: %w", sp.Host.Spec.Name, rest, err)
			}
			if rep.Err != "" {
				return rep, fmt.Errorf("speaker %s: %s", sp.Host.Spec.Name, rep.Err)
			}
			return rep, nil
		}
	}
}

func (sp *speakerProc) setPeers(peers ...Peer) helperReply {
	sp.t.Helper()
	rep, err := sp.call(helperRequest{Op: "peers", Peers: peers})
	if err != nil {
		sp.t.Fatal(err)
	}
	return rep
}

func (sp *speakerProc) setRoutes(routes ...Route) helperReply {
	sp.t.Helper()
	rep, err := sp.call(helperRequest{Op: "routes", Routes: routes})
	if err != nil {
		sp.t.Fatal(err)
	}
	return rep
}

func (sp *speakerProc) sessions() map[string]Session {
	sp.t.Helper()
	rep, err := sp.call(helperRequest{Op: "sessions"})
	if err != nil {
		sp.t.Fatal(err)
	}
	out := map[string]Session{}
	for _, s := range rep.Sessions {
		out[s.Name] = s
	}
	return out
}

func (sp *speakerProc) shutdown(timeout time.Duration) helperReply {
	sp.t.Helper()
	rep, err := sp.call(helperRequest{Op: "shutdown", Timeout: timeout})
	if err != nil {
		sp.t.Fatal(err)
	}
	select {
	case <-sp.proc.Done():
	case <-time.After(5 * time.Second):
		sp.t.Fatalf("speaker %s did not exit after Shutdown", sp.Host.Spec.Name)
	}
	return rep
}
