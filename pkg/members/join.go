package members

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// joiner keeps joining the desired peers that are not alive.
//
// Memberlist never probes a member it has declared dead, and after a network
// partition each side has declared the other dead, so nothing would ever
// bring them back together: push/pull and gossip only go to live members.
// The joiner closes that gap (and also does the first join after start):
// every desired peer that is not alive gets a join — a TCP state exchange,
// after which a healthy peer refutes its death and is alive again on both
// sides — retried with a capped exponential backoff while it fails.
type joiner struct {
	self  string
	port  uint16
	join  func(netip.AddrPort) error
	alive func(name string) bool
	log   *slog.Logger
	count func(ok bool)

	mu    sync.Mutex
	peers map[string]*peer
	kick  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type peer struct {
	addr     netip.Addr
	next     time.Time     // earliest next attempt
	delay    time.Duration // current backoff; 0 after success or a fresh start
	inflight bool
	failing  bool // the last attempt failed (logged once per streak)
}

func newJoiner(self string, port uint16, join func(netip.AddrPort) error, alive func(string) bool,
	log *slog.Logger, count func(bool)) *joiner {
	ctx, cancel := context.WithCancel(context.Background())
	j := &joiner{
		self: self, port: port, join: join, alive: alive, log: log, count: count,
		peers: map[string]*peer{}, kick: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel,
	}
	j.wg.Add(1)
	go j.run()
	return j
}

// setPeers replaces the desired peer set. A peer whose address changed
// starts over without backoff.
func (j *joiner) setPeers(addrs map[string]netip.Addr) {
	j.mu.Lock()
	for name := range j.peers {
		if _, ok := addrs[name]; !ok {
			delete(j.peers, name)
		}
	}
	for name, a := range addrs {
		if name == j.self || !a.IsValid() {
			continue
		}
		a = a.Unmap()
		if p, ok := j.peers[name]; ok && p.addr == a {
			continue
		}
		j.peers[name] = &peer{addr: a}
	}
	j.mu.Unlock()
	j.poke()
}

// joinAll joins every desired peer now, alive or not, in parallel, and
// waits for the joins up to timeout. The joins belong to the joiner's
// WaitGroup, so stop still waits for them.
func (j *joiner) joinAll(timeout time.Duration) {
	var all sync.WaitGroup
	j.mu.Lock()
	if j.ctx.Err() != nil { // left or closed: a join would announce us again
		j.mu.Unlock()
		return
	}
	for name, p := range j.peers {
		j.wg.Add(1)
		all.Add(1)
		go func() {
			defer j.wg.Done()
			defer all.Done()
			err := j.join(netip.AddrPortFrom(p.addr, j.port))
			j.count(err == nil)
			if err != nil {
				j.log.Debug("rejoin failed", "peer", name, "address", p.addr, "error", err)
			}
		}()
	}
	j.mu.Unlock()
	done := make(chan struct{})
	go func() {
		all.Wait()
		close(done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// poke makes the loop look at the peers now (new peers, or a member died).
func (j *joiner) poke() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// halt stops starting joins; joins in flight finish on their own. It
// cancels under mu, so joinAll either has added its joins to wg before or
// sees the cancellation (wg.Add must not race with stop's Wait).
func (j *joiner) halt() {
	j.mu.Lock()
	j.cancel()
	j.mu.Unlock()
}

// stop ends the loop and waits for joins in flight, so none of them uses
// memberlist after it shut down.
func (j *joiner) stop() {
	j.halt()
	j.wg.Wait()
}

func (j *joiner) run() {
	defer j.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-j.kick:
		case <-timer.C:
		}
		wait := j.pass(time.Now())
		timer.Reset(wait)
	}
}

// idleRecheck is how long the loop sleeps with nothing due; it only matters
// if a wake-up were missed, since deaths and SetPeers poke the loop.
const idleRecheck = time.Second

// pass starts the joins that are due and returns how long to sleep.
func (j *joiner) pass(now time.Time) time.Duration {
	wait := idleRecheck
	j.mu.Lock()
	defer j.mu.Unlock()
	for name, p := range j.peers {
		if p.inflight {
			continue
		}
		if j.alive(name) {
			p.delay, p.failing = 0, false
			continue
		}
		if d := p.next.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		p.inflight = true
		j.wg.Add(1)
		go j.attempt(name, p.addr)
	}
	return wait
}

func (j *joiner) attempt(name string, addr netip.Addr) {
	defer j.wg.Done()
	if j.ctx.Err() != nil {
		j.finish(name, addr, nil)
		return
	}
	err := j.join(netip.AddrPortFrom(addr, j.port))
	j.finish(name, addr, err)
}

func (j *joiner) finish(name string, addr netip.Addr, err error) {
	j.mu.Lock()
	p, ok := j.peers[name]
	if !ok || p.addr != addr {
		j.mu.Unlock() // the peer was removed or readdressed meanwhile
		j.poke()
		return
	}
	p.inflight = false
	// A successful join backs off too: if the peer is still not alive at the
	// next pass (it is leaving, or it is a process that sent a leave notice
	// and lingers), there is no point in exchanging state every 250 ms.
	// The backoff resets once the peer is seen alive.
	p.delay = min(max(2*p.delay, rejoinMinDelay), rejoinMaxDelay)
	// ±20% jitter, so members that lost a peer together do not retry in step.
	jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(p.delay))
	p.next = time.Now().Add(p.delay + jitter)
	first := err != nil && !p.failing
	p.failing = err != nil
	j.mu.Unlock()

	if j.ctx.Err() != nil {
		return
	}
	j.count(err == nil)
	switch {
	case err == nil:
		j.log.Debug("joined peer", "peer", name, "address", addr)
	case first:
		j.log.Info("cannot join peer, retrying in the background", "peer", name, "address", addr, "error", err)
	default:
		j.log.Debug("join retry failed", "peer", name, "address", addr, "error", err)
	}
	j.poke()
}
