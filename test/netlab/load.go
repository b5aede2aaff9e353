package netlab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// LoadConfig is one run of the load generator: new TCP connections to
// Target at a fixed Rate for Duration, each an HTTP/1.0 GET answered by a
// backend (see Pod.Serve). The run is bounded by Rate×Duration requests and
// stops by itself.
type LoadConfig struct {
	Target   netip.AddrPort
	Rate     int           // new connections per second (1..2000)
	Duration time.Duration // ≤ 5 min
	// Timeout bounds one request (connect + answer); a request not answered
	// in time is failed. Default 2 s: one lost SYN is retransmitted after 1 s
	// and still counts as served (late).
	Timeout time.Duration
	// Prompt is the latency above which an answered request is "late"
	// (default 200 ms). Gaps are measured between prompt answers.
	Prompt time.Duration
	// Stop ends the run early when closed (optional).
	Stop <-chan struct{}
}

// Request is what happened to one request.
type Request struct {
	Sent    time.Time
	Latency time.Duration
	Err     error // nil when a backend answered
	Answer  Answer
}

// LoadResult sums a run up; Requests holds every request in send order.
type LoadResult struct {
	Target     netip.AddrPort
	Requests   []Request
	OK, Failed int
	Late       int           // answered, but slower than Prompt
	LongestGap time.Duration // longest time between the send times of two consecutive prompt answers
	GapStart   time.Time
	P50, P99   time.Duration // of answered requests
	Max        time.Duration
	Backends   map[string]int // answers per pod
	Errors     map[string]int // failures per kind (connection refused, timeout, ...)
}

func (r LoadResult) String() string {
	return fmt.Sprintf("%s: %d requests, %d failed, %d late, longest gap %s, latency p50 %s p99 %s max %s",
		r.Target, len(r.Requests), r.Failed, r.Late, r.LongestGap.Round(time.Millisecond),
		r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.Max.Round(time.Millisecond))
}

// Load runs the load generator from the host's namespace. Every connection
// is opened by a worker goroutine whose OS thread sits in the namespace.
func (h *Host) Load(cfg LoadConfig) (LoadResult, error) {
	if cfg.Rate < 1 || cfg.Rate > 2000 {
		return LoadResult{}, fmt.Errorf("load: rate %d out of 1..2000", cfg.Rate)
	}
	if cfg.Duration <= 0 || cfg.Duration > 5*time.Minute {
		return LoadResult{}, fmt.Errorf("load: duration %s out of (0, 5m]", cfg.Duration)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Prompt <= 0 {
		cfg.Prompt = 200 * time.Millisecond
	}
	n := int(cfg.Duration.Seconds() * float64(cfg.Rate))
	interval := time.Second / time.Duration(cfg.Rate)
	// Enough workers for every request that can be in flight at once.
	workers := min(int(cfg.Timeout/interval)+8, 1024)

	reqs := make([]Request, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	ready := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Locked and never unlocked: the thread leaves with the goroutine
			// instead of serving others in the lab's namespace.
			runtime.LockOSThread()
			target, err := netns.GetFromName(h.NS)
			if err == nil {
				err = netns.Set(target)
				target.Close()
			}
			ready <- err
			if err != nil {
				return
			}
			for i := range jobs {
				reqs[i].Answer, reqs[i].Err = request(cfg.Target, cfg.Timeout)
				reqs[i].Latency = time.Since(reqs[i].Sent)
			}
		}()
	}
	var errs []error
	for range workers {
		if err := <-ready; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		close(jobs)
		wg.Wait()
		return LoadResult{}, fmt.Errorf("load from %s: %w", h.NS, errors.Join(errs...))
	}
	start := time.Now()
	sent := 0
loop:
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-cfg.Stop:
				break loop
			}
		}
		reqs[i].Sent = time.Now()
		select {
		case jobs <- i:
		default:
			// Every worker is busy: the generator cannot keep its rate.
			reqs[i].Err = errors.New("load generator: no free worker")
		}
		sent++
	}
	close(jobs)
	wg.Wait()
	return summarize(cfg, reqs[:sent]), nil
}

func request(target netip.AddrPort, timeout time.Duration) (Answer, error) {
	deadline := time.Now().Add(timeout)
	c, err := net.DialTimeout("tcp", target.String(), timeout)
	if err != nil {
		return Answer{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: lab\r\n\r\n"); err != nil {
		return Answer{}, err
	}
	body, err := io.ReadAll(io.LimitReader(bufio.NewReader(c), 4096))
	if err != nil {
		return Answer{}, err
	}
	_, payload, ok := strings.Cut(string(body), "\r\n\r\n")
	if !ok {
		return Answer{}, fmt.Errorf("no HTTP answer: %q", body)
	}
	return ParseAnswer(payload)
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	case strings.Contains(err.Error(), "no route"):
		return "no route to host"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func summarize(cfg LoadConfig, reqs []Request) LoadResult {
	r := LoadResult{Target: cfg.Target, Requests: reqs, Backends: map[string]int{}, Errors: map[string]int{}}
	var lat []time.Duration
	var lastPrompt time.Time
	for _, q := range reqs {
		if q.Err != nil {
			r.Failed++
			if len(r.Errors) < 16 {
				r.Errors[errKind(q.Err)]++
			}
			continue
		}
		r.OK++
		r.Backends[q.Answer.Pod]++
		lat = append(lat, q.Latency)
		if q.Latency > cfg.Prompt {
			r.Late++
			continue
		}
		if !lastPrompt.IsZero() {
			if g := q.Sent.Sub(lastPrompt); g > r.LongestGap {
				r.LongestGap, r.GapStart = g, lastPrompt
			}
		}
		lastPrompt = q.Sent
	}
	if n := len(reqs); n > 0 && !lastPrompt.IsZero() {
		if g := reqs[n-1].Sent.Sub(lastPrompt); g > r.LongestGap { // the run ended inside a gap
			r.LongestGap, r.GapStart = g, lastPrompt
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r.P50 = lat[len(lat)/2]
		r.P99 = lat[len(lat)*99/100]
		r.Max = lat[len(lat)-1]
	}
	return r
}
