package migrate

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/herald-lb/herald/pkg/allocate"
)

// normalizeAddress rewrites one entry of a MetalLB pool's addresses into the
// spelling Herald accepts. MetalLB parsed CIDRs with net.ParseCIDR, which
// silently drops host bits, and trimmed spaces around the '-' of a range;
// Herald rejects both spellings, so they are rewritten to what MetalLB
// actually used. note is non-empty when the rewrite is worth telling the
// user (the text changed in more than spelling). The result is checked with
// Herald's own parser, so an entry that passes is one Herald accepts.
func normalizeAddress(s string) (out, note string, err error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", "", fmt.Errorf("%q is not a CIDR: %w", s, err)
		}
		out = p.Masked().String()
		if p.Masked() != p {
			note = fmt.Sprintf("%s has host bits set: MetalLB handed out the whole network %s, and so does the migrated pool (Herald rejects the original spelling); narrow it if fewer addresses were meant", s, out)
		}
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		first, err1 := netip.ParseAddr(strings.TrimSpace(a))
		last, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil {
			return "", "", fmt.Errorf("%q is not a range of two addresses", s)
		}
		out = first.String() + "-" + last.String()
	default:
		// A lone address is not valid in MetalLB but its meaning is plain.
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return "", "", fmt.Errorf("%q is neither a CIDR, a first-last range nor an address", s)
		}
		out = netip.PrefixFrom(a, a.BitLen()).String()
	}
	if _, err := allocate.ParseRange(out); err != nil {
		return "", "", err
	}
	return out, note, nil
}
