package announce

import (
	"maps"
	"net/netip"
	"time"
)

// Observed is what the speaker saw besides the cluster objects: who runs a
// speaker and who is reachable, the carrier of each interface and the clock.
type Observed struct {
	Now  time.Time
	Self string
	// Speakers are the nodes known to run a speaker, Self included: the
	// partition rule counts only these (see Quorum). nil means no membership
	// runs, and the partition rule is off.
	Speakers map[string]bool
	// Reachable are the other speakers reachable right now (no failed probe).
	Reachable map[string]bool
	// Alive are the nodes whose speaker is alive (the election's view).
	Alive map[string]bool
	// Carrier tells per interface whether it is up with carrier; an
	// interface absent from the map counts as up.
	Carrier map[string]bool
	// HandBackDelay is how long this node waits before answering an address
	// another live node may still answer for, so the previous owner stops
	// first: a short silence instead of two answers.
	HandBackDelay time.Duration
}

// Memory is what the layer-2 decision remembers between two calls (owners
// it last saw, hand-backs under way, carrier transitions). The zero value is
// a speaker that has just started. Decide never changes the Memory it is
// given; it returns the next one.
type Memory struct {
	started     bool
	partitioned bool
	holdUntil   time.Time
	lastOwners  map[netip.Addr]string
	pending     map[netip.Addr]time.Time
	answering   map[netip.Addr]bool
	carrier     map[string]bool
	upSince     map[string]time.Time
}

// Decision is what this node answers and routes now.
type Decision struct {
	// L2 holds the addresses to answer for now, each with its interfaces.
	L2 map[netip.Addr]L2Entry
	// Owners is every address's owner as this node believes others see it:
	// an address waiting for its hand-back is still the previous owner's.
	Owners map[netip.Addr]string
	BGP    []Route
	// Quorum is false while this node is in a minority partition and
	// answers for nothing by layer 2.
	Quorum bool
	// Rejoin asks the glue to tell the peers that this node is back (after
	// a partition or a link that returned): they may hold it dead.
	Rejoin bool
	// Retry is when to decide again although nothing changed (a hand-back
	// delay ends); 0 means only on the next change.
	Retry time.Duration
	// Events describe transitions worth a log line.
	Events []string
}

// Quorum reports whether a node that reaches reachable of speakers speakers
// (itself included) may answer by layer 2. With three or more speakers a
// node must reach a strict majority: it cannot tell a cut of its own link
// from the death of the others, and the majority side takes over. With one
// or two, no side can be a majority, so each answers (a cut between two
// speakers makes both answer until it heals; see docs/concepts.md).
func Quorum(reachable, speakers int) bool {
	return speakers < 3 || reachable*2 > speakers
}

// Decide turns a plan and the observations into what this node answers
// now. A node in a minority partition answers for nothing. A node that wins
// an address another live node may still be answering for (a hand-back after
// a restart, a healed cut or a returned link) waits HandBackDelay, so the
// previous owner, which sees the same change, stops first. Failover from a
// dead owner, and new addresses, are claimed at once. Addresses whose
// interfaces all lost carrier are not answered: nobody hears them there.
func Decide(plan Plan, obs Observed, mem Memory) (Decision, Memory) {
	d := Decision{Owners: plan.Owners, BGP: plan.BGP, Quorum: true, L2: map[netip.Addr]L2Entry{}}
	next := Memory{started: true, holdUntil: mem.holdUntil, carrier: map[string]bool{}, upSince: maps.Clone(mem.upSince),
		pending: map[netip.Addr]time.Time{}, answering: map[netip.Addr]bool{}}
	if next.upSince == nil {
		next.upSince = map[string]time.Time{}
	}
	now := obs.Now
	for _, e := range plan.L2 {
		for _, i := range e.Interfaces {
			up := carrierUp(obs.Carrier, i)
			was, seen := mem.carrier[i]
			switch {
			case seen && was && !up:
				d.Events = append(d.Events, "link lost carrier; not answering on "+i)
			case seen && !was && up:
				d.Events = append(d.Events, "link has carrier again; answering on "+i+" after the hand-back delay")
				next.upSince[i] = now
				d.Rejoin = true
			}
			next.carrier[i] = up
		}
	}
	if obs.Speakers != nil {
		reachable := 0
		for n := range obs.Speakers {
			if n == obs.Self || obs.Reachable[n] {
				reachable++
			}
		}
		if !Quorum(reachable, len(obs.Speakers)) {
			if !mem.partitioned {
				d.Events = append(d.Events, "minority partition: answering for nothing until the others are reachable")
			}
			next.partitioned = true
			next.carrier = mergeCarrier(mem.carrier, next.carrier)
			d.Quorum = false
			return d, next
		}
	}
	if mem.partitioned || !mem.started {
		// First decision, or back from a partition: whatever this node wins
		// may still be answered by whoever held it meanwhile.
		if mem.partitioned {
			d.Events = append(d.Events, "peers reachable again; taking addresses back after the hand-back delay")
			d.Rejoin = true
		}
		if othersAlive(obs) {
			next.holdUntil = now.Add(obs.HandBackDelay)
		}
	}
	for a, e := range plan.L2 {
		if len(e.Interfaces) == 0 {
			continue // nowhere to answer
		}
		var wait time.Time
		up, anyUp := linkReady(e.Interfaces, next.carrier, next.upSince, obs.HandBackDelay)
		switch prev, known := mem.lastOwners[a]; {
		case !anyUp:
			continue
		case now.Before(up):
			wait = up
		case mem.answering[a]:
		case now.Before(next.holdUntil):
			wait = next.holdUntil
		case known && prev != obs.Self && obs.Alive[prev]:
			since, ok := mem.pending[a]
			if !ok {
				since = now
			}
			next.pending[a] = since
			wait = since.Add(obs.HandBackDelay)
		}
		if now.Before(wait) {
			if r := wait.Sub(now); d.Retry == 0 || r < d.Retry {
				d.Retry = r
			}
			continue
		}
		delete(next.pending, a)
		d.L2[a] = e
		next.answering[a] = true
	}
	if len(next.pending) > 0 {
		d.Owners = maps.Clone(plan.Owners)
		for a := range next.pending {
			d.Owners[a] = mem.lastOwners[a] // still someone else's until the hand-back completes
		}
	}
	next.lastOwners = d.Owners
	return d, next
}

func carrierUp(c map[string]bool, iface string) bool {
	up, ok := c[iface]
	return !ok || up
}

// mergeCarrier keeps what was known of interfaces this decision did not look at.
func mergeCarrier(old, cur map[string]bool) map[string]bool {
	out := maps.Clone(old)
	if out == nil {
		out = map[string]bool{}
	}
	maps.Copy(out, cur)
	return out
}

func othersAlive(obs Observed) bool {
	for n, ok := range obs.Alive {
		if ok && n != obs.Self {
			return true
		}
	}
	return false
}

// linkReady tells whether any interface has carrier, and from when the
// address may be answered: the end of the hand-back delay of the interface
// that returned last.
func linkReady(ifaces []string, carrier map[string]bool, upSince map[string]time.Time, delay time.Duration) (time.Time, bool) {
	var latest time.Time
	anyUp := false
	for _, i := range ifaces {
		if !carrierUp(carrier, i) {
			continue
		}
		anyUp = true
		if t := upSince[i]; t.After(latest) {
			latest = t
		}
	}
	if latest.IsZero() {
		return latest, anyUp
	}
	return latest.Add(delay), anyUp
}
