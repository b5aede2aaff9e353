package members

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// The timing profile. Herald's liveness feeds layer-2 owner election, so a
// dead speaker must disappear from every peer's view within about a second,
// while a speaker that is merely slow (a loaded 2-core node) must not be
// declared dead. docs/performance.md ("Liveness (memberlist)") derives the
// detection times from these numbers and records the measured ones.
const (
	// probeInterval: every member probes one peer per interval, round robin
	// over a shuffled list, so each of the N-1 peers probes a given member
	// once every N-1 intervals and together they probe it about once per
	// interval.
	probeInterval = 150 * time.Millisecond
	// probeTimeout: wait for a direct UDP ack. LAN round trips are well under
	// 1 ms; the rest is room for scheduling delay on a busy node. After it
	// expires, indirect probes and a TCP ping get the rest of probeInterval,
	// so a probe fails only after 150 ms without any answer. It is kept
	// below probeInterval/2 because a helper probing on our behalf waits
	// probeTimeout too before it nacks: at half or more its nack would
	// arrive after our deadline, and memberlist would count every real
	// failure against our own health (see awarenessMaxMultiplier).
	probeTimeout = 60 * time.Millisecond
	// indirectChecks: peers asked to probe on our behalf, which keeps one
	// lossy link (or our own slowness) from accusing a healthy member.
	indirectChecks = 3
	// suspicionMult: a suspect is declared dead after
	// suspicionMult × max(1, log10 N) × probeInterval = 450 ms (N ≤ 10),
	// unless it refutes first. Memberlist's Lifeguard extension starts that
	// timer at suspicionMaxTimeoutMult times the value (1.35 s) and shortens
	// it to the base value as other members independently confirm the
	// suspicion (it wants suspicionMult-2 = 1 confirmation; none is expected
	// with fewer than 3 members). So the side of a partition that still has
	// company convicts in 450 ms, while a member that alone cannot reach
	// anyone takes 1.35 s to convict its peers — and later to claim their
	// addresses.
	suspicionMult           = 3
	suspicionMaxTimeoutMult = 3
	// awarenessMaxMultiplier: Lifeguard's local health. A member whose own
	// probes fail without the nacks that prove its peers are fine assumes it
	// is the slow one and stretches its probe interval up to this factor.
	awarenessMaxMultiplier = 8
	// gossipInterval: suspect/dead/alive messages are pushed to gossipNodes
	// peers this often (and also piggyback on probes). It bounds how long
	// members disagree after the first one convicts a peer. An idle tick
	// with nothing queued sends nothing.
	gossipInterval = 50 * time.Millisecond
	gossipNodes    = 3
	// retransmitMult: each message is sent retransmitMult × ceil(log10(N+1))
	// times, enough to survive single lost datagrams.
	retransmitMult = 4
	// pushPullInterval: full TCP state exchange with one random member, the
	// anti-entropy that repairs anything gossip missed.
	pushPullInterval = 5 * time.Second
	// gossipToTheDeadTime: how long a dead member is remembered (and still
	// gossiped to) before memberlist forgets it. It has to outlast the
	// slowest peer's conviction (≤ ~2 s) so a stale "alive" cannot resurrect
	// the member; rejoining does not depend on it (see joiner).
	gossipToTheDeadTime = 5 * time.Second
	// deadNodeReclaimTime: a dead member's name may be taken over by a new
	// address after this. The member was already convicted; waiting longer
	// would only delay a speaker that restarted with a new InternalIP.
	deadNodeReclaimTime = time.Millisecond
	// tcpTimeout bounds dialing and each read/write of a join or push/pull,
	// so a join to an unreachable address gives up quickly.
	tcpTimeout = 2 * time.Second

	// Rejoin backoff per desired peer that is not alive (see joiner).
	rejoinMinDelay = 250 * time.Millisecond
	rejoinMaxDelay = 2 * time.Second
)

// clusterLabel prefixes (and, with a key, authenticates) every packet and
// stream, so Herald never merges with another memberlist user on the same
// port, such as MetalLB's speakers on 7946.
const clusterLabel = "herald"

// tune applies Herald's profile to a memberlist configuration.
func tune(c *memberlist.Config) {
	c.ProbeInterval = probeInterval
	c.ProbeTimeout = probeTimeout
	c.IndirectChecks = indirectChecks
	c.SuspicionMult = suspicionMult
	c.SuspicionMaxTimeoutMult = suspicionMaxTimeoutMult
	c.AwarenessMaxMultiplier = awarenessMaxMultiplier
	c.GossipInterval = gossipInterval
	c.GossipNodes = gossipNodes
	c.RetransmitMult = retransmitMult
	c.PushPullInterval = pushPullInterval
	c.GossipToTheDeadTime = gossipToTheDeadTime
	c.DeadNodeReclaimTime = deadNodeReclaimTime
	c.TCPTimeout = tcpTimeout
	c.Label = clusterLabel
}
