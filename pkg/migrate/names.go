package migrate

import (
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// objectName turns a legacy name (free text in MetalLB's ConfigMap) into a
// valid object name: lowercase, every other character than a-z, 0-9, '.' and
// '-' replaced by '-', ends trimmed to alphanumerics. It returns "" when
// nothing usable is left.
func objectName(s string) string {
	if len(validation.IsDNS1123Subdomain(s)) == 0 {
		return s
	}
	return clean(s, validation.DNS1123SubdomainMaxLength, true)
}

// aliasName turns a community alias into the form BGPAdvertisement.spec
// .communities accepts for a name: lowercase letters, digits and '-',
// starting with a letter, at most 63 characters.
func aliasName(s string) string {
	out := clean(s, 63, false)
	out = strings.TrimLeft(out, "0123456789-")
	return strings.TrimRight(out, "-")
}

func clean(s string, maxLen int, dots bool) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '.' && dots:
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > maxLen {
		out = out[:maxLen]
	}
	return strings.Trim(out, "-.")
}

// peerName names a BGPPeer made from a legacy peer after its address, which
// reads better in ServiceBGPStatus than a number.
func peerName(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	return "peer-" + strings.NewReplacer(".", "-", ":", "-").Replace(a.String())
}

// withSuffix appends suffix to name, shortening name so the result stays a
// valid object name.
func withSuffix(name, suffix string) string {
	if over := len(name) + len(suffix) - validation.DNS1123SubdomainMaxLength; over > 0 {
		name = strings.TrimRight(name[:len(name)-over], "-.")
	}
	return name + suffix
}
