package members

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The detection benchmarks measure wall-clock latency, not throughput: each
// run stops a member one way and times how long its two peers take to drop
// it from Alive (first = the faster peer, all = both). They run at least 10
// times whatever -benchtime says (-benchtime=Nx for more) and report
// percentiles in milliseconds; ns/op is meaningless here and reported as 0.
//
//	go test -run='^$' -bench=Detect -benchtime=20x ./pkg/members/

const minRuns = 10

type latencies map[string][]time.Duration

func (l latencies) add(metric string, d time.Duration) { l[metric] = append(l[metric], d) }

func (l latencies) report(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	for metric, ds := range l {
		slices.Sort(ds)
		b.ReportMetric(ms(percentile(ds, 50)), metric+"-p50-ms")
		b.ReportMetric(ms(percentile(ds, 95)), metric+"-p95-ms")
		b.ReportMetric(ms(ds[len(ds)-1]), metric+"-max-ms")
	}
}

// percentile is the nearest-rank percentile of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// observe waits until every observer has dropped (gone) or regained (!gone)
// name, and returns the delays from t0 to the first and to the last of them.
func observe(b *testing.B, obs []*Members, name string, gone bool, t0 time.Time) (first, all time.Duration) {
	b.Helper()
	deadline := t0.Add(converge)
	times := make(chan time.Time, len(obs))
	for _, m := range obs {
		go func() {
			var at time.Time
			var ok bool
			if gone {
				at, ok = waitGone(m, name, deadline)
			} else {
				at, ok = waitBack(m, name, deadline)
			}
			if !ok {
				at = time.Time{}
			}
			times <- at
		}()
	}
	first = time.Duration(math.MaxInt64)
	for range obs {
		at := <-times
		if at.IsZero() {
			b.Fatalf("%s not seen (gone=%v) by every peer within %s", name, gone, converge)
		}
		d := at.Sub(t0)
		first, all = min(first, d), max(all, d)
	}
	return first, all
}

// settle waits a random part of a probe round, so a failure lands at a
// random phase of the peers' probing, as a real one does.
func settle() {
	time.Sleep(probeInterval + rand.N(2*probeInterval))
}

// BenchmarkDetectGracefulLeave: a member calls Leave; its peers drop it.
// "notice" is Herald's path (direct notices, then memberlist's leave);
// "gossip-only" is memberlist's Leave alone, for comparison.
func BenchmarkDetectGracefulLeave(b *testing.B) {
	for _, tc := range []struct {
		name  string
		leave func(*Members) error
	}{
		{"notice", func(m *Members) error { return m.Leave(time.Second) }},
		{"gossip-only", func(m *Members) error { return m.ml.Leave(time.Second) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tn := newTestNet(b, 3)
			names := []string{"a", "b", "c"}
			obs := cluster(b, tn, nil, "a", "b")
			for _, m := range obs {
				m.SetPeers(tn.peers(names...))
			}
			lat := latencies{}
			for range max(b.N, minRuns) {
				c, err := New(tn.opts(2, "c"))
				if err != nil {
					b.Fatal(err)
				}
				c.SetPeers(tn.peers(names...))
				for _, m := range append(obs, c) {
					waitAlive(b, m, names...)
				}
				settle()
				t0 := time.Now()
				left := make(chan error, 1)
				go func() { left <- tc.leave(c) }()
				first, all := observe(b, obs, "c", true, t0)
				lat.add("first", first)
				lat.add("all", all)
				// Leave returns once memberlist's broadcast went out; closing
				// earlier would cut that short.
				if err := <-left; err != nil {
					b.Error(err)
				}
				c.Close()
			}
			lat.report(b)
		})
	}
}

// BenchmarkDetectHardKill: a member's process is SIGKILLed; its peers drop
// it ("first", "all"). The next run restarts it under the same name, which
// times a restarted speaker's return ("rejoin": process start until both
// peers count it alive again).
func BenchmarkDetectHardKill(b *testing.B) {
	tn := newTestNet(b, 3)
	names := []string{"a", "b", "c"}
	obs := cluster(b, tn, nil, "a", "b")
	for _, m := range obs {
		m.SetPeers(tn.peers(names...))
	}
	lat := latencies{}
	for i := range max(b.N, minRuns) {
		t0 := time.Now()
		h := startHelper(b, tn, 2, names, nil)
		_, back := observe(b, obs, "c", false, t0)
		if i > 0 {
			lat.add("rejoin", back)
		}
		settle()
		t0 = time.Now()
		h.signal(syscall.SIGKILL)
		first, all := observe(b, obs, "c", true, t0)
		lat.add("first", first)
		lat.add("all", all)
		h.kill()
	}
	lat.report(b)
}

