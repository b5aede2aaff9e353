package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// BFD asks for a BFD session (RFC 5880/5881, single hop) beside the BGP
// session; when BFD declares the peer down, GoBGP resets the BGP session at
// once instead of waiting for the hold timer.
type BFD struct {
	ReceiveInterval  time.Duration // required minimum receive interval; 0 = GoBGP's 1 s
	TransmitInterval time.Duration // desired minimum transmit interval; 0 = GoBGP's 1 s
	DetectMultiplier uint32        // 0 = 3
	// Passive and MinimumTTL are accepted for API parity with BFDProfile but
	// GoBGP v4's BFD has neither; a peer that sets them gets a Warning.
	Passive    bool
	MinimumTTL uint32
}

// Peer is one BGP neighbour of this node.
type Peer struct {
	Name    string // unique key; used in logs, metrics and Route.Peers
	MyASN   uint32
	ASN     uint32
	Address netip.Addr
	Port    uint16     // 0 = 179
	Source  netip.Addr // local address to connect from; zero = chosen by the kernel

	HoldTime      time.Duration // 0 = 90 s; whole seconds on the wire
	KeepaliveTime time.Duration // 0 = HoldTime/3
	ConnectTime   time.Duration // retry interval for failed connects; 0 = 2 s (GoBGP's default is 120 s)

	EBGPMultiHop    bool
	GracefulRestart bool
	Password        string // TCP MD5 (RFC 2385); never logged
	BFD             *BFD

	// Next hops announced to this peer. Zero means: the session's own local
	// address for the session's family, and the node's address of the other
	// family on the interface towards the peer (IPv6 routes over an IPv4
	// session need an explicit IPv6 next hop and vice versa).
	NextHopV4, NextHopV6 netip.Addr

	// MaxReceived bounds the paths per address family this peer may send
	// (0 = DefaultMaxReceived). Herald exports only, but GoBGP keeps what a
	// peer sends before the import policy rejects it; see ReceiveLimit.
	MaxReceived uint32
}

// DefaultMaxReceived is the per-family bound on a peer's paths: ≈ 5.5 MiB
// of GoBGP's Adj-RIB-In (≈ 1.1 KiB a path, measured), while a full table
// (≈ 1 M IPv4 paths) would cost over a gigabyte.
const DefaultMaxReceived = 5000

func (p Peer) maxReceived() uint32 {
	if p.MaxReceived == 0 {
		return DefaultMaxReceived
	}
	return p.MaxReceived
}

const (
	defaultConnectRetry = 2 * time.Second
	// GoBGP waits 30 s in Idle after a reset by default; a load balancer
	// wants its routes back as soon as the peer is reachable again.
	idleHoldAfterReset = 1 * time.Second
	// How long a GR helper keeps our routes while we restart (RFC 4724).
	gracefulRestartTime = 120
)

