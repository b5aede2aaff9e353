package allocate

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
)

// u128 is an address as an unsigned number, so that ranges can be sized and
// stepped without overflow: a /64 holds 2^64 addresses, one more than uint64
// can count. IPv4 addresses use the low 32 bits.
type u128 struct{ hi, lo uint64 }

func u128Of(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// addr converts back; u must lie inside f's address space.
func (u u128) addr(f Family) netip.Addr {
	if f == IPv4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

func (u u128) less(v u128) bool { return u.cmp(v) < 0 }

func (u u128) isZero() bool { return u.hi == 0 && u.lo == 0 }

// inc returns u+1, and false when that wraps past 2^128-1.
func (u u128) inc() (u128, bool) {
	if u.lo == math.MaxUint64 {
		if u.hi == math.MaxUint64 {
			return u128{}, false
		}
		return u128{hi: u.hi + 1}, true
	}
	return u128{hi: u.hi, lo: u.lo + 1}, true
}

// dec returns u-1; callers guarantee u > 0.
func (u u128) dec() u128 {
	if u.lo == 0 {
		return u128{hi: u.hi - 1, lo: math.MaxUint64}
	}
	return u128{hi: u.hi, lo: u.lo - 1}
}

// sub returns u-v; callers guarantee u >= v.
func (u u128) sub(v u128) u128 {
	lo, borrow := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, borrow)
	return u128{hi: hi, lo: lo}
}

// add returns u+v, saturating at 2^128-1 (only a whole IPv6 space gets there).
func (u u128) add(v u128) u128 {
	lo, carry := bits.Add64(u.lo, v.lo, 0)
	hi, carry := bits.Add64(u.hi, v.hi, carry)
	if carry != 0 {
		return maxU128()
	}
	return u128{hi: hi, lo: lo}
}

func u64(n uint64) u128 { return u128{lo: n} }

// maxU128 is 2^128-1, where saturating arithmetic stops.
func maxU128() u128 { return u128{math.MaxUint64, math.MaxUint64} }

// sat64 converts to uint64, saturating: counts above 2^64-1 only occur in
// IPv6 pools larger than a /64, where "practically unlimited" is the truth.
func (u u128) sat64() uint64 {
	if u.hi != 0 {
		return math.MaxUint64
	}
	return u.lo
}

// span is the number of addresses in [lo, hi], saturating like add.
func span(lo, hi u128) u128 {
	n, ok := hi.sub(lo).inc()
	if !ok {
		return maxU128()
	}
	return n
}

// Addresses whose last octet is 0 or 255 confuse some CPE firmware (smurf
// protection); pools with avoidBuggyIPs never hand them out. Only IPv4 values
// are ever passed here.
func buggy(u u128) bool {
	b := u.lo & 0xff
	return b == 0 || b == 0xff
}

// nextGood returns the first non-buggy IPv4 value >= u. The result may pass
// 255.255.255.255; callers compare it with a range end before using it.
func nextGood(u u128) u128 {
	switch u.lo & 0xff {
	case 0xff:
		return u128{lo: u.lo + 2}
	case 0:
		return u128{lo: u.lo + 1}
	}
	return u
}

// prevGood returns the last non-buggy IPv4 value <= u; callers guarantee one
// exists.
func prevGood(u u128) u128 {
	switch u.lo & 0xff {
	case 0xff:
		return u128{lo: u.lo - 1}
	case 0:
		return u128{lo: u.lo - 2}
	}
	return u
}

// buggyIn counts the IPv4 values in [lo, hi] ending in .0 or .255, in O(1).
func buggyIn(lo, hi u128) uint64 {
	upTo := func(n uint64, r uint64) uint64 { // values <= n congruent to r mod 256
		if n < r {
			return 0
		}
		return (n-r)/256 + 1
	}
	count := func(n uint64) uint64 { return upTo(n, 0) + upTo(n, 0xff) }
	c := count(hi.lo)
	if lo.lo > 0 {
		c -= count(lo.lo - 1)
	}
	return c
}
