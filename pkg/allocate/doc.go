// Package allocate decides which load-balancer addresses each Service holds:
// net/netip in, decisions out. It is the only place where a Service's
// ipFamilies and ipFamilyPolicy turn into addresses (DESIGN.md, "Allocation
// semantics"); it has no Kubernetes client, no I/O, no goroutines and no
// package state, so the controller wraps it and the tests drive it alone.
//
// Decisions the contract leaves open, and how this package takes them:
//
//   - Pools are ordered as in MetalLB: priority 1 before 2, unset (0) after
//     every pool with a priority, then by name. Pools that can give every
//     wanted family come before pools that give fewer, whatever their
//     priority.
//   - A pinned pool need not hand out automatically (autoAssign false is
//     fine, as in MetalLB), but its serviceAllocation still applies: pinning
//     does not let a Service into a pool reserved for other namespaces. A
//     pinned pool that does not exist, or does not admit the Service, leaves
//     it Pending and waiting for a pool change.
//   - Requested addresses are the whole wish. They may come from a pool with
//     autoAssign false and must come from one pool; a PreferDualStack
//     Service requesting only IPv4 gets exactly that and is Complete.
//   - Held addresses move only when the Service asks: a changed request,
//     a dropped family or a changed pin (then make-before-break: the old
//     addresses stay until the new pool can give). Pool edits never move
//     them: SetPools reports what became invalid and the caller decides.
//   - Ranges of one pool may overlap or touch; the pool is their union.
//     Pools may overlap each other (a status condition elsewhere reports
//     it): an address is held once, whichever pool it came from.
//   - A frozen pool (Pool.Frozen: its configuration is invalid) gives
//     nothing new — no automatic allocation, no pin, no request, no
//     backfill — but what Services hold from it stays valid and held, also
//     across Restore. Unfrozen, it gives again.
//   - Multicast, loopback, link-local, unspecified and broadcast addresses
//     (Special) are removed from every pool at SetPools: never handed out,
//     accepted as requests or counted, whatever the ranges say.
//   - Messages summarise lists of pools (count and the first three) and
//     are cut at MaxReason bytes, however many pools there are.
//   - A CIDR with host bits set is rejected rather than widened.
//   - avoidBuggyIPs removes .0 and .255 from the pool altogether: they are
//     neither handed out nor accepted as requests, and not counted.
//   - Counts are exact up to 2^64-1 and saturate beyond (a pool larger than
//     a /64).
//
// Cost: assigning or releasing an address is O(log n) in the number of held
// addresses plus the number of pools, independent of pool size; see
// docs/performance.md.
package allocate