func (p *Peer) validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if !p.Address.IsValid() {
		errs = append(errs, errors.New("address is not set"))
	} else if p.Address.Zone() != "" {
		errs = append(errs, fmt.Errorf("address %s: zones (link-local peering) are not supported", p.Address))
	}
	if p.Password != "" && strings.TrimSpace(p.Password) == "" {
		errs = append(errs, errors.New("password is only whitespace (TCP MD5 would be meaningless)"))
	}
	if len(p.Password) > 80 {
		errs = append(errs, fmt.Errorf("password is %d bytes; TCP MD5 keys are at most 80", len(p.Password)))
	}
	if p.Source.IsValid() && p.Address.IsValid() && p.Source.Is4() != p.Address.Unmap().Is4() {
		errs = append(errs, fmt.Errorf("source %s is not of the family of address %s", p.Source, p.Address))
	}
	if p.MyASN == 0 || p.ASN == 0 {
		errs = append(errs, fmt.Errorf("myASN %d and ASN %d must both be set", p.MyASN, p.ASN))
	}
	if p.HoldTime != 0 && p.HoldTime < 3*time.Second {
		errs = append(errs, fmt.Errorf("holdTime %s: must be 0 or at least 3s", p.HoldTime))
	}
	if p.KeepaliveTime < 0 || p.HoldTime < 0 || p.ConnectTime < 0 {
		errs = append(errs, errors.New("timers must not be negative"))
	}
	if p.HoldTime != 0 && p.KeepaliveTime > p.HoldTime {
		errs = append(errs, fmt.Errorf("keepaliveTime %s exceeds holdTime %s", p.KeepaliveTime, p.HoldTime))
	}
	if p.NextHopV4.IsValid() && !p.NextHopV4.Is4() {
		errs = append(errs, fmt.Errorf("nextHopV4 %s is not IPv4", p.NextHopV4))
	}
	if p.NextHopV6.IsValid() && (!p.NextHopV6.Is6() || p.NextHopV6.Is4In6()) {
		errs = append(errs, fmt.Errorf("nextHopV6 %s is not IPv6", p.NextHopV6))
	}
	if b := p.BFD; b != nil && (b.ReceiveInterval < 0 || b.TransmitInterval < 0 || b.DetectMultiplier > 255) {
		errs = append(errs, errors.New("bfd: negative interval or multiplier above 255"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("peer %q: %w", p.Name, err)
	}
	return nil
}

// isIPv4 reports whether the session runs over IPv4.
func (p *Peer) isIPv4() bool { return p.Address.Unmap().Is4() }

// sessionEqual reports whether a and b describe the same BGP session; next
// hops only shape what is exported and are compared separately.
func sessionEqual(a, b Peer) bool {
	a.NextHopV4, a.NextHopV6, b.NextHopV4, b.NextHopV6 = netip.Addr{}, netip.Addr{}, netip.Addr{}, netip.Addr{}
	ab, bb := a.BFD, b.BFD
	a.BFD, b.BFD = nil, nil
	if a != b {
		return false
	}
	if (ab == nil) != (bb == nil) {
		return false
	}
	return ab == nil || *ab == *bb
}

func seconds(d time.Duration) uint64 { return uint64((d + time.Second/2) / time.Second) }

func families() []*api.Family {
	return []*api.Family{
		{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
	}
}

// apiPeer turns a Peer into GoBGP's neighbour configuration. Every session
// carries both unicast families (MP-BGP), whatever its own address family.
func (p *Peer) apiPeer() *api.Peer {
	connect := p.ConnectTime
	if connect == 0 {
		connect = defaultConnectRetry
	}
	if connect < time.Second {
		connect = time.Second
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			LocalAsn:        p.MyASN,
			AuthPassword:    p.Password,
			Description:     p.Name,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           seconds(connect),
			HoldTime:               seconds(p.HoldTime),
			KeepaliveInterval:      seconds(p.KeepaliveTime),
			IdleHoldTimeAfterReset: seconds(idleHoldAfterReset),
		}},
		Transport: &api.Transport{RemotePort: uint32(p.Port)},
	}
	if ap.Timers.Config.HoldTime != 0 && ap.Timers.Config.KeepaliveInterval == 0 {
		ap.Timers.Config.KeepaliveInterval = max(1, ap.Timers.Config.HoldTime/3)
	}
	if p.Source.IsValid() {
		ap.Transport.LocalAddress = p.Source.String()
	}
	if p.EBGPMultiHop {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	for _, f := range families() {
		as := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true},
			PrefixLimits: &api.PrefixLimit{Family: f, MaxPrefixes: p.maxReceived()}}
		if p.GracefulRestart {
			as.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		ap.AfiSafis = append(ap.AfiSafis, as)
	}
	if p.GracefulRestart {
		ap.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: gracefulRestartTime}
	}
	if b := p.BFD; b != nil {
		ap.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(b.TransmitInterval / time.Microsecond),
			RequiredMinimumReceive:   uint32(b.ReceiveInterval / time.Microsecond),
			DetectionMultiplier:      b.DetectMultiplier,
		}
	}
	return ap
}

// bfdWarnings lists the BFD settings GoBGP cannot honour.
func (p *Peer) bfdWarnings() []string {
	var w []string
	if p.BFD == nil {
		return nil
	}
	if p.BFD.Passive {
		w = append(w, "bfd passive mode is not supported by GoBGP v4; the session sends control packets actively")
	}
	if p.BFD.MinimumTTL != 0 && p.BFD.MinimumTTL != 255 {
		w = append(w, fmt.Sprintf("bfd minimumTTL %d is not enforced by GoBGP v4 (single-hop BFD sends TTL 255)", p.BFD.MinimumTTL))
	}
	return w
}
