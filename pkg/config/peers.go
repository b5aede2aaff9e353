package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

// communities maps every alias name to its value. objs are oldest first: an
// older Community keeps a name another defines too.
func (b *builder) communities(objs []v1beta1.Community) map[string]string {
	out := map[string]string{}
	owner := map[string]string{}
	for _, o := range objs {
		for i, c := range o.Spec.Communities {
			field := fmt.Sprintf("spec.communities[%d]", i)
			if prev, dup := owner[c.Name]; dup {
				if prev == o.Name {
					b.fail(KindCommunity, o.Name, field+".name", v1beta1.ReasonDuplicateName, "%q is defined twice in this object; the first is in force", c.Name)
				} else {
					b.fail(KindCommunity, o.Name, field+".name", v1beta1.ReasonDuplicateName, "%q is already defined by the older Community %q, which is in force; this entry is ignored", c.Name, prev)
				}
				continue
			}
			if _, _, err := ParseCommunity(c.Value); err != nil {
				b.fail(KindCommunity, o.Name, field+".value", v1beta1.ReasonInvalidField, "%v; this entry is ignored", err)
				continue
			}
			owner[c.Name], out[c.Name] = o.Name, c.Value
		}
	}
	return out
}

// bfdProfiles returns the profiles in force by name, and the names of those
// disabled.
func (b *builder) bfdProfiles(objs []v1beta1.BFDProfile) map[string]*BFDProfile {
	out := map[string]*BFDProfile{}
	for _, o := range objs {
		if _, dup := out[o.Name]; dup {
			b.fail(KindBFDProfile, o.Name, "metadata.name", v1beta1.ReasonDuplicateName, "defined twice; the older definition is in force")
			continue
		}
		p := &BFDProfile{Name: o.Name, ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}
		if v := o.Spec.ReceiveInterval; v != nil {
			p.ReceiveInterval = time.Duration(*v) * time.Millisecond
		}
		if v := o.Spec.TransmitInterval; v != nil {
			p.TransmitInterval = time.Duration(*v) * time.Millisecond
		}
		if v := o.Spec.DetectMultiplier; v != nil {
			p.DetectMultiplier = *v
		}
		if v := o.Spec.PassiveMode; v != nil {
			p.Passive = *v
		}
		if v := o.Spec.MinimumTTL; v != nil {
			p.MinimumTTL = *v
		}
		if p.DetectMultiplier < 2 || p.DetectMultiplier > 255 {
			b.disable(KindBFDProfile, o.Name, "spec.detectMultiplier", v1beta1.ReasonInvalidField, "%d is outside 2..255", p.DetectMultiplier)
		}
		out[o.Name] = p
	}
	return out
}

// password reads and checks the password a peer names.
func password(ref *corev1.SecretReference, secrets map[string]corev1.Secret) (pw, reason, msg string) {
	if s, ok := secrets[ref.Name]; ok && (ref.Namespace == "" || ref.Namespace == s.Namespace) {
		v, ok := s.Data["password"]
		if !ok {
			if sv, sok := s.StringData["password"]; sok {
				v, ok = []byte(sv), true
			}
		}
		switch {
		case !ok:
			return "", v1beta1.ReasonInvalidPassword, fmt.Sprintf("Secret %q has no key \"password\"; the peer opens no session", ref.Name)
		case strings.TrimSpace(string(v)) == "":
			return "", v1beta1.ReasonInvalidPassword, fmt.Sprintf("Secret %q holds an empty password; the peer opens no session", ref.Name)
		case len(v) > MaxPasswordBytes:
			return "", v1beta1.ReasonInvalidPassword, fmt.Sprintf("Secret %q holds a password of %d bytes, more than the %d TCP MD5 allows; the peer opens no session", ref.Name, len(v), MaxPasswordBytes)
		}
		return string(v), "", ""
	}
	where := "Herald's namespace"
	if ref.Namespace != "" {
		where = "namespace " + ref.Namespace + " (only Herald's namespace is read)"
	}
	return "", v1beta1.ReasonMissingReference, fmt.Sprintf("names Secret %q, which does not exist in %s; the peer opens no session", ref.Name, where)
}