// BenchmarkDetectNetworkCut: a member's network is cut (all its traffic
// dropped, see cutTransport); its peers drop it ("first", "all"), and the
// member itself finds no peer reachable ("isolated": its Reachable is
// empty). Then the network returns and the time until both peers count it
// alive again is "heal".
func BenchmarkDetectNetworkCut(b *testing.B) {
	tn := newTestNet(b, 3)
	names := []string{"a", "b", "c"}
	obs := cluster(b, tn, nil, "a", "b")
	o, cut := withCut(tn.opts(2, "c"))
	c := start(b, o)
	for _, m := range append(obs, c) {
		m.SetPeers(tn.peers(names...))
	}
	lat := latencies{}
	for range max(b.N, minRuns) {
		for _, m := range append(obs, c) {
			waitAlive(b, m, names...)
		}
		// After the previous cut, Lifeguard keeps c's probing slowed until
		// enough probes succeed; measure a cut of a healthy member.
		waitFor(b, converge, func() bool { return c.ml.GetHealthScore() == 0 },
			func() string { return "c's health score stays above 0" })
		settle()
		t0 := time.Now()
		cut(true)
		// Reachable has no notification: poll it.
		isolated := make(chan time.Duration, 1)
		go func() {
			for len(c.Reachable()) > 0 {
				time.Sleep(time.Millisecond)
			}
			isolated <- time.Since(t0)
		}()
		first, all := observe(b, obs, "c", true, t0)
		lat.add("first", first)
		lat.add("all", all)
		lat.add("isolated", <-isolated)
		waitAlive(b, c, "c") // the cut member convicted its peers too
		t0 = time.Now()
		cut(false)
		_, back := observe(b, obs, "c", false, t0)
		lat.add("heal", back)
	}
	lat.report(b)
}

// countingHandler counts memberlist's failure-detector log lines: suspicions
// raised by this member, suspicions it had to refute, convictions.
type countingHandler struct {
	suspects, refutes, convictions atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	switch {
	case strings.HasPrefix(r.Message, "Suspect "):
		h.suspects.Add(1)
	case strings.HasPrefix(r.Message, "Refuting"):
		h.refutes.Add(1)
	case strings.HasPrefix(r.Message, "Marking ") && strings.Contains(r.Message, "as failed"):
		h.convictions.Add(1)
	}
	return nil
}

// loadWindow is how long BenchmarkStabilityUnderLoad watches a healthy
// cluster.
const loadWindow = 15 * time.Second

// BenchmarkStabilityUnderLoad watches a healthy 3-member cluster for
// loadWindow while "burners" processes spin on every core (0 = the machine
// as it is), and reports what would be false positives: suspicions raised,
// refutations, convictions and members dropped (false-drops must be 0).
// It ignores b.N: one window per run.
func BenchmarkStabilityUnderLoad(b *testing.B) {
	for _, burners := range []int{0, 2 * runtime.NumCPU()} {
		b.Run(fmt.Sprintf("burners=%d", burners), func(b *testing.B) {
			tn := newTestNet(b, 3)
			names := []string{"a", "b", "c"}
			hs := make([]*countingHandler, len(names))
			ms := make([]*Members, len(names))
			for i, n := range names {
				hs[i] = &countingHandler{}
				o := tn.opts(i, n)
				o.Logger = slog.New(hs[i])
				ms[i] = start(b, o)
			}
			for _, m := range ms {
				m.SetPeers(tn.peers(names...))
			}
			for _, m := range ms {
				waitAlive(b, m, names...)
			}
			for range burners {
				startBurner(b)
			}
			before := make([]float64, len(ms))
			for i, m := range ms {
				before[i] = testutil.ToFloat64(m.met.events.WithLabelValues(eventLeave))
			}
			maxHealth := 0
			for end := time.Now().Add(loadWindow); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				for _, m := range ms {
					maxHealth = max(maxHealth, m.ml.GetHealthScore())
				}
			}
			var drops float64
			var suspects, refutes, convictions int64
			for i, m := range ms {
				drops += testutil.ToFloat64(m.met.events.WithLabelValues(eventLeave)) - before[i]
				suspects += hs[i].suspects.Load()
				refutes += hs[i].refutes.Load()
				convictions += hs[i].convictions.Load()
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(drops, "false-drops")
			b.ReportMetric(float64(suspects), "suspicions")
			b.ReportMetric(float64(refutes), "refutations")
			b.ReportMetric(float64(convictions), "convictions")
			b.ReportMetric(float64(maxHealth), "max-health-score")
		})
	}
}

// startBurner runs a child process that spins one core until the test ends.
func startBurner(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMember$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HERALD_MEMBERS_HELPER=burn", "GOMAXPROCS=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// BenchmarkPauseTolerance freezes a member's process (SIGSTOP) for a while and
// resumes it (SIGCONT): a stand-in for a node too loaded to answer, such as a
// CPU-throttled pod. It reports the fraction of runs in which the peers
// convicted the paused member (a false positive if it was merely slow), which
// shows where the profile draws the line between slow and dead.
func BenchmarkPauseTolerance(b *testing.B) {
	for _, pause := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond,
		600 * time.Millisecond, 800 * time.Millisecond, time.Second} {
		b.Run(fmt.Sprintf("pause=%s", pause), func(b *testing.B) {
			tn := newTestNet(b, 3)
			names := []string{"a", "b", "c"}
			obs := cluster(b, tn, nil, "a", "b")
			for _, m := range obs {
				m.SetPeers(tn.peers(names...))
			}
			h := startHelper(b, tn, 2, names, nil)
			runs, convicted := max(b.N, minRuns), 0
			for range runs {
				for _, m := range obs {
					waitAliveWithHelper(b, h, m, names...)
				}
				settle()
				before := testutil.ToFloat64(obs[0].met.events.WithLabelValues(eventLeave))
				h.signal(syscall.SIGSTOP)
				time.Sleep(pause)
				h.signal(syscall.SIGCONT)
				// A refutation or conviction in flight settles within the
				// longest suspicion timeout.
				time.Sleep(suspicionMaxTimeoutMult * suspicionMult * probeInterval)
				if testutil.ToFloat64(obs[0].met.events.WithLabelValues(eventLeave)) > before {
					convicted++
				}
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(convicted)/float64(runs), "convicted-fraction")
		})
	}
}