func (b *builder) peers(objs []v1beta1.BGPPeer, bfd map[string]*BFDProfile, secrets map[string]corev1.Secret) {
	seen := map[string]bool{}
	var inForce []Peer // oldest first
	for _, o := range objs {
		if seen[o.Name] {
			b.fail(KindBGPPeer, o.Name, "metadata.name", v1beta1.ReasonDuplicateName, "defined twice; the older definition is in force")
			continue
		}
		seen[o.Name] = true
		bad := func(field, format string, args ...any) {
			b.disable(KindBGPPeer, o.Name, field, v1beta1.ReasonInvalidField, format, args...)
		}
		p := Peer{
			Name: o.Name, MyASN: o.Spec.MyASN, ASN: o.Spec.PeerASN, Port: o.Spec.PeerPort,
			HoldTime: DefaultHoldTime, PasswordSecret: o.Spec.PasswordSecret,
			EBGPMultiHop: o.Spec.EBGPMultiHop, GracefulRestart: o.Spec.EnableGracefulRestart,
		}
		if m := o.Spec.MaxReceivedPrefixes; m != nil && *m > 0 {
			p.MaxReceived = uint32(*m)
		}
		p.NodeSelectors, _ = b.selectors(KindBGPPeer, o.Name, "spec.nodeSelectors", o.Spec.NodeSelectors)
		if p.Port == 0 {
			p.Port = DefaultPort
		}
		var err error
		if p.Address, err = netip.ParseAddr(o.Spec.PeerAddress); err != nil {
			bad("spec.peerAddress", "%q is not an IP address", o.Spec.PeerAddress)
		}
		if s := o.Spec.SourceAddress; s != "" {
			if p.Source, err = netip.ParseAddr(s); err != nil {
				bad("spec.sourceAddress", "%q is not an IP address", s)
			} else if p.Address.IsValid() && p.Source.Is4() != p.Address.Is4() {
				bad("spec.sourceAddress", "%s is not of the same family as peerAddress %s", p.Source, p.Address)
			}
		}
		if s := o.Spec.RouterID; s != "" {
			if p.RouterID, err = netip.ParseAddr(s); err != nil || !p.RouterID.Is4() {
				bad("spec.routerID", "%q is not an IPv4 address", s)
			}
		}
		if p.MyASN == 0 {
			bad("spec.myASN", "must be 1..4294967295")
		}
		if p.ASN == 0 {
			bad("spec.peerASN", "must be 1..4294967295")
		}
		if o.Spec.HoldTime != nil {
			p.HoldTime = o.Spec.HoldTime.Duration
		}
		if o.Spec.KeepaliveTime != nil {
			p.KeepaliveTime = o.Spec.KeepaliveTime.Duration
		} else {
			p.KeepaliveTime = p.HoldTime / 3
		}
		if o.Spec.ConnectTime != nil {
			p.ConnectTime = o.Spec.ConnectTime.Duration
		}
		if p.HoldTime != 0 && p.HoldTime < 3*time.Second {
			bad("spec.holdTime", "%s is below the BGP minimum of 3s (0 disables keepalives)", p.HoldTime)
		}
		if p.HoldTime != 0 && p.KeepaliveTime >= p.HoldTime {
			bad("spec.keepaliveTime", "%s must be shorter than holdTime %s", p.KeepaliveTime, p.HoldTime)
		}
		if ref := o.Spec.PasswordSecret; ref != nil && secrets != nil {
			pw, reason, msg := password(ref, secrets)
			if reason != "" {
				b.disable(KindBGPPeer, o.Name, "spec.passwordSecret", reason, "%s", msg)
			}
			if pw != strings.TrimSpace(pw) {
				b.warn(KindBGPPeer, o.Name, "spec.passwordSecret", "the password in Secret %q starts or ends with whitespace, which is part of it; the router must use the same bytes", ref.Name)
			}
			p.Password = pw
		}
		if n := o.Spec.BFDProfile; n != "" {
			prof := bfd[n]
			switch {
			case prof == nil:
				b.fail(KindBGPPeer, o.Name, "spec.bfdProfile", v1beta1.ReasonMissingReference, "names BFDProfile %q, which does not exist; the session runs without BFD", n)
			case b.disabled(KindBFDProfile, n):
				b.fail(KindBGPPeer, o.Name, "spec.bfdProfile", v1beta1.ReasonMissingReference, "names BFDProfile %q, which is invalid; the session runs without BFD", n)
			default:
				p.BFD = prof
			}
		}
		if b.disabled(KindBGPPeer, o.Name) {
			continue
		}
		// Two peers to one router from the same nodes would open one
		// session twice: the older peer in force keeps it.
		if i := slices.IndexFunc(inForce, func(q Peer) bool {
			return q.Address == p.Address && q.Port == p.Port && selectorsOverlap(q.NodeSelectors, p.NodeSelectors)
		}); i >= 0 {
			b.disable(KindBGPPeer, o.Name, "spec.peerAddress", v1beta1.ReasonDuplicatePeer,
				"%s port %d is already the address of the older BGPPeer %q for some of the same nodes; this peer opens no session", p.Address, p.Port, inForce[i].Name)
			continue
		}
		inForce = append(inForce, p)
	}
	b.cfg.Peers = slices.Clone(inForce)
	slices.SortFunc(b.cfg.Peers, func(x, y Peer) int { return strings.Compare(x.Name, y.Name) })
}

// selectorsOverlap reports whether some node could match both selector
// lists (empty matches every node). It is conservative: two selectors
// overlap unless a key's requirements provably exclude each other.
func selectorsOverlap(a, b []labels.Selector) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if !disjoint(x, y) {
				return true
			}
		}
	}
	return false
}

func disjoint(x, y labels.Selector) bool {
	rx, _ := x.Requirements()
	ry, _ := y.Requirements()
	for _, p := range rx {
		for _, q := range ry {
			if p.Key() == q.Key() && (excludes(p, q) || excludes(q, p)) {
				return true
			}
		}
	}
	return false
}

// excludes reports whether no label set satisfies both p and q (same key).
func excludes(p, q labels.Requirement) bool {
	in := func(r labels.Requirement) bool {
		op := r.Operator()
		return op == selection.In || op == selection.Equals || op == selection.DoubleEquals
	}
	notIn := func(r labels.Requirement) bool {
		return r.Operator() == selection.NotIn || r.Operator() == selection.NotEquals
	}
	switch {
	case in(p) && in(q):
		return !p.Values().HasAny(q.Values().UnsortedList()...)
	case in(p) && notIn(q):
		return q.Values().IsSuperset(p.Values())
	case in(p) || p.Operator() == selection.Exists:
		return q.Operator() == selection.DoesNotExist
	}
	return false
}
